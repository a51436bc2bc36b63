"""The connector interface: what Transfer's engine and Connect's HTTPS/WebDAV server know of
storage (list, stat, read with offset, atomic write, mkdir, rename, delete, checksum).

Paths are collection-relative POSIX strings (``/a/b``), canonicalised by `paths.normalize`.
A connector knows nothing of tasks, collections or users: whoever opens one has already
decided which root it is confined to and which local account it acts as.
"""

from __future__ import annotations

import hmac
import types
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self

from isthmus.storage.digests import (
    DEFAULT_ALGORITHMS,
    BackgroundDigest,
    Chunk,
    MultiDigest,
    canonical_algorithm,
    canonical_algorithms,
)
from isthmus.storage.errors import (
    ChecksumMismatch,
    InvalidArgument,
    NotFound,
    NotSupported,
    SizeMismatch,
    StorageError,
)
from isthmus.storage.paths import normalize

# Bytes moved per step: large enough for throughput, small enough that memory stays flat.
CHUNK_SIZE = 1024 * 1024


class EntryType(StrEnum):
    """An entry's kind, named as Transfer's ``file`` documents name them."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    CHAR_DEVICE = "chr"
    BLOCK_DEVICE = "blk"
    PIPE = "pipe"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory entry as `stat` and `list` report it.

    A symlink is reported as a symlink (``type`` SYMLINK, ``link_target`` its collection path
    when it points inside the root, its text when that is relative, and None when it is an
    absolute path outside the root, which would name the server's own folders); ``target``
    describes what it points at, or is None when it dangles or leads outside the root
    (Transfer's ``invalid_symlink``).
    """

    name: str
    type: EntryType
    size: int
    mtime: float  # seconds since the epoch
    permissions: int | None = None  # mode bits (0o7777), None where the storage has none
    user: str | None = None
    group: str | None = None
    link_target: str | None = None
    target: Entry | None = None

    @property
    def modified(self) -> datetime:
        return datetime.fromtimestamp(self.mtime, UTC)

    @property
    def resolved(self) -> Entry:
        """What a reader gets: the target of a working symlink, else the entry itself."""
        return self.target if self.target is not None else self

    def is_dir(self) -> bool:
        return self.resolved.type is EntryType.DIR

    def is_file(self) -> bool:
        return self.resolved.type is EntryType.FILE

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type.value,
            "size": self.size,
            "mtime": self.mtime,
            "permissions": self.permissions,
            "user": self.user,
            "group": self.group,
            "link_target": self.link_target,
            "target": self.target.to_dict() if self.target is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        """Rebuild an entry from `to_dict` output, checking every field's type (the data may
        come from a less trusted process)."""
        try:
            target = data["target"]
            entry = cls(
                name=_typed(data["name"], str),
                type=EntryType(data["type"]),
                size=_typed(data["size"], int),
                mtime=float(_typed(data["mtime"], (int, float))),
                permissions=_optional(data["permissions"], int),
                user=_optional(data["user"], str),
                group=_optional(data["group"], str),
                link_target=_optional(data["link_target"], str),
                target=cls.from_dict(target) if target is not None else None,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StorageError(f"Malformed entry: {error}") from None
        return entry


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"unexpected {type(value).__name__}")
    return value


def _optional(value: Any, kind: type) -> Any:
    return None if value is None else _typed(value, kind)


