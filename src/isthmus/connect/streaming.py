"""File bytes between an HTTP connection and storage, a couple of chunks at a time.

Storage calls block, so they run in worker threads; each direction overlaps one storage
call with the network (a download reads the next chunk while the current one is sent, an
upload writes one block while the next arrives). A reader or writer is never used by two
threads at once, and never released while a call on it is still running, however the
request ends: finished, failed, or the client gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import anyio
import anyio.to_thread
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from isthmus.storage.connector import CHUNK_SIZE, AtomicWriter, ReadStream


async def settle(work: asyncio.Future[Any] | None) -> None:
    """Wait until a worker thread's job has finished, whatever its outcome (already
    reported elsewhere, or of no interest once the request has failed)."""
    if work is not None:
        await asyncio.wait([work])
        if not work.cancelled():
            work.exception()  # retrieved, so asyncio does not log it as forgotten


class FileResponse(StreamingResponse):
    """Streams ``stream``; ``release`` (run in a worker thread) closes it and whatever it
    came from, once the response is over and no read is running."""

    def __init__(self, stream: ReadStream, release: Callable[[], None], status: int,
                 headers: dict[str, str]) -> None:
        super().__init__(self._chunks(), status_code=status, headers=headers)
        self._stream = stream
        self._release = release
        self._reading: asyncio.Future[bytes] | None = None

    async def _chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        self._reading = loop.run_in_executor(None, self._stream.read, CHUNK_SIZE)
        # shield: a cancelled response must not forget a read that is still running.
        while chunk := await asyncio.shield(self._reading):
            self._reading = loop.run_in_executor(None, self._stream.read, CHUNK_SIZE)
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await settle(self._reading)
                await anyio.to_thread.run_sync(self._release)


async def receive_into(body: AsyncIterable[bytes], writer: AtomicWriter) -> None:
    """Write a request body into ``writer`` in blocks of about `CHUNK_SIZE`: the pieces
    received are handed on as they came, without copying them into one buffer. At most two
    blocks are held, one gathering while storage writes the other, and the socket is read
    only as fast as storage takes them (uvicorn stops reading when its small buffer is
    full). Storage errors propagate; the caller may abort ``writer`` as soon as this
    returns or raises."""
    loop = asyncio.get_running_loop()
    in_flight: asyncio.Future[None] | None = None
    gathered: list[bytes] = []
    size = 0
    try:
        async for received in body:
            gathered.append(received)
            size += len(received)
            if size >= CHUNK_SIZE:
                if in_flight is not None:
                    # shield: if the request is cancelled, the write still runs to its end,
                    # and the finally below waits for it.
                    await asyncio.shield(in_flight)
                in_flight = loop.run_in_executor(None, writer.write_chunks, gathered)
                gathered, size = [], 0
        if in_flight is not None:
            await asyncio.shield(in_flight)
        if gathered:
            in_flight = loop.run_in_executor(None, writer.write_chunks, gathered)
            await asyncio.shield(in_flight)
    finally:
        with anyio.CancelScope(shield=True):
            await settle(in_flight)
