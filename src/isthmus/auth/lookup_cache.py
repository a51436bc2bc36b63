"""One-second caches in front of the token endpoints' lookups: clients and scope strings.

Every token and introspection request authenticates a client, and every token
request resolves a scope string; both change rarely, and on a busy server the
same few are asked for thousands of times a second. Entries live one second
and are dropped at once when this process commits a change to clients,
credentials or scopes; a change made by another process (a CLI command,
another worker or node) is seen within the second, the same bound as token
introspection's cache. Cached values are immutable snapshots, never rows
attached to a session, so threads share them safely.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from isthmus.auth.models import Client, ClientCredential, Scope, ScopeDependency, Token
from isthmus.core.db import Base, base_engine

V = TypeVar("V")
R = TypeVar("R", bound=Base)
TTL_SECONDS = 1.0
MAX_ENTRIES = 4096
_WATCHED = (Client, ClientCredential, Scope, ScopeDependency)
# Tokens are inserted on every request but change only when revoked.
_WATCHED_WHEN_CHANGED = (*_WATCHED, Token)
_STALE = "isthmus.lookup_cache.stale"


class LookupCache(Generic[V]):
    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + TTL_SECONDS, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_caches: weakref.WeakKeyDictionary[Engine, dict[str, LookupCache[Any]]] = (
    weakref.WeakKeyDictionary()
)
_caches_lock = threading.Lock()


def cache_for(session: Session, name: str) -> LookupCache[Any] | None:
    """The named cache of the session's database, or None for a session without an engine."""
    if not isinstance(session.bind, Engine):
        return None
    engine = base_engine(session.bind)
    caches = _caches.get(engine)
    if caches is None:
        with _caches_lock:
            caches = _caches.setdefault(engine, {})
    cache = caches.get(name)
    if cache is None:
        with _caches_lock:
            cache = caches.setdefault(name, LookupCache())
    return cache


def detached_copy(row: R) -> R:
    """A copy of a row's columns that no session owns (relationships are never loaded on it):
    a row object belongs to one session, and so to one thread."""
    mapper = type(row).__mapper__
    return type(row)(**{column.key: getattr(row, column.key) for column in mapper.column_attrs})


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, _context: Any) -> None:
    if any(isinstance(obj, _WATCHED) for obj in session.new) or any(
        isinstance(obj, _WATCHED_WHEN_CHANGED) for obj in (*session.dirty, *session.deleted)
    ):
        session.info[_STALE] = True


@event.listens_for(Session, "after_commit")
def _forget_changed(session: Session) -> None:
    if session.info.pop(_STALE, False) and isinstance(session.bind, Engine):
        for cache in _caches.get(base_engine(session.bind), {}).values():
            cache.clear()


@event.listens_for(Session, "after_rollback")
def _discard_note(session: Session) -> None:
    session.info.pop(_STALE, None)
