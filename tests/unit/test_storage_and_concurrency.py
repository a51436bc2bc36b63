"""Auth's storage rules under concurrency, on SQLite and (with -m postgres) PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import event, inspect, select

from isthmus.auth import clients, grants, scopes, tokens
from isthmus.auth.errors import OAuthError
from isthmus.auth.models import Token
from isthmus.auth.service import AuthService
from isthmus.core.db import transaction
from isthmus.deployment import open_deployment
from tests.unit.factories import code_for

pytestmark = pytest.mark.postgres


def run_concurrently(count: int, work: Callable[[], Any]) -> list[Any]:
    """Start `count` calls at the same instant; return results or the exceptions raised."""
    barrier = threading.Barrier(count)

    def call() -> Any:
        barrier.wait()
        try:
            return work()
        except Exception as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: call(), range(count)))


def test_migrations_and_bootstrap_are_idempotent(auth: AuthService) -> None:
    tables = set(inspect(auth.engine).get_table_names())
    assert {"identities", "clients", "scopes", "consents", "tokens", "alembic_version"} <= tables
    again = open_deployment(auth.settings)  # a second start changes nothing
    with transaction(again.sessions) as session:
        assert scopes.scope_by_string(
            session, "urn:globus:auth:scope:transfer.api.globus.org:all"
        ) is not None
    again.engine.dispose()


def test_a_code_is_redeemed_exactly_once_under_concurrency(auth: AuthService) -> None:
    client_id, secret, code = code_for(auth)

    def redeem() -> dict[str, Any]:
        with transaction(auth.sessions) as session:
            client = clients.authenticate_confidential(session, client_id, secret)
            return grants.authorization_code(
                session, auth.grant_context, client,
                {"code": code, "redirect_uri": "https://app.example.org/cb"},
            )

    results = run_concurrently(6, redeem)
    successes = [result for result in results if isinstance(result, dict)]
    failures = [result for result in results if isinstance(result, OAuthError)]
    assert len(successes) == 1, results
    assert len(failures) == 5
    assert all(failure.oauth_error == "invalid_grant" for failure in failures)
    assert {successes[0]["resource_server"]} | {
        token["resource_server"] for token in successes[0]["other_tokens"]
    } == {"auth.globus.org", "transfer.api.globus.org"}


def test_concurrent_client_credentials_all_succeed(auth: AuthService) -> None:
    with transaction(auth.sessions) as session:
        created = clients.create_client(session, "robot", "client_identity")
        client_id, secret = str(created.client.id), created.secret
    assert secret is not None

    def issue() -> dict[str, Any]:
        with transaction(auth.sessions) as session:
            client = clients.authenticate_confidential(session, client_id, secret)
            return grants.client_credentials(
                session, auth.grant_context, client,
                {"scope": "urn:globus:auth:scope:transfer.api.globus.org:all"},
            )

    results = run_concurrently(8, issue)
    assert all(isinstance(result, dict) for result in results), results
    assert len({result["access_token"] for result in results}) == 8


def test_revoking_a_refresh_token_revokes_its_access_tokens(auth: AuthService) -> None:
    client_id, secret, code = code_for(auth)
    with transaction(auth.sessions) as session:
        client = clients.authenticate_confidential(session, client_id, secret)
        response = grants.authorization_code(
            session, auth.grant_context, client,
            {"code": code, "redirect_uri": "https://app.example.org/cb"},
        )
        refresh_secret = response["refresh_token"]
        refreshed = grants.refresh_token(
            session, auth.grant_context, client, {"refresh_token": refresh_secret}
        )
    with transaction(auth.sessions) as session:
        row = tokens.find_active(session, refresh_secret, kind="refresh")
        assert row is not None
        tokens.revoke(session, row)
    with transaction(auth.sessions) as session:
        assert tokens.find_active(session, response["access_token"]) is None
        assert tokens.find_active(session, refreshed["access_token"]) is None
        # Only digests are stored: no row holds a token's value.
        values = {response["access_token"], refresh_secret, refreshed["access_token"]}
        stored = set(session.scalars(select(Token.digest)))
        assert not values & stored


def test_checkpoint_moves_the_log_into_the_database_file(auth: AuthService) -> None:
    """Commits no longer checkpoint (the server does, in the background): what they wrote
    reaches the database file itself only when the `Checkpointer` runs, which leaves an
    unchanged log alone; PostgreSQL: a no-op."""
    import sqlite3

    from isthmus.core.db import Checkpointer

    client_id, secret, _code = code_for(auth)
    checkpoint = Checkpointer(auth.engine)
    checkpoint()
    for _ in range(5):
        with transaction(auth.sessions) as session:
            client = clients.authenticate_confidential(session, client_id, secret)
            grants.client_credentials(session, auth.grant_context, client, {
                "scope": "urn:globus:auth:scope:transfer.api.globus.org:all"})
    with transaction(auth.sessions) as session:
        issued = len(session.execute(select(Token.id)).all())
    if auth.engine.dialect.name != "sqlite":
        checkpoint()
        return

    def in_database_file() -> int:
        # immutable=1 reads the main file alone, ignoring the write-ahead log.
        path = auth.engine.url.database
        with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as file_only:
            count: int = file_only.execute("SELECT count(*) FROM tokens").fetchone()[0]
        return count

    assert in_database_file() == issued - 5  # still only in the log
    checkpoint()
    assert in_database_file() == issued
    checkouts: list[object] = []
    event.listen(auth.engine.pool, "checkout", lambda *args: checkouts.append(args))
    checkpoint()  # nothing new in the log: it does not even open a connection
    assert checkouts == []