class ReadStream(Iterator[bytes]):
    """An open file: iterate for chunks, or `read` like a file object. ``entry`` describes the
    file as it was opened (so a Content-Length never disagrees with the bytes served)."""

    def __init__(
        self,
        entry: Entry,
        read: Callable[[int], bytes],
        close: Callable[[], None],
        *,
        length: int | None = None,
        chunk_size: int = CHUNK_SIZE,
        readinto: Callable[[memoryview], int] | None = None,
    ) -> None:
        self.entry = entry
        self.chunk_size = chunk_size
        self._read = read
        self._readinto = readinto
        self._close: Callable[[], None] | None = close
        self._remaining = length

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that remain when negative); ``b""`` at the end."""
        if self._close is None:
            return b""
        if size < 0:
            return b"".join(iter(lambda: self.read(self.chunk_size), b""))
        if self._remaining is not None:
            size = min(size, self._remaining)
        if size == 0:
            return b""
        data = self._read(size)
        if self._remaining is not None:
            self._remaining -= len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        """`read` into ``buffer`` (as many bytes as it holds at most); 0 at the end. Storage
        that can fills it directly: a copy reusing its buffers never touches new memory."""
        size = len(buffer)
        if self._close is None:
            return 0
        if self._remaining is not None:
            size = min(size, self._remaining)
        if size == 0:
            return 0
        if self._readinto is not None:
            count = self._readinto(buffer[:size])
        else:
            data = self._read(size)
            count = len(data)
            buffer[:count] = data
        if self._remaining is not None:
            self._remaining -= count
        return count

    def __next__(self) -> bytes:
        chunk = self.read(self.chunk_size)
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class WriteResult:
    """A file that is now visible at ``path``: its size and the digests of what was written."""

    path: str
    size: int
    digests: Mapping[str, bytes] = field(default_factory=dict)

    def hexdigest(self, algorithm: str) -> str:
        (name,) = canonical_algorithms([algorithm])
        return self.digests[name].hex()


# What committing one of several writers came to (`Connector.commit_all`).
CommitOutcome = WriteResult | StorageError
_Outcomes = list[CommitOutcome]


@dataclass(frozen=True)
class WriteOptions:
    """How `begin_write` / `write_atomic` treat the new file.

    - ``expected_size``: refuse (and discard) a stream of any other length;
    - ``expected_digests``: raw digests the content must have (a client's ``Repr-Digest``,
      Transfer's ``external_checksum``);
    - ``algorithms``: digests to compute while streaming (returned in the result);
    - ``mtime``: the modification time the file appears with (preserve_timestamp);
    - ``overwrite``: replace an existing file (atomically) or refuse with AlreadyExists;
    - ``verify_on_disk``: after fsync, read the file back from storage and compare digests,
      so what becomes visible is what the storage holds, not just what was sent;
    - ``resume_key``: a stable name for the temporary file (Transfer names it after the task
      and the item), so that a write cut short by a crash is found again (`AtomicWriter.resume`);
      storage that cannot resume ignores it;
    - ``background``: hash (and, with ``verify_on_disk``, read back each written range) in
      threads of their own while the caller goes on writing: a large file's digests cost
      little wall time. The read-back then happens as each range is written (from what the
      storage holds at that moment, often its cache) rather than after the fsync.
    """

    expected_size: int | None = None
    expected_digests: Mapping[str, bytes] | None = None
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS
    mtime: float | None = None
    overwrite: bool = True
    verify_on_disk: bool = False
    resume_key: str | None = None
    background: bool = False

    def digest_algorithms(self) -> tuple[str, ...]:
        """The algorithms to compute: those asked for, plus those needed to check."""
        return canonical_algorithms([*self.algorithms, *(self.expected_digests or {})])


class AtomicWriter(ABC):
    """A file being written under a temporary name: `write` chunks, then `commit` makes it
    visible at its final name in one rename, or `abort` discards it. Nothing is ever visible at
    the final name before `commit` returns, and a failed commit leaves nothing behind.

    Subclasses provide the storage steps; this class counts, hashes and checks.
    """

    def __init__(self, path: str, options: WriteOptions) -> None:
        if options.expected_size is not None and options.expected_size < 0:
            raise InvalidArgument("expected_size may not be negative", path)
        self.path = path
        self.options = options
        self.size = 0
        self._digest: MultiDigest | BackgroundDigest = (
            BackgroundDigest(options.digest_algorithms())
            if options.background
            else MultiDigest(options.digest_algorithms())
        )
        self._expected = {
            canonical_algorithm(name): value
            for name, value in (options.expected_digests or {}).items()
        }
        self._open = True
        # Told once how the write ended: (result, None) when committed, (None, the error)
        # when it failed, (None, None) when aborted unasked. The audit log listens here.
        self.on_finish: Callable[[WriteResult | None, BaseException | None], None] | None = None
        self._placed = False  # whether `resume` decided what the temporary file keeps

    def _finish(self, result: WriteResult | None, error: BaseException | None) -> None:
        listener, self.on_finish = self.on_finish, None
        if listener is not None:
            listener(result, error)

    @property
    def resumable(self) -> int:
        """Bytes that an earlier write under the same ``resume_key`` left in the temporary
        file (0 when there is none, or the storage cannot resume)."""
        return 0

    def resume(self, offset: int, prefix: Iterable[bytes] | None) -> None:
        """Go on from the first ``offset`` bytes (at most `resumable`) that the earlier write
        left, dropping the rest; ``prefix`` yields the source's first ``offset`` bytes, which
        are hashed, not written again, so the digests still cover the whole file (None for a
        writer that computes no digests: an account worker's). Called before the first
        `write`; a writer never resumed starts from an empty file."""
        if not self._open or self._placed:
            raise StorageError("A write resumes only before its first byte", self.path)
        if isinstance(offset, bool) or not 0 <= offset <= self.resumable:
            raise InvalidArgument(f"Cannot resume at byte {offset}", self.path)
        try:
            self._keep(offset)
            self._placed = True
            fed = 0
            for chunk in prefix if prefix is not None else ():
                self._digest.update(chunk)
                fed += len(chunk)
        except BaseException:
            self.abort()
            raise
        if prefix is not None and fed != offset:
            self.abort()
            raise SizeMismatch("The source's first bytes changed while resuming", self.path)
        self.size = offset

    def _place(self) -> None:
        """Start from an empty file unless `resume` decided what the temporary file keeps."""
        if not self._placed:
            self._keep(0)
            self._placed = True

    def checkpoint(self) -> int:
        """Make the bytes written so far durable; how many, from the start, now are (0 for
        storage that keeps nothing of an unfinished write). May run in another thread than
        the writes, which go on meanwhile."""
        return 0

    @property
    def chunks_held(self) -> int:
        """How many of the latest chunks given to `write` may still be read after it returns
        (hashed in the background): a caller reuses a buffer once that many more writes have
        returned. Writers that keep chunks longer copy them."""
        return self._digest.depth if isinstance(self._digest, BackgroundDigest) else 0

    def write(self, data: Chunk) -> None:
        self.write_chunks((data,))

    def write_chunks(self, chunks: Sequence[Chunk]) -> None:
        """Write ``chunks`` one after the other, in as few storage calls as it allows (an
        HTTP body arrives in pieces: gathering them into one buffer first would copy every
        byte once more)."""
        if not self._open:
            raise StorageError("This write was already committed or aborted", self.path)
        size = sum(len(chunk) for chunk in chunks)
        expected = self.options.expected_size
        if expected is not None and self.size + size > expected:
            error = SizeMismatch(f"More than the expected {expected} bytes were sent", self.path)
            self._finish(None, error)
            self.abort()
            raise error
        try:
            self._place()
            self._write_chunks(chunks)
        except BaseException as failed:
            self._finish(None, failed)
            self.abort()
            raise
        for chunk in chunks:
            self._digest.update(chunk)
        self.size += size

    def commit(self) -> WriteResult:
        digests = self.checked_digests()
        try:
            self._flush()
            if self.options.verify_on_disk:
                self._check_on_disk(digests)
            self._publish(self.options.overwrite, self.options.mtime)
        except BaseException as failed:
            self._finish(None, failed)
            self.abort()
            raise
        return self.committed(digests)

    # The steps of `commit`, for a connector that commits many writers together
    # (`Connector.commit_all`): check, make durable, verify, publish, each for all at once.
    def checked_digests(self) -> dict[str, bytes]:
        """The digests of what was written, once its size and any expected digests are
        checked; a failed check discards the file."""
        if not self._open:
            raise StorageError("This write was already committed or aborted", self.path)
        try:
            self._place()
            digests = self._digest.digests()
            self._check(digests)
        except BaseException as failed:
            self._finish(None, failed)
            self.abort()
            raise
        return digests

    def committed(self, digests: Mapping[str, bytes]) -> WriteResult:
        """Mark the write done, the file now durable at its final name."""
        self._open = False
        self._digest.close()
        result = WriteResult(self.path, self.size, digests)
        self._finish(result, None)
        return result

    def abort(self) -> None:
        """Discard the temporary file; harmless to call more than once."""
        if self._open:
            self._open = False
            self._finish(None, None)
            self._digest.close()
            self._discard()

    def suspend(self) -> None:
        """Stop writing but keep what was written for a later write with the same
        ``resume_key`` to go on from (`resumable`): a task paused or a server stopping keeps
        a large file's copy as a crash would. Storage that cannot resume discards it."""
        if self._open and self.options.resume_key and self._keeps_for_resume():
            self._open = False
            self._finish(None, None)
            self._digest.close()
            return
        self.abort()

    def _keeps_for_resume(self) -> bool:
        """Let go of the temporary file, keeping it under its name; False when the storage
        cannot resume (then `suspend` discards it)."""
        return False

    def _check(self, digests: Mapping[str, bytes]) -> None:
        expected_size = self.options.expected_size
        if expected_size is not None and self.size != expected_size:
            raise SizeMismatch(
                f"{self.size} bytes were sent, {expected_size} were expected", self.path
            )
        for algorithm, expected in self._expected.items():
            if not hmac.compare_digest(digests[algorithm], expected):
                raise ChecksumMismatch(f"The {algorithm} checksum does not match", self.path)

    def _check_on_disk(self, digests: Mapping[str, bytes]) -> None:
        size, on_disk = self._reread(tuple(digests) or ("adler32",))
        if size != self.size:
            raise ChecksumMismatch("The stored file's size differs from what was sent", self.path)
        for algorithm, value in on_disk.items():
            if algorithm in digests and not hmac.compare_digest(digests[algorithm], value):
                raise ChecksumMismatch(
                    f"The stored file's {algorithm} checksum differs from what was sent", self.path
                )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self.abort()  # a no-op after commit

    @abstractmethod
    def _write_chunks(self, chunks: Sequence[Chunk]) -> None: ...

    @abstractmethod
    def _flush(self) -> None:
        """Make the written bytes durable (fsync)."""

    @abstractmethod
    def _reread(self, algorithms: Sequence[str]) -> tuple[int, dict[str, bytes]]:
        """Size and digests of the temporary file as storage now holds it."""

    @abstractmethod
    def _publish(self, overwrite: bool, mtime: float | None) -> None:
        """Give the temporary file its final name (and modification time) in one step."""

    @abstractmethod
    def _discard(self) -> None:
        """Remove the temporary file, if any; must not raise for a missing one."""

    def _keep(self, offset: int) -> None:
        """Cut the temporary file to its first ``offset`` bytes and write on from there (only
        storage that resumes has anything to cut)."""
        del offset


class Connector(ABC):
    """One storage namespace, confined to its root. Every method takes collection-relative
    paths and raises `isthmus.storage.errors.StorageError` subclasses."""

    chunk_size: int = CHUNK_SIZE
    supports_symlinks: bool = False
    # Whether many writers may be open at once until `commit_all`: a local file each, not
    # a network request or upload held open (a pool of those would run dry and wait).
    holds_many_writers: bool = False

    @abstractmethod
    def stat(self, path: str) -> Entry:
        """The entry at ``path``, not following a final symlink (which is reported as one)."""

    @abstractmethod
    def list(self, path: str) -> Sequence[Entry]:
        """The entries of the directory at ``path`` (following symlinks inside the root)."""

    @abstractmethod
    def open_read(self, path: str, offset: int = 0, length: int | None = None) -> ReadStream:
        """The file's bytes from ``offset``, at most ``length`` of them."""

    @abstractmethod
    def begin_write(self, path: str, options: WriteOptions | None = None) -> AtomicWriter:
        """Start writing a file that will appear at ``path`` on commit. Its parent directory
        must exist; a directory at ``path`` is refused before any byte is sent."""

    @abstractmethod
    def mkdir(self, path: str, parents: bool = False) -> None:
        """Create a directory; with ``parents``, create missing parents and accept an existing
        directory (``mkdir -p``)."""

    @abstractmethod
    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        """Move ``src`` to ``dst`` (whose parent must exist). A symlink is moved, not its
        target. Without ``overwrite`` an existing ``dst`` is refused atomically."""

    @abstractmethod
    def delete(self, path: str, recursive: bool = False) -> None:
        """Remove a file, symlink (never its target) or directory (only if empty unless
        ``recursive``)."""

    @abstractmethod
    def set_mtime(self, path: str, mtime: float) -> None:
        """Set the modification time of the file at ``path`` (seconds since the epoch)."""

    def symlink(self, path: str, target: str) -> None:
        """Create a symlink at ``path`` pointing at the collection path ``target``."""
        raise NotSupported(f"This storage cannot link '{path}' to '{target}'", path)

    def real_path(self, path: str, *, follow: bool = True) -> str:
        """The canonical path that ``path`` reaches once symlinks inside the root are resolved
        (with ``follow``, a final symlink too; without, only its directory's). Access checks
        by path (path restrictions) look at this as well as at the path a client named, so a
        link cannot lead them somewhere they would refuse. A missing final component is kept
        as named; a missing directory is NotFound, a link leading outside is PathEscape.
        Storage without symlinks reaches every path by its own name."""
        del follow  # without symlinks there is nothing to follow
        return normalize(path)

    def open_read_checked(
        self, path: str, check: Callable[[str], None], offset: int = 0, length: int | None = None
    ) -> ReadStream:
        """`open_read` of what ``path`` reaches, once ``check`` (raising to refuse) has
        accepted that `real_path`: one walk where the storage can, rather than two."""
        real = self.real_path(path)
        check(real)
        return self.open_read(real, offset, length)

    def begin_write_checked(
        self, path: str, options: WriteOptions, check: Callable[[str], None]
    ) -> AtomicWriter:
        """`begin_write` at ``path`` (a final symlink replaced, not followed), once ``check``
        has accepted its `real_path` and before anything is made."""
        real = self.real_path(path, follow=False)
        check(real)
        return self.begin_write(real, options)

    def write_atomic(
        self, path: str, chunks: Iterable[bytes], options: WriteOptions | None = None
    ) -> WriteResult:
        """Stream ``chunks`` into a temporary name, make them durable, check them, and only
        then rename into place. On any failure (including the iterator raising) nothing is
        left at ``path`` or under the temporary name, and the error propagates."""
        with self.begin_write(path, options) as writer:
            for chunk in chunks:
                writer.write(chunk)
            return writer.commit()

    def commit_all(self, writers: Sequence[AtomicWriter]) -> Sequence[CommitOutcome]:
        """Commit writers begun on this connector, each as `AtomicWriter.commit` would: the
        outcome of each, in order (a failed one is discarded). A connector that can make
        many files durable in one step (`PosixConnector`: one syncfs) overrides this."""
        outcomes: _Outcomes = []
        for writer in writers:
            try:
                outcomes.append(writer.commit())
            except StorageError as error:
                outcomes.append(error)
        return outcomes

    def digests(self, path: str, algorithms: Iterable[str]) -> dict[str, bytes]:
        """Raw digests of the file's content, reading it once."""
        digest = MultiDigest(algorithms)
        with self.open_read(path) as stream:
            for chunk in stream:
                digest.update(chunk)
        return digest.digests()

    def checksum(self, path: str, algorithm: str) -> str:
        """The hex checksum Transfer shows (``md5``, ``sha1``, ``sha256``, ``sha512``,
        ``adler32``, in any of their spellings)."""
        (name,) = canonical_algorithms([algorithm])
        return self.digests(path, [name])[name].hex()

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except NotFound:
            return False
        return True

    def close(self) -> None:  # noqa: B027 - most connectors hold nothing to release
        """Release what the connector holds (file descriptors, worker processes)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_range(path: str, offset: int, length: int | None) -> None:
    """Refuse negative offsets and lengths before any storage is touched."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgument("The offset must be a non-negative integer", path)
    if length is not None and (
        isinstance(length, bool) or not isinstance(length, int) or length < 0
    ):
        raise InvalidArgument("The length must be a non-negative integer", path)
