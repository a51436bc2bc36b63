"""How runners share tasks in the database: admission of each user's share of active tasks,
claims served least recently served first, leases that lapse, and (on PostgreSQL) two runners
claiming at once never taking the same task."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from isthmus.auth.service import AuthService
from isthmus.core.db import transaction, utcnow
from isthmus.transfer.engine import Slice, SliceContext
from isthmus.transfer.runner import admit_queued, claim, release_all_claims
from isthmus.transfer.task_models import Task

pytestmark = pytest.mark.postgres

LEASE = timedelta(seconds=30)
LIMITS = {"TRANSFER": 3, "DELETE": 3}


def add_task(auth: AuthService, owner: uuid.UUID, kind: str = "TRANSFER", *,
             admitted: bool = False, minutes_ago: int = 0) -> uuid.UUID:
    now = utcnow() - timedelta(minutes=minutes_ago)
    task = Task(id=uuid.uuid4(), owner_id=owner, submission_id=uuid.uuid4(), type=kind,
                status="ACTIVE", request_time=now, deadline=now + timedelta(days=1),
                source_endpoint_id=uuid.uuid4(), options={}, admitted=admitted,
                nice_status="Queued")
    with transaction(auth.sessions) as session:
        session.add(task)
    return task.id


def admitted(auth: AuthService) -> set[uuid.UUID]:
    with transaction(auth.sessions) as session:
        return set(session.scalars(select(Task.id).where(Task.admitted.is_(True))))


def test_each_user_runs_their_share_and_the_rest_wait_in_order(auth: AuthService) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    alices = [add_task(auth, alice, minutes_ago=10 - number) for number in range(5)]
    bobs = [add_task(auth, bob), add_task(auth, bob, "DELETE")]
    alices_delete = add_task(auth, alice, "DELETE")
    with transaction(auth.sessions) as session:
        admit_queued(session, LIMITS)
    # Alice's three oldest transfers; her delete counts apart; bob is not held up by her.
    assert admitted(auth) == {*alices[:3], *bobs, alices_delete}
    with transaction(auth.sessions) as session:
        session.get(Task, alices[0]).status = "SUCCEEDED"  # type: ignore[union-attr]
        admit_queued(session, LIMITS)
    assert alices[3] in admitted(auth) and alices[4] not in admitted(auth)


def test_the_least_recently_served_task_goes_next(auth: AuthService) -> None:
    owner = uuid.uuid4()
    first, second = (add_task(auth, owner, admitted=True, minutes_ago=5 - number)
                     for number in range(2))
    now = utcnow()
    with transaction(auth.sessions) as session:
        assert claim(session, "w1", now, LEASE) == first
        assert claim(session, "w2", now, LEASE) == second  # the first is held
        assert claim(session, "w3", now, LEASE) is None
    with transaction(auth.sessions) as session:
        # w1 hands the first back after its slice: the second, never served, goes next.
        served = session.get(Task, first)
        assert served is not None
        served.claimed_by, served.lease_until, served.last_served = None, None, utcnow()
        held = session.get(Task, second)
        assert held is not None
        held.claimed_by, held.lease_until = None, None
    with transaction(auth.sessions) as session:
        assert claim(session, "w1", utcnow(), LEASE) == second
        assert claim(session, "w2", utcnow(), LEASE) == first


def test_a_lapsed_lease_is_taken_over(auth: AuthService) -> None:
    task_id = add_task(auth, uuid.uuid4(), admitted=True)
    with transaction(auth.sessions) as session:
        assert claim(session, "dead", utcnow(), LEASE) == task_id
    with transaction(auth.sessions) as session:
        assert claim(session, "alive", utcnow(), LEASE) is None
        assert claim(session, "alive", utcnow() + LEASE * 2, LEASE) == task_id
    with transaction(auth.sessions) as session:
        release_all_claims(session)
        task = session.get(Task, task_id)
        assert task is not None and task.claimed_by is None


def test_a_working_slice_keeps_its_lease_however_long_it_waits(auth: AuthService) -> None:
    """A worker blocked for longer than its lease (a slow disk's sync, a long storage call)
    keeps the task: its lease is renewed beside it, and lapses only once it stops."""
    task_id = add_task(auth, uuid.uuid4(), admitted=True)
    lease = timedelta(seconds=0.6)
    with transaction(auth.sessions) as session:
        assert claim(session, "slow", utcnow(), lease) == task_id
        task = session.get(Task, task_id)
        assert task is not None
        session.expunge(task)
    unused: Any = None
    context = SliceContext(auth.sessions, unused, unused, unused, "slow", lease,
                           threading.Event())
    with Slice(context, task).holding_lease():
        time.sleep(4 * lease.total_seconds())  # blocked, never flushing
        with transaction(auth.sessions) as session:
            assert claim(session, "other", utcnow(), lease) is None
    time.sleep(2 * lease.total_seconds())
    with transaction(auth.sessions) as session:
        assert claim(session, "other", utcnow(), lease) == task_id


def test_two_runners_claiming_at_once_take_different_tasks(auth: AuthService) -> None:
    if auth.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one runner process: claims never overlap")
    owner = uuid.uuid4()
    tasks = {add_task(auth, owner, admitted=True) for _ in range(2)}
    now = utcnow()
    with auth.sessions() as one, one.begin():
        first = claim(one, "w1", now, LEASE)  # its row stays locked until commit
        with auth.sessions() as two, two.begin():
            second = claim(two, "w2", now, LEASE)
    assert {first, second} == tasks
