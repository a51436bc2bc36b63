"""The endpoint's audit records: one row per data operation, over HTTPS or by Transfer.

Recording never waits on the database: `AuditLog.record` appends to an in-memory batch
that one background thread writes every `FLUSH_SECONDS` (or sooner when it grows), in one
transaction. A failed write is logged and the batch dropped, so a database that is down
never holds up or fails a GET or a PUT; a batch beyond `MAX_PENDING` drops its newest
records (counted in the log) rather than grow without bound. Records name the caller by
identity and username and the local account the storage was reached as; no token or
credential is ever part of one.

`AuditMiddleware` records each request under the data prefix once it is answered: its
method, collection path, body bytes (received for PUT, sent for GET), and ``ok`` or the
error code of the answer. The data routes tell it who the caller was (`note_caller`).
Reading the records (`query`, `summary`) is for the endpoint's owner and administrators.
Records older than the deployment's retention (``ISTHMUS_AUDIT_RETENTION_DAYS``) are
deleted by `purge_older` (which `isthmus serve` runs periodically).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Select, Table, delete, func, insert, or_, select
from sqlalchemy.orm import Session, sessionmaker

from isthmus.connect.authz import Caller, require_endpoint_admin
from isthmus.connect.errors import bad_request
from isthmus.connect.models import AuditRecord, Endpoint
from isthmus.connect.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from isthmus.core.db import transaction, utcnow

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("isthmus.connect.audit")

FLUSH_SECONDS = 0.5
FLUSH_BATCH = 500
MAX_PENDING = 100_000
# How much of an error answer is kept to read its code from.
_ERROR_BODY_LIMIT = 4096
SCOPE_KEY = "isthmus.audit"
OPERATIONS = ("GET", "HEAD", "PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPFIND",
              "PROPPATCH", "READ", "WRITE", "MKDIR", "SYMLINK")
# Written through Core, not the ORM: no per-row bookkeeping for rows never read back here.
_RECORDS = cast(Table, AuditRecord.__table__)
_RECORD_FIELDS = ("time", "endpoint_id", "collection_id", "identity_id", "username",
                  "local_account", "channel", "operation", "path", "destination", "bytes",
                  "status", "result")


@dataclass(frozen=True)
class AuditCaller:
    """Who a data session acts for, as the records name them."""

    endpoint_id: uuid.UUID | None
    collection_id: uuid.UUID
    identity_id: uuid.UUID | None
    username: str | None
    local_account: str | None


@dataclass
class RequestNote:
    """What the data routes learn of a request that its audit record needs."""

    caller: AuditCaller | None = None
    destination: str | None = None


def note_caller(scope: Scope, caller: AuditCaller | None,
                destination: str | None = None) -> None:
    note = scope.get(SCOPE_KEY)
    if isinstance(note, RequestNote):
        note.caller = caller or note.caller
        note.destination = destination or note.destination


@dataclass
class AuditLog:
    """Records batched in memory and written by one background thread (thread-safe)."""

    sessions: sessionmaker[Session]
    flush_seconds: float = FLUSH_SECONDS
    # How many days records are kept (0: for ever); `purge_older` deletes the rest.
    retention_days: int = 0
    _pending: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Event = field(default_factory=threading.Event)
    _writing: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _dropped: int = 0

    def record(self, caller: AuditCaller | None, *, collection_id: uuid.UUID, channel: str,
               operation: str, path: str, destination: str | None = None,
               size: int | None = None, status: int | None = None,
               result: str = "ok", endpoint_id: uuid.UUID | None = None) -> None:
        """Queue one record; ``endpoint_id`` names the endpoint when no caller is known."""
        row = {"time": utcnow(), "collection_id": collection_id, "channel": channel,
               "operation": operation, "path": path, "destination": destination,
               "bytes": size, "status": status, "result": result[:64],
               "endpoint_id": caller.endpoint_id if caller else endpoint_id,
               "identity_id": caller.identity_id if caller else None,
               "username": caller.username if caller else None,
               "local_account": caller.local_account if caller else None}
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                self._dropped += 1
                return
            self._pending.append(row)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-log",
                                                daemon=True)
                self._thread.start()
            if len(self._pending) >= FLUSH_BATCH:
                self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write what is pending now; the number of records written."""
        with self._writing:  # one writer at a time keeps the records in order
            with self._lock:
                batch, self._pending = self._pending, []
                dropped, self._dropped = self._dropped, 0
            if dropped:
                logger.warning("dropped %d audit records: too many were waiting", dropped)
            if not batch:
                return 0
            try:
                with transaction(self.sessions) as session:
                    session.execute(insert(_RECORDS), batch)
            except Exception:
                # Never fail or slow a data operation over its audit record.
                logger.exception("writing %d audit records failed", len(batch))
                return 0
            return len(batch)


