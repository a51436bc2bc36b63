"""Database engine, sessions and migrations, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import threading
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the in-process lock alone
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names keep Alembic migrations identical across databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


READ_ONLY = "isthmus_read_only"

# Units of work one process runs against the database at once (the HTTP layer
# runs no more in parallel); the pool keeps that many connections open, so no
# request pays for opening one (a fork of a PostgreSQL backend, or SQLite's
# file open and pragmas).
POOL_SIZE = 8
# About 40 MiB of log (4 KiB pages) between checkpoints when no server runs `checkpoint`.
WAL_AUTOCHECKPOINT_PAGES = 10_000


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Any  # noqa: ARG002
    ) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC)

    def process_result_value(
        self, value: datetime | None, dialect: Any  # noqa: ARG002
    ) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def make_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=POOL_SIZE, max_overflow=2 * POOL_SIZE)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        lock_file = Path(f"{url.database}.write-lock") if _is_file(url.database) else None
        _write_gates[engine] = _WriteGate(lock_file)
        return engine
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, pool_size=POOL_SIZE, max_overflow=2 * POOL_SIZE,
                         pool_pre_ping=True)


def _is_file(database: str | None) -> bool:
    return bool(database) and database != ":memory:" and not str(database).startswith("file:")


class _WriteGate:
    """Lets one SQLite writer at a time begin, queueing the others in order.

    SQLite allows one writer anyway (``BEGIN IMMEDIATE`` takes the write lock),
    but a writer that finds the lock taken polls for it, sleeping up to 100 ms
    between tries, so under load some requests wait seconds while others pass.
    Waiting here instead (a lock in this process, and ``flock`` on a file beside
    the database for other processes: more server workers, the CLI) hands the
    lock over as soon as it is free. Re-entrant within a thread.
    """

    def __init__(self, lock_file: Path | None) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._lock_file = lock_file
        self._fd: int | None = None
        self._fd_pid = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        depth: int = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        with self._lock:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _file(self) -> int | None:
        if self._lock_file is None or fcntl is None:
            return None
        if self._fd is None or self._fd_pid != os.getpid():  # a forked child needs its own
            self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            self._fd_pid = os.getpid()
            weakref.finalize(self, os.close, self._fd)
        return self._fd


_write_gates: weakref.WeakKeyDictionary[Engine, _WriteGate] = weakref.WeakKeyDictionary()


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the CLI write while the server reads; busy_timeout makes writers queue.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Checkpoints (copying the WAL into the database, with an fsync) run in the server's
    # background (`checkpoint`), not inside whichever commit crosses SQLite's default of
    # 1,000 pages; this larger bound only keeps the WAL finite where nothing else runs them.
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.close()


class Checkpointer:
    """Copies what SQLite's write-ahead log holds into the database file, without waiting
    for readers or writers (PASSIVE), so that commits need not; PostgreSQL: nothing.

    A log unchanged since the last call is left alone: an idle server touches no file.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._log = Path(f"{database}-wal") if _is_file(database) else None
        self._seen: tuple[int, int] | None = None

    def __call__(self) -> None:
        if self._log is None:
            return
        try:
            status = self._log.stat()
        except FileNotFoundError:
            return  # no connection has written yet
        seen = (status.st_mtime_ns, status.st_size)
        if seen == self._seen:
            return
        # On the driver's connection directly: SQLAlchemy would begin a transaction first,
        # and SQLite refuses to checkpoint inside one.
        connection = self.engine.raw_connection()
        try:
            connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        finally:
            connection.close()
        self._seen = seen  # a write since the stat changes it again: checkpointed next time


def _sqlite_begin(connection: Any) -> None:
    # A deferred transaction that reads and then writes fails at once with
    # "database is locked" when another writer got there first, ignoring
    # busy_timeout. Writers therefore take the lock up front; read-only units
    # of work (see `reading`) stay deferred so they never wait on writers.
    if connection.get_execution_options().get(READ_ONLY, False):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class CommitThenRaise(Exception):  # noqa: N818  (not an error itself: it carries one)
    """Raised by a unit whose writes must stand although its caller gets ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success (or ``CommitThenRaise``), roll back otherwise."""
    bind = factory.kw.get("bind")
    gate = _write_gates.get(bind) if isinstance(bind, Engine) else None
    kept: CommitThenRaise | None = None
    with gate.held() if gate is not None else nullcontext(), factory() as session, \
            session.begin():
        try:
            yield session
        except CommitThenRaise as error:
            kept = error
    if kept is not None:
        raise kept.error


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that only reads: never waits for SQLite's write lock, and takes no
    connection at all when everything it needs is cached."""
    bind = factory.kw.get("bind")
    session = factory(bind=_read_only(bind)) if isinstance(bind, Engine) else factory()
    with session:
        try:
            yield session
        finally:
            session.rollback()


_read_only_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_base_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _read_only(engine: Engine) -> Engine:
    # The same pool with an option that makes `_sqlite_begin` open a deferred transaction;
    # set on the engine rather than on a connection, so the session connects only if used.
    found = _read_only_engines.get(engine)
    if found is None:
        found = engine.execution_options(**{READ_ONLY: True})
        _read_only_engines[engine] = found
        _base_engines[found] = engine
    return found


def base_engine(bind: Engine) -> Engine:
    """The engine a reading session's bind was made from (itself for any other)."""
    return _base_engines.get(bind, bind)


# The newest Alembic revision. Checked against the migrations by a test; kept
# here so that a restart with an up-to-date schema never imports Alembic.
SCHEMA_REVISION = "0017"


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when it is there)."""
    if current_revision(engine) == SCHEMA_REVISION:
        return
    from alembic import command

    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).resolve().parent.parent / "migrations")
    )
    return config
