"""The audit log on its own: batched writes, the filters, paging, and a database that fails
never reaching the caller (SQLite, and PostgreSQL with -m postgres)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from isthmus import server
from isthmus.connect import audit
from isthmus.connect.authz import OWNER, Caller, identity_principal
from isthmus.connect.models import AuditRecord, Endpoint, Role
from isthmus.core.config import Settings
from isthmus.core.db import reading, transaction, utcnow
from isthmus.core.errors import APIError
from isthmus.deployment import Deployment

pytestmark = pytest.mark.postgres


def test_records_are_batched_filtered_and_paged(services: Deployment) -> None:
    sessions = services.auth.sessions
    owner, user = uuid.uuid4(), uuid.uuid4()
    with transaction(sessions) as session:
        endpoint = session.scalars(select(Endpoint)).one()
        session.add(Role(endpoint_id=endpoint.id, collection_id=None, role=OWNER,
                         principal=identity_principal(owner)))
        endpoint_id = endpoint.id
    collection = uuid.uuid4()
    caller = audit.AuditCaller(endpoint_id, collection, user, "user@example.org", "user")
    log = audit.AuditLog(sessions, flush_seconds=3600)  # flushed by hand below
    started = time.perf_counter()
    for number in range(2000):
        log.record(caller, collection_id=collection, channel="https",
                   operation="GET" if number % 2 else "PUT", path=f"/d/{number}", size=number,
                   status=200, result="ok" if number % 10 else "permission_denied")
    # What a request pays: a list append under a lock, no database.
    assert time.perf_counter() - started < 1.0
    log.flush()  # what the background thread has not written yet
    assert log.flush() == 0

    as_owner = Caller(owner, "owner@example.org", frozenset({owner}))
    with reading(sessions) as session:
        endpoint = session.get_one(Endpoint, endpoint_id)
        first = audit.query(session, endpoint, as_owner,
                            {"operation": "put", "page_size": "600"})
        assert len(first.items) == 600 and first.marker is not None
        rest = audit.query(session, endpoint, as_owner, {
            "operation": "PUT", "marker": first.marker, "page_size": "1000"})
        assert len(rest.items) == 400 and rest.marker is None
        errors = audit.query(session, endpoint, as_owner,
                             {"result": "error", "page_size": "1000"}).items
        assert len(errors) == 200 and {r["result"] for r in errors} == {"permission_denied"}
        under = audit.query(session, endpoint, as_owner, {"path": "/d/7"}).items
        assert [r["path"] for r in under] == ["/d/7"]  # not /d/70, /d/700
        summary = audit.summary(session, endpoint, as_owner, 30)
        assert (summary["records"], summary["retention_days"]) == (2000, 30)
        for bad in ({"start": "yesterday"}, {"start": "2026-01-01T00:00:00"},
                    {"operation": "EXPLODE"}, {"path": "relative"}, {"marker": "x"}):
            with pytest.raises(APIError) as refused:
                audit.query(session, endpoint, as_owner, bad)
            assert refused.value.status == 400
        with pytest.raises(APIError) as refused:
            audit.query(session, endpoint, Caller(user, "user@example.org",
                                                   frozenset({user})), {})
        assert refused.value.status == 403


def test_a_failing_database_never_reaches_the_caller(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/no/such/folder/audit.db")
    broken = audit.AuditLog(sessionmaker(bind=engine))
    broken.record(None, collection_id=uuid.uuid4(), channel="https", operation="GET",
                  path="/x")
    assert broken.flush() == 0  # logged and dropped; nothing raised
    engine.dispose()


def test_records_older_than_the_retention_are_purged(
        services: Deployment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sessions = services.auth.sessions
    now = utcnow()
    collection = uuid.uuid4()
    with transaction(sessions) as session:
        endpoint_id = session.scalars(select(Endpoint.id)).one()
        for days in (400, 31, 29, 0):
            session.add(AuditRecord(time=now - timedelta(days=days), endpoint_id=endpoint_id,
                                    collection_id=collection, channel="https",
                                    operation="GET", path=f"/{days}-days-old", result="ok"))

    def kept() -> list[str]:
        with reading(sessions) as session:
            return list(session.scalars(select(AuditRecord.path).order_by(AuditRecord.id)))

    with transaction(sessions) as session:
        assert audit.purge_older(session, now, 0) == 0  # 0: kept for ever
    assert len(kept()) == 4
    with transaction(sessions) as session:
        assert audit.purge_older(session, now, 365) == 1
    assert kept() == ["/31-days-old", "/29-days-old", "/0-days-old"]
    with transaction(sessions) as session:
        assert audit.purge_older(session, now, 30) == 1
    assert kept() == ["/29-days-old", "/0-days-old"]

    # The setting `isthmus serve` purges with.
    monkeypatch.delenv("ISTHMUS_AUDIT_RETENTION_DAYS", raising=False)
    assert Settings.load(tmp_path).audit_retention_days == 365
    monkeypatch.setenv("ISTHMUS_AUDIT_RETENTION_DAYS", "30")
    assert Settings.load(tmp_path).audit_retention_days == 30


def test_serve_purges_with_the_deployments_retention(services: Deployment) -> None:
    """The loop `isthmus serve` runs: its first round goes at start-up."""
    sessions = services.auth.sessions
    with transaction(sessions) as session:
        endpoint_id = session.scalars(select(Endpoint.id)).one()
        for days in (3, 1):
            session.add(AuditRecord(time=utcnow() - timedelta(days=days),
                                    endpoint_id=endpoint_id, collection_id=uuid.uuid4(),
                                    channel="https", operation="GET", path=f"/{days}",
                                    result="ok"))
    log = audit.AuditLog(sessions, retention_days=2)

    async def first_round() -> None:
        with anyio.move_on_after(2):
            await server._purge_audit_periodically(services.auth, log)

    anyio.run(first_round)
    with reading(sessions) as session:
        assert list(session.scalars(select(AuditRecord.path))) == ["/1"]
