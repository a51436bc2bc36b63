"""Group membership as other services see it (`groups_of`), Auth's group-administered
projects, and the last-admin rule under concurrency; on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isthmus.auth import identities, management, projects
from isthmus.auth.builtins import TUTORIAL_CLIENT_ID
from isthmus.auth.models import Identity, Token
from isthmus.auth.service import AuthService
from isthmus.core.config import Settings
from isthmus.core.db import transaction
from isthmus.deployment import open_deployment
from isthmus.groups import access, groups, membership
from isthmus.groups.service import Caller
from tests.database import fresh_database_url
from tests.unit.test_storage_and_concurrency import run_concurrently

pytestmark = pytest.mark.postgres


@pytest.fixture
def auth(tmp_path: Path) -> Iterator[AuthService]:
    with fresh_database_url(tmp_path) as url:
        service = open_deployment(Settings.load(tmp_path / "data", database_url=url))
        yield service
        service.engine.dispose()


def _person(auth: AuthService, name: str) -> Caller:
    with transaction(auth.sessions) as session:
        identity: Identity = identities.create_user(session, name, "pw")
        return Caller(identity.id, identity.username, frozenset({identity.id}), may_write=True)


def _act(auth: AuthService, group_id: uuid.UUID, caller: Caller,
         body: dict[str, Any]) -> dict[str, Any]:
    actions = membership.parse_actions(body)
    known = auth.lookup_identities(membership.identities_named(actions))
    with transaction(auth.sessions) as session:
        found = access.find_group(session, group_id, caller, for_update=True)
        return membership.apply_actions(session, found, actions, known)


def test_groups_of_is_the_active_memberships_of_an_identity_set(auth: AuthService) -> None:
    alice, bob, carol = (_person(auth, name) for name in ("alice", "bob", "carol"))
    with transaction(auth.sessions) as session:
        lab = groups.create_group(session, {"name": "Lab"}, alice).group.id
        other = groups.create_group(session, {"name": "Other"}, alice).group.id
    _act(auth, lab, alice, {"add": [{"identity_id": str(bob.identity_id)}],
                            "invite": [{"identity_id": str(carol.identity_id)}]})
    _act(auth, other, alice, {"add": [{"identity_id": str(bob.identity_id)}]})

    with transaction(auth.sessions) as session:
        assert membership.groups_of(session, [alice.identity_id]) == {lab, other}
        assert membership.groups_of(session, [bob.identity_id]) == {lab, other}
        # An invitation is no membership yet, and nobody is in no group.
        assert membership.groups_of(session, [carol.identity_id]) == set()
        assert membership.groups_of(session, []) == set()
        assert membership.groups_of(
            session, [carol.identity_id, bob.identity_id, uuid.uuid4()]) == {lab, other}
    # The in-process interface Auth holds answers the same.
    assert auth.groups.groups_of({bob.identity_id}) == frozenset({lab, other})

    _act(auth, lab, bob, {"leave": [{"identity_id": str(bob.identity_id)}]})
    _act(auth, lab, carol, {"accept": [{"identity_id": str(carol.identity_id)}]})
    assert auth.groups.groups_of({bob.identity_id}) == frozenset({other})
    assert auth.groups.groups_of({carol.identity_id}) == frozenset({lab})
    with transaction(auth.sessions) as session:
        groups.delete_group(session, access.find_group(session, lab, alice))
    assert auth.groups.groups_of({carol.identity_id}) == frozenset()
    assert auth.groups.groups_of({alice.identity_id}) == frozenset({other})


def test_an_auth_caller_administers_projects_of_its_groups(auth: AuthService) -> None:
    alice, bob = _person(auth, "alice"), _person(auth, "bob")
    with transaction(auth.sessions) as session:
        group_id = groups.create_group(session, {"name": "Admins"}, alice).group.id
        project = projects.create_project(session, {
            "display_name": "Shared", "contact_email": "lab@example.org",
            "admin_group_ids": [str(group_id)],
        }, alice.identity_id)
        project_id = project.id

    def principals_of(person: Caller) -> set[uuid.UUID]:
        token = Token(identity_id=person.identity_id, client_id=TUTORIAL_CLIENT_ID,
                      scope=management.MANAGE_PROJECTS)
        with transaction(auth.sessions) as session:
            return set(management.caller_of(session, token, auth.groups).principals)

    def administers(person: Caller) -> bool:
        with transaction(auth.sessions) as session:
            return [p.id for p in projects.projects_of(session, principals_of(person))] == [
                project_id]

    assert principals_of(alice) == {alice.identity_id, group_id}
    assert administers(alice) and not administers(bob)
    _act(auth, group_id, alice, {"add": [{"identity_id": str(bob.identity_id)}]})
    assert administers(bob)
    _act(auth, group_id, alice, {"remove": [{"identity_id": str(bob.identity_id)}]})
    assert not administers(bob)


def test_two_admins_leaving_at_once_leave_one_admin(
    auth: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = _person(auth, "alice"), _person(auth, "bob")
    # Widen the window between counting the other admins and leaving, so that two
    # unserialised batches would both count one other admin and both leave.
    checked = membership._Batch.keeps_an_admin

    def slow_check(batch: Any, leaving: Any) -> None:
        checked(batch, leaving)
        time.sleep(0.3)

    monkeypatch.setattr(membership._Batch, "keeps_an_admin", slow_check)
    with transaction(auth.sessions) as session:
        group_id = groups.create_group(session, {"name": "Pair"}, alice).group.id
    _act(auth, group_id, alice, {"add": [{"identity_id": str(bob.identity_id),
                                          "role": "admin"}]})
    callers = iter([alice, bob])

    def leave() -> dict[str, Any]:
        person = next(callers)
        return _act(auth, group_id, person,
                    {"leave": [{"identity_id": str(person.identity_id)}]})

    results = run_concurrently(2, leave)
    assert all(isinstance(result, dict) for result in results), results
    assert sorted(len(result["leave"]) for result in results) == [0, 1]
    [refused] = [result for result in results if not result["leave"]]
    assert refused["errors"]["leave"][0]["code"] == "LAST_ADMIN"
    both = Caller(alice.identity_id, alice.username,
                  frozenset({alice.identity_id, bob.identity_id}), may_write=True)
    with transaction(auth.sessions) as session:
        found = access.find_group(session, group_id, both)
        statuses = sorted(m.status for m in found.group.memberships)
    assert statuses == ["active", "left"]
