"""The access log: one line per HTTP request, for operators.

Each line is ``TIME CLIENT METHOD PATH STATUS DURATION_MS``, space separated::

    2025-06-01T12:00:00.123+00:00 127.0.0.1 GET /v2/api/identities 200 3.1

The path is logged as the client sent it (percent-encoded) without its query
string, which may carry codes, tokens or usernames; nothing from headers or
bodies is logged. Bytes outside printable ASCII are percent-escaped, so a path
cannot forge a line. The file is opened with ``O_APPEND`` and each line written
with one ``write``: the worker processes of ``isthmus serve --workers N`` share
one file without interleaving lines.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_LOGGED_PATH = 2048


class AccessLog:
    """An append-only file of request lines."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def write(self, scope: Scope, status: int, seconds: float) -> None:
        client = scope.get("client")
        line = " ".join((
            datetime.now(UTC).isoformat(timespec="milliseconds"),
            client[0] if client else "-",
            _printable(scope.get("method", "-")),
            _logged_path(scope),
            str(status),
            f"{seconds * 1000:.1f}",
        ))
        os.write(self._fd, (line + "\n").encode("ascii"))

    def close(self) -> None:
        os.close(self._fd)


def _printable(text: str) -> str:
    return "".join(char if 0x21 <= ord(char) < 0x7F else "%" + format(ord(char) & 0xFF, "02X")
                   for char in text)


def _logged_path(scope: Scope) -> str:
    raw: Any = scope.get("raw_path")
    if isinstance(raw, bytes):
        # ASGI's raw_path has no query string; some servers keep it: drop it here too.
        path = raw.split(b"?", 1)[0].decode("latin-1")
    else:
        path = str(scope.get("path", ""))
    return _printable(path[:MAX_LOGGED_PATH]) or "/"


class AccessLogMiddleware:
    """Times each request and logs it just before its last byte is sent.

    Logging before the end of the response (not after) means a client that has
    its full answer will find the line in the file: tests and operators count
    requests as they happen.
    """

    def __init__(self, app: ASGIApp, log: AccessLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        logged = False

        def finish(final_status: int) -> None:
            nonlocal logged
            if not logged:
                logged = True
                self.log.write(scope, final_status, time.perf_counter() - started)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finish(status)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except BaseException:
            # The outer error handler answers an unhandled error with a 500.
            finish(status or 500)
            raise
        finish(status)  # also when the client went away before the response ended
