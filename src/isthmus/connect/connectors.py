"""Storage connectors kept open between requests, one per (collection root, local account)
for POSIX, one per (endpoint, collection root, key pair) for S3, one per (upstream folder,
user credential) for WebDAV.

Opening a POSIX connector opens its root (and, for another account, starts a worker process
running as that account); an S3 one builds a boto3 client and its connection pool; a WebDAV
one its HTTPS client (a TLS handshake per session otherwise); doing that on every request
would cost more than the request.
Connectors are lent out and counted; the least recently used idle ones beyond a bound are
closed, never one that a request (or a download still streaming) holds.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from types import TracebackType

from isthmus.storage.accounts import LocalAccount
from isthmus.storage.connector import Connector
from isthmus.storage.posix import open_posix_connector
from isthmus.storage.s3 import S3Credentials, open_s3_connector

Opener = Callable[[str, LocalAccount], Connector]
MAX_IDLE = 32

_Key = tuple[Hashable, ...]


@dataclass
class _Slot:
    connector: Connector
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)


class ConnectorLease:
    """One borrowing of a pooled connector; `release` (or leaving the ``with``) gives it back."""

    def __init__(self, pool: ConnectorPool, key: _Key, connector: Connector) -> None:
        self.connector = connector
        self._pool: ConnectorPool | None = pool
        self._key = key

    def release(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool._give_back(self._key)

    def __enter__(self) -> ConnectorLease:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


class ConnectorPool:
    """Thread-safe: requests run in worker threads."""

    def __init__(self, opener: Opener | None = None, max_idle: int = MAX_IDLE) -> None:
        self._opener: Opener = opener or (lambda root, account: open_posix_connector(
            root, account))
        self._max_idle = max_idle
        self._slots: dict[_Key, _Slot] = {}
        self._lock = threading.Lock()
        self._closed = False

    def lease(self, root: str, account: LocalAccount) -> ConnectorLease:
        """A connector over ``root`` acting as ``account``; opened now if none is pooled."""
        return self._lease(("posix", root, account.name, account.uid),
                           lambda: self._opener(root, account))

    def lease_s3(self, endpoint_url: str | None, bucket: str, prefix: str,
                 credentials: S3Credentials | None) -> ConnectorLease:
        """A connector over a bucket (or a prefix in it) with these keys. New keys make a
        new connector; the old one is closed once idle. The secret is keyed by digest."""
        secret = (hashlib.sha256(credentials.secret_key.encode()).hexdigest()
                  if credentials is not None else None)
        key_id = credentials.key_id if credentials is not None else None
        return self._lease(("s3", endpoint_url, bucket, prefix, key_id, secret),
                           lambda: open_s3_connector(endpoint_url, bucket, prefix, credentials))

    def lease_webdav(self, key: _Key, opener: Callable[[], Connector]) -> ConnectorLease:
        """A connector over a WebDAV gateway's upstream folder for one user credential;
        ``key`` names all it is opened with (see `webdav_gateways.lease_connector`)."""
        return self._lease(("webdav", *key), opener)

    def _lease(self, key: _Key, opener: Callable[[], Connector]) -> ConnectorLease:
        with self._lock:
            slot = self._slots.get(key)
            if slot is not None:
                slot.users += 1
                return ConnectorLease(self, key, slot.connector)
        # Opening may start a process: not while other threads wait for the lock.
        opened = opener()
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot(opened)
            slot.users += 1
            connector = slot.connector
        if connector is not opened:  # another thread opened the same one meanwhile
            opened.close()
        return ConnectorLease(self, key, connector)

    def _give_back(self, key: _Key) -> None:
        with self._lock:
            slot = self._slots[key]
            slot.users -= 1
            slot.last_used = time.monotonic()
            idle = sorted((s.last_used, k) for k, s in self._slots.items() if s.users == 0)
            keep = 0 if self._closed else self._max_idle
            excess = len(idle) - keep
            doomed = [self._slots.pop(k).connector for _, k in idle[:excess]] if excess > 0 \
                else []
        for connector in doomed:
            connector.close()

    def close(self) -> None:
        """Close every idle connector (those still lent out close when given back)."""
        with self._lock:
            self._closed = True
            idle = [k for k, s in self._slots.items() if s.users == 0]
            doomed = [self._slots.pop(k).connector for k in idle]
        for connector in doomed:
            connector.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)
