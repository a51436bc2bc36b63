"""Group commit: units share a transaction, fail alone, and answer only after the commit."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from isthmus.auth import clients, grants
from isthmus.auth.builtins import TRANSFER_ALL
from isthmus.auth.errors import OAuthError
from isthmus.auth.models import Token
from isthmus.auth.service import AuthService
from isthmus.core.db import reading, transaction
from isthmus.core.group_commit import GroupCommitter

pytestmark = pytest.mark.postgres


def _token_count(auth: AuthService) -> int:
    with reading(auth.sessions) as session:
        return session.scalar(select(func.count()).select_from(Token)) or 0


def test_many_units_commit_together_and_a_failing_one_rolls_back_alone(
    auth: AuthService,
) -> None:
    with transaction(auth.sessions) as session:
        robot = clients.create_client(session, "robot", "client_identity").client
    committer = GroupCommitter(auth.sessions)

    def issue(session: Session) -> str:
        client = clients.get_client(session, robot.id)
        assert client is not None
        response = grants.client_credentials(
            session, auth.grant_context, client, {"scope": TRANSFER_ALL}
        )
        return str(response["access_token"])

    def issue_then_fail(session: Session) -> str:
        issue(session)  # its token row is written, then must vanish with the savepoint
        raise OAuthError("invalid_scope", "refused after writing")

    async def submit_all() -> list[str | BaseException]:
        units = [issue_then_fail if n % 5 == 0 else issue for n in range(40)]
        return await asyncio.gather(*(committer.run(unit) for unit in units),
                                    return_exceptions=True)

    before = _token_count(auth)
    results = asyncio.run(submit_all())
    failures = [result for result in results if isinstance(result, BaseException)]
    issued = [result for result in results if isinstance(result, str)]
    assert len(failures) == 8
    assert all(isinstance(failure, OAuthError) for failure in failures)
    assert len(set(issued)) == 32
    # Every answered token is committed (visible to a new reader), the failed units left nothing.
    assert _token_count(auth) == before + 32
    assert all(auth.introspect(secret) is not None for secret in issued)


def test_a_failed_commit_fails_every_unit_and_keeps_nothing(auth: AuthService) -> None:
    factory = sessionmaker(auth.engine, expire_on_commit=False)

    def refuse_commit(_session: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    event.listen(factory, "before_commit", refuse_commit)
    committer = GroupCommitter(factory)
    name = f"robot-{uuid.uuid4()}"

    def create(session: Session) -> str:
        return str(clients.create_client(session, name, "client_identity").client.id)

    async def submit() -> list[object]:
        return await asyncio.gather(*(committer.run(create) for _ in range(5)),
                                    return_exceptions=True)

    results = asyncio.run(submit())
    assert all(isinstance(result, OperationalError) for result in results)
    with reading(auth.sessions) as session:
        assert name not in {client.name for client in clients.list_clients(session)}