# --- HTTPS ----------------------------------------------------------------------------------


class AuditMiddleware:
    """Records each data request (under ``prefix``) as it ends; see the module docstring."""

    def __init__(self, app: ASGIApp, log: AuditLog, prefix: str,
                 locate: Callable[[bytes], tuple[uuid.UUID, str]],
                 endpoint_id: uuid.UUID | None) -> None:
        self.app = app
        self.log = log
        self.endpoint_id = endpoint_id  # this node's, for requests refused before a caller
        self.prefix = prefix.rstrip("/") + "/"
        self.locate = locate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] == "OPTIONS"
                or not scope["path"].startswith(self.prefix)):
            await self.app(scope, receive, send)
            return
        note = RequestNote()
        scope[SCOPE_KEY] = note
        received = sent = 0
        status: int | None = None
        error_body: list[bytes] = []
        json_answer = False

        async def receiving() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            nonlocal sent, status, json_answer
            if message["type"] == "http.response.start":
                status = int(message["status"])
                json_answer = any(name.lower() == b"content-type" and b"json" in value
                                  for name, value in message.get("headers", ()))
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                sent += len(body)
                if json_answer and status is not None and status >= 300 and (
                        sum(map(len, error_body)) < _ERROR_BODY_LIMIT):
                    error_body.append(body)
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        finally:
            self._record(scope, note, status, received, sent, b"".join(error_body))

    def _record(self, scope: Scope, note: RequestNote, status: int | None, received: int,
                sent: int, error_body: bytes) -> None:
        raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        try:
            collection_id, path = self.locate(raw.split(b"?", 1)[0])
        except Exception:
            return  # not a collection's path: nothing was done to any data
        method = scope["method"]
        # File bytes moved: a refusal's own answer is not the file.
        succeeded = status is not None and status < 300
        size = (sent if succeeded else 0) if method == "GET" else (
            received if method == "PUT" else None)
        self.log.record(note.caller, collection_id=collection_id, channel="https",
                        operation=method[:16], path=path, destination=note.destination,
                        size=size, status=status, result=_result(status, error_body),
                        endpoint_id=self.endpoint_id)


def _result(status: int | None, error_body: bytes) -> str:
    if status is None:
        return "no_response"  # the client went away, or the server failed
    if error_body:
        try:
            code = json.loads(error_body).get("code")
        except (ValueError, AttributeError):
            code = None
        if isinstance(code, str) and code:
            return code
    return "ok" if status < 400 else f"http_{status}"


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    start: datetime | None = None
    end: datetime | None = None
    username: str | None = None
    identity_id: uuid.UUID | None = None
    collection_id: uuid.UUID | None = None
    path: str | None = None
    operation: str | None = None
    result: str | None = None


