"""File I/O as another local account: a worker process that becomes the account and serves a
`PosixConnector` over a pipe, and `WorkerConnector`, the connector that talks to it.

Why a process: a server running as root must not touch a mapped user's files with root's
privileges (it would bypass every permission on the filesystem), and a thread cannot hold a
uid of its own. The worker is started by the server (as root), imports its code, then drops to
the account's groups, gid and uid for good (`setgroups`, `setresgid`, `setresuid`, and a check
that root cannot be regained) before it opens the collection root. From then on the kernel
enforces the account's permissions on every operation, and the same confinement walk as
in-process applies (the worker *is* a PosixConnector).

Trust: the worker runs as the account, so whatever that account can do to its own processes,
it can do to the worker. The server therefore treats everything the worker says as untrusted
data: a small framed protocol of JSON documents and raw byte chunks (never pickle), sizes
bounded, every field type-checked, errors rebuilt only from a fixed list of error types.

Protocol (stdin/stdout of the worker): frames of ``kind`` (one byte: ``J`` JSON, ``D`` data)
and a 4-byte big-endian length, then the payload. The server sends an ``init`` document, then
requests ``{"op": ..., ...}`` (a ``write`` request is followed by one ``D`` frame); each gets
one response: ``{"ok": result}``, ``{"error": {"type", "message", "path"}}``, or for ``read``
a ``D`` frame (empty at the end of the file). Reads are pulled chunk by chunk, so a reader that
stops early costs nothing and the pipe never holds more than one chunk.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

from isthmus.storage.accounts import LocalAccount
from isthmus.storage.connector import (
    AtomicWriter,
    Connector,
    Entry,
    ReadStream,
    WriteOptions,
    check_range,
)
from isthmus.storage.digests import Chunk, canonical_algorithms
from isthmus.storage.errors import (
    ERROR_TYPES,
    AccountNotPermitted,
    StorageError,
    StorageUnavailable,
)
from isthmus.storage.paths import normalize
from isthmus.storage.posix import PosixAtomicWriter, PosixConnector

_HEADER = struct.Struct(">cI")
_JSON, _DATA = b"J", b"D"
MAX_JSON_FRAME = 256 * 1024 * 1024  # a listing of about a million entries
MAX_DATA_FRAME = 16 * 1024 * 1024
_MAX_MESSAGE = 1000


class _ProtocolError(Exception):
    """The other side broke the protocol or went away."""


def _send(stream: IO[bytes], kind: bytes, payload: bytes) -> None:
    stream.write(_HEADER.pack(kind, len(payload)))
    stream.write(payload)
    stream.flush()


def _send_json(stream: IO[bytes], document: Mapping[str, Any]) -> None:
    _send(stream, _JSON, json.dumps(document, separators=(",", ":")).encode("utf-8"))


def _receive(stream: IO[bytes]) -> tuple[bytes, bytes]:
    header = _read_exactly(stream, _HEADER.size)
    kind, length = _HEADER.unpack(header)
    if kind not in (_JSON, _DATA):
        raise _ProtocolError(f"unknown frame kind {kind!r}")
    if length > (MAX_JSON_FRAME if kind == _JSON else MAX_DATA_FRAME):
        raise _ProtocolError("frame too large")
    return kind, _read_exactly(stream, length)


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise _ProtocolError("the other side closed the pipe")
    return data


def _widen_pipe(stream: IO[bytes]) -> None:
    """Best effort: a 1 MiB pipe holds a whole chunk, halving the context switches."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, 1024 * 1024)


# --- the server's side ---------------------------------------------------------------------