def _time(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{name} must be an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise bad_request(f"{name} must give its time zone (e.g. 2026-01-01T00:00:00Z)")
    return moment


def _uuid(params: Mapping[str, str], name: str) -> uuid.UUID | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise bad_request(f"{name} must be a UUID") from None


def filters_of(params: Mapping[str, str]) -> Filters:
    operation = (params.get("operation") or "").upper() or None
    if operation is not None and operation not in OPERATIONS:
        raise bad_request(f"operation must be one of {', '.join(OPERATIONS)}")
    path = params.get("path") or None
    if path is not None and not path.startswith("/"):
        raise bad_request("path must be absolute (start with /)")
    return Filters(start=_time(params, "start"), end=_time(params, "end"),
                   username=params.get("username") or None,
                   identity_id=_uuid(params, "identity_id"),
                   collection_id=_uuid(params, "collection_id"), path=path,
                   operation=operation, result=params.get("result") or None)


def _select(endpoint: Endpoint, filters: Filters) -> Select[Any]:
    # Transfer's records name the collection's endpoint; HTTPS's this node's.
    query = select(AuditRecord).where(AuditRecord.endpoint_id == endpoint.id)
    if filters.start is not None:
        query = query.where(AuditRecord.time >= filters.start)
    if filters.end is not None:
        query = query.where(AuditRecord.time < filters.end)
    if filters.username is not None:
        query = query.where(AuditRecord.username == filters.username)
    if filters.identity_id is not None:
        query = query.where(AuditRecord.identity_id == filters.identity_id)
    if filters.collection_id is not None:
        query = query.where(AuditRecord.collection_id == filters.collection_id)
    if filters.path is not None:
        under = filters.path.rstrip("/")
        escaped = under.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(or_(AuditRecord.path == filters.path,
                                AuditRecord.path.like(escaped + "/%", escape="\\")))
    if filters.operation is not None:
        query = query.where(AuditRecord.operation == filters.operation)
    if filters.result == "error":
        query = query.where(AuditRecord.result != "ok")
    elif filters.result is not None:
        query = query.where(AuditRecord.result == filters.result)
    return query


def document(record: AuditRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in _RECORD_FIELDS}
    for name in ("endpoint_id", "collection_id", "identity_id"):
        values[name] = str(values[name]) if values[name] is not None else None
    values["time"] = record.time.isoformat()
    return {"DATA_TYPE": "audit_record#1.0.0", "id": record.id, **values}


def query(session: Session, endpoint: Endpoint, caller: Caller,
          params: Mapping[str, str]) -> Page:
    """A page of records, oldest first; the marker is the last record's id."""
    require_endpoint_admin(session, endpoint, caller, "read the audit records")
    filters = filters_of(params)
    size = _page_size(params)
    statement = _select(endpoint, filters)
    marker = params.get("marker")
    if marker:
        if not marker.isascii() or not marker.isdigit():
            raise bad_request("Invalid marker")
        statement = statement.where(AuditRecord.id > int(marker))
    ordered = statement.order_by(AuditRecord.id).limit(size + 1)
    rows: list[AuditRecord] = list(session.scalars(ordered))
    more = len(rows) > size
    rows = rows[:size]
    return Page([document(row) for row in rows], str(rows[-1].id) if more else None)


def _page_size(params: Mapping[str, str]) -> int:
    raw = params.get("page_size")
    if not raw:
        return DEFAULT_PAGE_SIZE
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise bad_request("page_size must be a positive integer")
    return min(int(raw), MAX_PAGE_SIZE)


def summary(session: Session, endpoint: Endpoint, caller: Caller,
            retention_days: int) -> dict[str, Any]:
    """How many records the endpoint holds, the time of the first and the last, and how
    many days they are kept (0: for ever)."""
    require_endpoint_admin(session, endpoint, caller, "read the audit records")
    count, first, last = session.execute(
        select(func.count(), func.min(AuditRecord.time), func.max(AuditRecord.time))
        .where(AuditRecord.endpoint_id == endpoint.id)).one()
    return {"DATA_TYPE": "audit_summary#1.0.0", "records": count,
            "first": first.isoformat() if first else None,
            "last": last.isoformat() if last else None, "retention_days": retention_days}


# --- retention ------------------------------------------------------------------------------


def purge_older(session: Session, now: datetime, retention_days: int) -> int:
    """Delete the records older than ``retention_days`` (none when it is 0); how many went."""
    if retention_days <= 0:
        return 0
    cutoff = now - timedelta(days=retention_days)
    deleted = session.execute(delete(AuditRecord).where(AuditRecord.time < cutoff))
    return int(deleted.rowcount)  # type: ignore[attr-defined]