class WorkerConnector(Connector):
    """A connector whose I/O happens in a worker process running as ``account``.

    One worker per connector, started now (so a root the account cannot reach is reported at
    once) and restarted if it dies. Calls from several threads are serialised per exchange,
    so concurrent streams interleave chunk by chunk.
    """

    supports_symlinks = True
    holds_many_writers = True

    def __init__(self, root: str | os.PathLike[str], account: LocalAccount) -> None:
        if os.geteuid() != 0:
            raise AccountNotPermitted(
                f"Only a server running as root can act as the local account '{account.name}'"
            )
        self.root = os.path.abspath(os.fspath(root))
        self.account = account
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False
        with self._lock:
            self._start()

    def _start(self) -> None:
        process = subprocess.Popen(
            [sys.executable, "-I", "-m", "isthmus.storage.posix_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            cwd="/",
            # Nothing of the server's environment (database URLs, secrets) reaches the worker.
            env={"PATH": os.defpath, "LANG": "C.UTF-8"},
        )
        assert process.stdin is not None and process.stdout is not None
        _widen_pipe(process.stdin)
        _widen_pipe(process.stdout)
        self._process = process
        init = {
            "uid": self.account.uid,
            "gid": self.account.gid,
            "groups": list(self.account.groups),
            "root": self.root,
        }
        try:
            self._exchange({"op": "init", **init})
        except StorageError:
            self._stop()
            raise

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop()

    def _exchange(self, request: Mapping[str, Any], data: bytes | None = None) -> Any:
        """Send one request (and its data frame) and return the result; the lock is held."""
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            _send_json(process.stdin, request)
            if data is not None:
                _send(process.stdin, _DATA, data)
            kind, payload = _receive(process.stdout)
            if kind == _DATA:
                return payload
            response = json.loads(payload)
        except (OSError, ValueError, _ProtocolError) as error:
            self._stop()
            raise StorageUnavailable(
                f"The storage worker for the local account '{self.account.name}' stopped ({error})"
            ) from None
        if not isinstance(response, dict):
            self._stop()
            raise StorageUnavailable("The storage worker sent a malformed response")
        if "error" in response:
            raise _rebuild_error(response["error"])
        return response.get("ok")

    def _call(self, op: str, data: bytes | None = None, **arguments: Any) -> Any:
        with self._lock:
            if self._closed:
                raise StorageUnavailable("This storage connection is closed")
            if self._process is None or self._process.poll() is not None:
                self._stop()
                self._start()
            return self._exchange({"op": op, **arguments}, data)

    # --- the connector interface, forwarded ---------------------------------------------

    def stat(self, path: str) -> Entry:
        return Entry.from_dict(_mapping(self._call("stat", path=normalize(path))))

    def list(self, path: str) -> Sequence[Entry]:
        entries = self._call("list", path=normalize(path))
        if not isinstance(entries, list):
            raise StorageUnavailable("The storage worker sent a malformed listing")
        return [Entry.from_dict(_mapping(entry)) for entry in entries]

    def open_read(self, path: str, offset: int = 0, length: int | None = None) -> ReadStream:
        check_range(path, offset, length)
        opened = _mapping(
            self._call("open_read", path=normalize(path), offset=offset, length=length)
        )
        handle = _integer(opened.get("handle"))
        entry = Entry.from_dict(_mapping(opened.get("entry")))

        def read(size: int) -> bytes:
            size = min(size, MAX_DATA_FRAME)
            data = self._call("read", handle=handle, size=size)
            if not isinstance(data, bytes) or len(data) > size:
                raise StorageUnavailable("The storage worker sent a malformed chunk")
            return data

        def close() -> None:
            with contextlib.suppress(StorageError):
                self._call("close", handle=handle)

        return ReadStream(entry, read, close, length=length, chunk_size=self.chunk_size)

    def begin_write(self, path: str, options: WriteOptions | None = None) -> AtomicWriter:
        options = options or WriteOptions()
        canonical = normalize(path)
        opened = _mapping(
            self._call(
                "begin_write",
                path=canonical,
                overwrite=options.overwrite,
                mtime=options.mtime,
                resume_key=options.resume_key,
            )
        )
        handle, kept = _integer(opened.get("handle")), _integer(opened.get("kept"))
        return _WorkerAtomicWriter(self._call, canonical, options, handle, kept)

    def mkdir(self, path: str, parents: bool = False) -> None:
        self._call("mkdir", path=normalize(path), parents=parents)

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        self._call("rename", src=normalize(src), dst=normalize(dst), overwrite=overwrite)

    def delete(self, path: str, recursive: bool = False) -> None:
        self._call("delete", path=normalize(path), recursive=recursive)

    def symlink(self, path: str, target: str) -> None:
        self._call("symlink", path=normalize(path), target=target)

    def set_mtime(self, path: str, mtime: float) -> None:
        self._call("set_mtime", path=normalize(path), mtime=mtime)

    def real_path(self, path: str, *, follow: bool = True) -> str:
        found = self._call("real_path", path=normalize(path), follow=follow)
        if not isinstance(found, str):
            raise StorageUnavailable("The storage worker sent a malformed path")
        return normalize(found)

    def digests(self, path: str, algorithms: Iterable[str]) -> dict[str, bytes]:
        names = canonical_algorithms(algorithms)
        found = _mapping(self._call("digests", path=normalize(path), algorithms=list(names)))
        return _digests_from_hex(found, names)


class _WorkerAtomicWriter(AtomicWriter):
    """Counts and hashes here, in the server; the worker only stores the bytes."""

    def __init__(
        self, call: Callable[..., Any], path: str, options: WriteOptions, handle: int, kept: int
    ) -> None:
        super().__init__(path, options)
        self._call = call
        self._handle = handle
        self._kept = kept

    @property
    def resumable(self) -> int:
        return self._kept

    def _keep(self, offset: int) -> None:
        self._call("keep", handle=self._handle, offset=offset)

    def checkpoint(self) -> int:
        durable = _integer(self._call("checkpoint", handle=self._handle))
        # Counted here once each write returns: never trust the worker for more than that.
        return min(durable, self.size)

    def _write_chunks(self, chunks: Sequence[Chunk]) -> None:
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        for start in range(0, len(data), MAX_DATA_FRAME):
            self._call("write", bytes(data[start : start + MAX_DATA_FRAME]), handle=self._handle)

    def _flush(self) -> None:
        self._call("sync", handle=self._handle)

    def _reread(self, algorithms: Sequence[str]) -> tuple[int, dict[str, bytes]]:
        names = canonical_algorithms(algorithms)
        found = _mapping(self._call("stored_digests", handle=self._handle, algorithms=list(names)))
        size = _integer(found.get("size"))
        return size, _digests_from_hex(_mapping(found.get("digests")), names)

    def _publish(self, overwrite: bool, mtime: float | None) -> None:  # noqa: ARG002
        # overwrite and mtime were given to the worker's writer when it began.
        self._call("commit", handle=self._handle)

    def _keeps_for_resume(self) -> bool:
        try:
            self._call("suspend", handle=self._handle)
        except StorageError:
            return False  # then discarded, as a worker's failure would anyway
        return True

    def _discard(self) -> None:
        # A worker that died took its temporary file's descriptor with it; the name is a
        # reserved, hidden one that a later cleanup may remove.
        with contextlib.suppress(StorageError):
            self._call("abort", handle=self._handle)


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise StorageUnavailable("The storage worker sent a malformed response")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StorageUnavailable("The storage worker sent a malformed response")
    return value


def _digests_from_hex(found: Mapping[str, Any], names: Sequence[str]) -> dict[str, bytes]:
    try:
        return {name: bytes.fromhex(found[name]) for name in names}
    except (KeyError, TypeError, ValueError):
        raise StorageUnavailable("The storage worker sent malformed checksums") from None


def _rebuild_error(error: Any) -> StorageError:
    if not isinstance(error, dict):
        return StorageUnavailable("The storage worker sent a malformed error")
    kind = ERROR_TYPES.get(str(error.get("type")), StorageError)
    message = str(error.get("message", "The storage operation failed"))[:_MAX_MESSAGE]
    path = error.get("path")
    return kind(message, path if isinstance(path, str) else None)


# --- the worker's side ---------------------------------------------------------------------


def drop_privileges(uid: int, gid: int, groups: Sequence[int]) -> None:
    """Become ``uid``/``gid`` with exactly ``groups``, irreversibly, or exit."""
    if os.geteuid() == 0:
        os.setgroups(list(groups))
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise SystemExit("the storage worker could not become the requested account")
    if uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            return
        raise SystemExit("the storage worker could regain root after dropping it")


class _WorkerServer:
    """Serves one PosixConnector, as the account the worker became."""

    def __init__(self, connector: PosixConnector) -> None:
        self.connector = connector
        self._streams: dict[int, ReadStream] = {}
        self._writers: dict[int, PosixAtomicWriter] = {}
        self._next_handle = 1

    def _handle(self) -> int:
        handle, self._next_handle = self._next_handle, self._next_handle + 1
        return handle

    def serve(self, request: Mapping[str, Any], data: bytes | None) -> Any:
        op = request.get("op")
        method = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
        if method is None:
            raise StorageError(f"Unknown storage operation {op!r}")
        arguments = {key: value for key, value in request.items() if key != "op"}
        if data is not None:
            arguments["data"] = data
        return method(**arguments)

    def op_stat(self, path: str) -> Any:
        return self.connector.stat(path).to_dict()

    def op_list(self, path: str) -> Any:
        return [entry.to_dict() for entry in self.connector.list(path)]

    def op_open_read(self, path: str, offset: int, length: int | None) -> Any:
        stream = self.connector.open_read(path, offset, length)
        handle = self._handle()
        self._streams[handle] = stream
        return {"handle": handle, "entry": stream.entry.to_dict()}

    def op_read(self, handle: int, size: int) -> bytes:
        return self._stream(handle).read(max(0, min(size, MAX_DATA_FRAME)))

    def op_close(self, handle: int) -> Any:
        stream = self._streams.pop(handle, None)
        if stream is not None:
            stream.close()
        return {}

    def op_begin_write(
        self, path: str, overwrite: bool, mtime: float | None, resume_key: str | None = None
    ) -> Any:
        # The server counts and hashes; this side only stores.
        options = WriteOptions(
            algorithms=(), overwrite=overwrite, mtime=mtime, resume_key=resume_key
        )
        writer = self.connector.begin_write(path, options)
        assert isinstance(writer, PosixAtomicWriter)
        handle = self._handle()
        self._writers[handle] = writer
        return {"handle": handle, "kept": writer.resumable}

    def op_keep(self, handle: int, offset: int) -> Any:
        self._writer(handle).resume(offset, None)
        return {}

    def op_checkpoint(self, handle: int) -> Any:
        return self._writer(handle).checkpoint()

    def op_write(self, handle: int, data: bytes) -> Any:
        self._writer(handle).write(data)
        return {}

    def op_sync(self, handle: int) -> Any:
        self._writer(handle).sync()
        return {}

    def op_stored_digests(self, handle: int, algorithms: list[str]) -> Any:
        size, digests = self._writer(handle).stored_digests(algorithms)
        return {"size": size, "digests": {name: value.hex() for name, value in digests.items()}}

    def op_commit(self, handle: int) -> Any:
        writer = self._writer(handle)
        del self._writers[handle]
        writer.commit()  # a failed commit discards the temporary file itself
        return {}

    def op_suspend(self, handle: int) -> Any:
        writer = self._writers.pop(handle, None)
        if writer is not None:
            writer.suspend()
        return {}

    def op_abort(self, handle: int) -> Any:
        writer = self._writers.pop(handle, None)
        if writer is not None:
            writer.abort()
        return {}

    def op_mkdir(self, path: str, parents: bool) -> Any:
        self.connector.mkdir(path, parents)
        return {}

    def op_rename(self, src: str, dst: str, overwrite: bool) -> Any:
        self.connector.rename(src, dst, overwrite=overwrite)
        return {}

    def op_delete(self, path: str, recursive: bool) -> Any:
        self.connector.delete(path, recursive)
        return {}

    def op_symlink(self, path: str, target: str) -> Any:
        self.connector.symlink(path, target)
        return {}

    def op_real_path(self, path: str, follow: bool) -> Any:
        return self.connector.real_path(path, follow=follow)

    def op_set_mtime(self, path: str, mtime: float) -> Any:
        self.connector.set_mtime(path, mtime)
        return {}

    def op_digests(self, path: str, algorithms: list[str]) -> Any:
        found = self.connector.digests(path, algorithms)
        return {name: value.hex() for name, value in found.items()}

    def _stream(self, handle: int) -> ReadStream:
        stream = self._streams.get(handle)
        if stream is None:
            raise StorageError("Unknown read handle")
        return stream

    def _writer(self, handle: int) -> PosixAtomicWriter:
        writer = self._writers.get(handle)
        if writer is None:
            raise StorageError("Unknown write handle")
        return writer


def main() -> int:
    incoming = sys.stdin.buffer
    # The protocol owns the original stdout; anything printed by accident goes to stderr.
    outgoing = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    try:
        kind, payload = _receive(incoming)
        init = json.loads(payload)
        if kind != _JSON or not isinstance(init, dict) or init.get("op") != "init":
            return 2
        drop_privileges(int(init["uid"]), int(init["gid"]), [int(g) for g in init["groups"]])
        try:
            server = _WorkerServer(PosixConnector(str(init["root"])))
        except StorageError as error:
            _send_json(outgoing, _error_document(error))
            return 1
        _send_json(outgoing, {"ok": {}})
        while True:
            kind, payload = _receive(incoming)
            request = json.loads(payload)
            data = None
            if isinstance(request, dict) and request.get("op") == "write":
                data_kind, data = _receive(incoming)
                if data_kind != _DATA:
                    return 2
            try:
                result = server.serve(request if isinstance(request, dict) else {}, data)
            except StorageError as error:
                _send_json(outgoing, _error_document(error))
                continue
            except (TypeError, ValueError, KeyError) as error:
                _send_json(outgoing, _error_document(StorageError(f"Bad request: {error}")))
                continue
            if isinstance(result, bytes):
                _send(outgoing, _DATA, result)
            else:
                _send_json(outgoing, {"ok": result})
    except _ProtocolError:
        return 0  # the server closed the pipe: time to go
    except Exception:
        traceback.print_exc()
        return 1


def _error_document(error: StorageError) -> dict[str, Any]:
    return {"error": {"type": type(error).__name__, "message": error.message, "path": error.path}}


if __name__ == "__main__":
    sys.exit(main())
