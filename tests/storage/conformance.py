"""The conformance suite every storage connector passes (POSIX now; S3 and WebDAV later).

Adding a connector is one fixture: subclass `ConnectorConformance` in a test module and give
the class a ``target`` fixture that yields a `StorageTarget`: the connector under test over an
empty root, and a `Backing` that reaches the same storage directly (not through the
connector), with which tests arrange files and check what really happened.
"""

from __future__ import annotations

import hashlib
import os
import resource
import time
import tracemalloc
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from isthmus.storage.connector import CHUNK_SIZE, Connector, EntryType, WriteOptions
from isthmus.storage.errors import (
    AlreadyExists,
    ChecksumMismatch,
    DirectoryNotEmpty,
    InvalidArgument,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotFound,
    PathEscape,
    SizeMismatch,
    StorageError,
    UnsupportedAlgorithm,
)

UNICODE_DIR = "données"
UNICODE_FILE = "日本語 ✓ naïve.txt"


class Backing(ABC):
    """The storage behind a connector, reached directly."""

    supports_symlinks = False
    # A directory outside the root whose content must never change (None if the storage
    # has no such thing), and the text that would name the root on the host.
    outside: Path | None = None
    host_root: str | None = None

    @abstractmethod
    def put(self, path: str, data: bytes) -> None: ...

    @abstractmethod
    def get(self, path: str) -> bytes | None:
        """The file's bytes, or None when nothing is there."""

    @abstractmethod
    def make_dir(self, path: str) -> None: ...

    @abstractmethod
    def names(self, path: str) -> set[str]:
        """Every name in a directory, hidden and temporary ones included."""

    def symlink(self, path: str, text: str) -> None:
        """A raw symlink (its text may point anywhere, outside the root too)."""
        raise NotImplementedError

    def outside_state(self) -> dict[str, bytes]:
        """Everything under `outside`, to compare before and after an attack."""
        if self.outside is None:
            return {}
        state: dict[str, bytes] = {}
        for dirpath, dirnames, filenames in os.walk(self.outside):
            for name in dirnames:
                state[os.path.join(dirpath, name)] = b"<dir>"
            for name in filenames:
                full = os.path.join(dirpath, name)
                state[full] = Path(full).read_bytes()
        return state


@dataclass
class StorageTarget:
    connector: Connector
    backing: Backing


def pattern_chunks(size: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """``size`` bytes that are not all alike, made one chunk at a time (never held whole)."""
    produced, counter = 0, 0
    while produced < size:
        length = min(chunk_size, size - produced)
        block = (counter.to_bytes(8, "big") * (length // 8 + 1))[:length]
        yield block
        produced += length
        counter += 1


class _FailingError(Exception):
    pass


def _failing_after(chunks: int) -> Iterator[bytes]:
    for _ in range(chunks):
        yield b"x" * 65536
    raise _FailingError("the client went away")


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class ConnectorConformance:
    """Behaviour every connector must have. Subclasses provide the ``target`` fixture."""

    # --- stat and list ---------------------------------------------------------------------

    def test_stat_reports_a_file(self, target: StorageTarget) -> None:
        before = time.time()
        target.backing.put("/f.txt", b"hello")
        entry = target.connector.stat("/f.txt")
        assert entry.name == "f.txt"
        assert entry.type is EntryType.FILE
        assert entry.size == 5
        assert before - 5 <= entry.mtime <= time.time() + 5
        assert entry.is_file() and not entry.is_dir()

    def test_stat_reports_directories_and_the_root(self, target: StorageTarget) -> None:
        target.backing.make_dir("/d")
        assert target.connector.stat("/d").type is EntryType.DIR
        assert target.connector.stat("d/").type is EntryType.DIR  # any spelling of the path
        assert target.connector.stat("/").is_dir()

    def test_stat_of_nothing_is_not_found(self, target: StorageTarget) -> None:
        with pytest.raises(NotFound) as raised:
            target.connector.stat("/missing")
        assert raised.value.path == "/missing"
        with pytest.raises(NotFound):
            target.connector.stat("/missing/child")
        assert not target.connector.exists("/missing")

    def test_list_reports_every_entry_hidden_and_unicode_ones_too(
        self, target: StorageTarget
    ) -> None:
        target.backing.put("/a.txt", b"a")
        target.backing.put("/.hidden", b"secret-ish")
        target.backing.make_dir("/sub")
        target.backing.make_dir(f"/{UNICODE_DIR}")
        target.backing.put(f"/{UNICODE_DIR}/{UNICODE_FILE}", "ü".encode())
        entries = {entry.name: entry for entry in target.connector.list("/")}
        assert set(entries) == {"a.txt", ".hidden", "sub", UNICODE_DIR}
        assert entries["a.txt"].type is EntryType.FILE and entries["a.txt"].size == 1
        assert entries[".hidden"].size == len(b"secret-ish")
        assert entries["sub"].type is EntryType.DIR
        inner = target.connector.list(f"/{UNICODE_DIR}")
        assert [(e.name, e.size) for e in inner] == [(UNICODE_FILE, 2)]

    def test_list_of_a_file_or_of_nothing_is_refused(self, target: StorageTarget) -> None:
        target.backing.put("/f", b"x")
        with pytest.raises(NotADirectory):
            target.connector.list("/f")
        with pytest.raises(NotFound):
            target.connector.list("/nothing")
        with pytest.raises((NotADirectory, NotFound)):
            target.connector.list("/f/below")

    # --- reading ---------------------------------------------------------------------------

    def test_read_whole_and_from_an_offset(self, target: StorageTarget) -> None:
        data = bytes(range(256)) * 40
        target.backing.put("/r.bin", data)
        with target.connector.open_read("/r.bin") as stream:
            assert stream.entry.size == len(data)
            assert b"".join(stream) == data
        with target.connector.open_read("/r.bin", offset=1000) as stream:
            assert stream.read() == data[1000:]
        with target.connector.open_read("/r.bin", offset=1000, length=17) as stream:
            assert stream.read() == data[1000:1017]
        with target.connector.open_read("/r.bin", offset=len(data) + 5) as stream:
            assert stream.read() == b""
        with target.connector.open_read("/r.bin", length=0) as stream:
            assert stream.read() == b""

    def test_read_in_small_pieces_like_a_file_object(self, target: StorageTarget) -> None:
        target.backing.put("/p", b"0123456789")
        with target.connector.open_read("/p", offset=2, length=6) as stream:
            assert [stream.read(4), stream.read(4), stream.read(4)] == [b"2345", b"67", b""]

    def test_read_into_a_reused_buffer(self, target: StorageTarget) -> None:
        data = os.urandom(3 * 1000 + 7)
        target.backing.put("/into.bin", data)
        buffer = memoryview(bytearray(1000))
        got = []
        with target.connector.open_read("/into.bin", offset=5, length=2500) as stream:
            while count := stream.readinto(buffer):
                got.append(bytes(buffer[:count]))
        assert b"".join(got) == data[5:2505]
        with target.connector.open_read("/into.bin") as stream:
            stream.close()
            assert stream.readinto(buffer) == 0

    def test_read_refuses_directories_missing_files_and_bad_ranges(
        self, target: StorageTarget
    ) -> None:
        target.backing.make_dir("/d")
        target.backing.put("/f", b"x")
        with pytest.raises(IsADirectory):
            target.connector.open_read("/d")
        with pytest.raises(IsADirectory):
            target.connector.open_read("/")
        with pytest.raises(NotFound):
            target.connector.open_read("/nope")
        with pytest.raises(InvalidArgument):
            target.connector.open_read("/f", offset=-1)
        with pytest.raises(InvalidArgument):
            target.connector.open_read("/f", length=-2)

    # --- atomic writes ---------------------------------------------------------------------

    def test_write_atomic_stores_the_bytes_and_reports_their_digests(
        self, target: StorageTarget
    ) -> None:
        chunks = [b"first chunk,", b"", b"second chunk"]
        data = b"".join(chunks)
        result = target.connector.write_atomic(
            "/w.txt", chunks, WriteOptions(algorithms=("sha256", "MD5", "adler32", "sha1"))
        )
        assert target.backing.get("/w.txt") == data
        assert result.size == len(data) and result.path == "/w.txt"
        assert result.hexdigest("sha256") == hashlib.sha256(data).hexdigest()
        assert result.hexdigest("md5") == hashlib.md5(data).hexdigest()
        assert result.hexdigest("sha1") == hashlib.sha1(data).hexdigest()
        assert result.digests["adler32"] == zlib.adler32(data).to_bytes(4, "big")
        assert target.backing.names("/") == {"w.txt"}  # no temporary left behind

    def test_write_atomic_replaces_an_existing_file_or_refuses_to(
        self, target: StorageTarget
    ) -> None:
        target.backing.put("/v", b"version 1")
        target.connector.write_atomic("/v", [b"version 2"])
        assert target.backing.get("/v") == b"version 2"
        with pytest.raises(AlreadyExists):
            target.connector.write_atomic("/v", [b"version 3"], WriteOptions(overwrite=False))
        assert target.backing.get("/v") == b"version 2"
        target.connector.write_atomic("/new", [b"n"], WriteOptions(overwrite=False))
        assert target.backing.get("/new") == b"n"
        assert target.backing.names("/") == {"v", "new"}

    def test_a_write_that_fails_midway_leaves_nothing(self, target: StorageTarget) -> None:
        with pytest.raises(_FailingError):
            target.connector.write_atomic("/partial", _failing_after(5))
        assert target.backing.get("/partial") is None
        assert target.backing.names("/") == set()

    def test_a_write_that_fails_midway_keeps_the_previous_version(
        self, target: StorageTarget
    ) -> None:
        target.backing.put("/keep", b"the good version")
        with pytest.raises(_FailingError):
            target.connector.write_atomic("/keep", _failing_after(3))
        assert target.backing.get("/keep") == b"the good version"
        assert target.backing.names("/") == {"keep"}

    def test_pieces_written_together_are_stored_and_hashed_in_order(
        self, target: StorageTarget
    ) -> None:
        pieces = [b"an HTTP body ", b"", b"arrives ", b"in pieces"]
        data = b"".join(pieces)
        options = WriteOptions(expected_size=len(data) + 2, algorithms=("sha256",))
        with target.connector.begin_write("/pieces", options) as writer:
            writer.write_chunks(pieces)
            writer.write_chunks([b"!", b"!"])
            result = writer.commit()
        assert target.backing.get("/pieces") == data + b"!!"
        assert result.hexdigest("sha256") == hashlib.sha256(data + b"!!").hexdigest()
        with (target.connector.begin_write("/over", WriteOptions(expected_size=3)) as writer,
              pytest.raises(SizeMismatch)):
            writer.write_chunks([b"ab", b"cd"])
        assert target.backing.get("/over") is None

    def test_nothing_is_visible_before_commit(self, target: StorageTarget) -> None:
        target.backing.make_dir("/up")
        with target.connector.begin_write("/up/file") as writer:
            writer.write(b"half of it")
            assert target.backing.get("/up/file") is None
            assert [e.name for e in target.connector.list("/up")] == []
            assert not target.connector.exists("/up/file")
            writer.write(b", and the rest")
            result = writer.commit()
        assert result.size == len(b"half of it, and the rest")
        assert target.backing.get("/up/file") == b"half of it, and the rest"
        assert target.backing.names("/up") == {"file"}

    def test_an_abandoned_write_leaves_nothing(self, target: StorageTarget) -> None:
        writer = target.connector.begin_write("/abandoned")
        writer.write(b"data")
        writer.abort()
        writer.abort()  # twice is harmless
        assert target.backing.names("/") == set()
        with pytest.raises(StorageError):
            writer.write(b"more")

    def test_a_write_cut_short_resumes_from_what_was_durable(self, target: StorageTarget) -> None:
        """A crash is a writer dropped without abort. Where the storage keeps an unfinished
        write (POSIX), the next writer under the same key finds at least what `checkpoint`
        made durable and goes on from there; elsewhere it starts again. Either way the file
        that appears is the whole one, hashed and verified in the background."""
        data = os.urandom(3 * CHUNK_SIZE + 5)
        options = WriteOptions(expected_size=len(data), algorithms=("sha256",),
                               verify_on_disk=True, resume_key="task-item-7", background=True)
        first = target.connector.begin_write("/resumed", options)
        first.write(data[: 2 * CHUNK_SIZE])
        durable = first.checkpoint()
        assert durable in (0, 2 * CHUNK_SIZE)
        first.write(data[2 * CHUNK_SIZE : 2 * CHUNK_SIZE + 7])  # not durable: dropped below
        if durable:
            del first  # as a crash leaves it
        else:
            # Storage that keeps nothing of an unfinished write (a remote PUT, an S3 upload)
            # loses it with the process; in-process, its request would stay open.
            first.abort()
        assert not target.connector.exists("/resumed")
        with target.connector.begin_write("/resumed", options) as second:
            assert second.resumable >= durable
            offset = min(durable, CHUNK_SIZE + 1)
            second.resume(offset, [data[:offset]])
            second.write(data[offset:])
            result = second.commit()
        assert result.hexdigest("sha256") == hashlib.sha256(data).hexdigest()
        assert target.backing.get("/resumed") == data
        assert target.backing.names("/") == {"resumed"}

    def test_a_suspended_write_is_kept_to_resume_from_where_the_storage_can(
            self, target: StorageTarget) -> None:
        """`suspend` (a task paused, a server stopping) keeps what a crash would keep, and
        nothing appears at the final name; a later writer under the key goes on from it."""
        data = os.urandom(2 * CHUNK_SIZE + 3)
        options = WriteOptions(expected_size=len(data), algorithms=("sha256",),
                               resume_key="task-item-9")
        first = target.connector.begin_write("/suspended", options)
        first.write(data[:CHUNK_SIZE])
        durable = first.checkpoint()
        first.suspend()
        first.suspend()  # twice is harmless, and so is an abort after it
        first.abort()
        with pytest.raises(StorageError):
            first.write(b"more")
        assert not target.connector.exists("/suspended")
        with target.connector.begin_write("/suspended", options) as second:
            assert second.resumable >= durable
            second.resume(durable, [data[:durable]])
            second.write(data[durable:])
            second.commit()
        assert target.backing.get("/suspended") == data
        assert target.backing.names("/") == {"suspended"}

    def test_a_resume_whose_prefix_differs_is_refused(self, target: StorageTarget) -> None:
        options = WriteOptions(algorithms=("sha256",), resume_key="task-item-8")
        writer = target.connector.begin_write("/changed", options)
        writer.write(b"0123456789")
        durable = writer.checkpoint()
        if not durable:
            writer.abort()
        del writer
        again = target.connector.begin_write("/changed", options)
        if durable:
            with pytest.raises(SizeMismatch):
                again.resume(durable, [b"short"])
        else:
            again.abort()
        assert target.backing.names("/") == set()

    def test_wrong_sizes_and_digests_are_refused_and_leave_nothing(
        self, target: StorageTarget
    ) -> None:
        connector = target.connector
        with pytest.raises(SizeMismatch):
            connector.write_atomic("/s", [b"12345"], WriteOptions(expected_size=6))
        with pytest.raises(SizeMismatch):
            connector.write_atomic("/s", [b"123", b"4567"], WriteOptions(expected_size=6))
        wrong = {"sha256": hashlib.sha256(b"other").digest()}
        with pytest.raises(ChecksumMismatch):
            connector.write_atomic("/s", [b"12345"], WriteOptions(expected_digests=wrong))
        assert target.backing.names("/") == set()
        right = {"SHA-256": hashlib.sha256(b"12345").digest()}
        result = connector.write_atomic(
            "/s",
            [b"12345"],
            WriteOptions(
                expected_size=5, expected_digests=right, algorithms=(), verify_on_disk=True
            ),
        )
        assert result.hexdigest("sha256") == hashlib.sha256(b"12345").hexdigest()
        assert target.backing.get("/s") == b"12345"

    def test_write_refuses_a_missing_parent_and_a_directory(self, target: StorageTarget) -> None:
        with pytest.raises(NotFound):
            target.connector.write_atomic("/no/such/dir/f", [b"x"])
        target.backing.make_dir("/dir")
        with pytest.raises(IsADirectory):
            target.connector.begin_write("/dir")
        with pytest.raises(InvalidPath):
            target.connector.begin_write("/")
        assert target.backing.names("/") == {"dir"}

    def test_modification_times_can_be_given_and_set(self, target: StorageTarget) -> None:
        stamp = 1_600_000_000.0
        target.connector.write_atomic("/t", [b"x"], WriteOptions(mtime=stamp))
        assert abs(target.connector.stat("/t").mtime - stamp) < 1
        target.connector.set_mtime("/t", stamp + 3600)
        assert abs(target.connector.stat("/t").mtime - (stamp + 3600)) < 1
        with pytest.raises(NotFound):
            target.connector.set_mtime("/none", stamp)

    # --- mkdir, rename, delete -------------------------------------------------------------

    def test_mkdir(self, target: StorageTarget) -> None:
        connector = target.connector
        connector.mkdir("/one")
        assert connector.stat("/one").is_dir()
        with pytest.raises(AlreadyExists):
            connector.mkdir("/one")
        with pytest.raises(NotFound):
            connector.mkdir("/two/three")
        connector.mkdir("/two/three/four", parents=True)
        assert connector.stat("/two/three/four").is_dir()
        connector.mkdir("/two/three", parents=True)  # like mkdir -p: already there is fine
        target.backing.put("/file", b"x")
        with pytest.raises(AlreadyExists):
            connector.mkdir("/file")
        with pytest.raises((AlreadyExists, NotADirectory)):
            connector.mkdir("/file/sub", parents=True)
        with pytest.raises(AlreadyExists):
            connector.mkdir("/")

    def test_rename_files_and_directories(self, target: StorageTarget) -> None:
        connector = target.connector
        target.backing.put("/a", b"A")
        target.backing.make_dir("/dir")
        target.backing.put("/dir/inner", b"I")
        connector.rename("/a", "/dir/b")
        assert target.backing.get("/a") is None and target.backing.get("/dir/b") == b"A"
        connector.rename("/dir", "/moved")
        assert target.backing.get("/moved/inner") == b"I"
        assert target.backing.names("/") == {"moved"}

    def test_rename_onto_an_existing_name(self, target: StorageTarget) -> None:
        connector = target.connector
        target.backing.put("/src", b"new")
        target.backing.put("/dst", b"old")
        with pytest.raises(AlreadyExists):
            connector.rename("/src", "/dst")
        assert target.backing.get("/dst") == b"old" and target.backing.get("/src") == b"new"
        connector.rename("/src", "/dst", overwrite=True)
        assert target.backing.get("/dst") == b"new" and target.backing.get("/src") is None

    def test_rename_refusals(self, target: StorageTarget) -> None:
        connector = target.connector
        target.backing.make_dir("/d")
        with pytest.raises(NotFound):
            connector.rename("/missing", "/x")
        with pytest.raises(NotFound):
            connector.rename("/d", "/no/parent/here")
        with pytest.raises(InvalidArgument):
            connector.rename("/d", "/d/inside")
        with pytest.raises(InvalidPath):
            connector.rename("/", "/elsewhere")
        with pytest.raises(InvalidPath):
            connector.rename("/d", "/")
        assert target.backing.names("/") == {"d"}

    def test_delete(self, target: StorageTarget) -> None:
        connector = target.connector
        target.backing.put("/f", b"x")
        target.backing.make_dir("/empty")
        target.backing.make_dir("/full/deeper/still")
        target.backing.put("/full/a", b"a")
        target.backing.put("/full/deeper/.b", b"b")
        target.backing.put("/full/deeper/still/c", b"c")
        connector.delete("/f")
        connector.delete("/empty")
        with pytest.raises(DirectoryNotEmpty):
            connector.delete("/full")
        assert target.backing.get("/full/a") == b"a"
        connector.delete("/full", recursive=True)
        assert target.backing.names("/") == set()
        with pytest.raises(NotFound):
            connector.delete("/f")
        with pytest.raises(InvalidPath):
            connector.delete("/", recursive=True)

    # --- checksums -------------------------------------------------------------------------

    def test_checksums_match_hashlib_and_zlib(self, target: StorageTarget) -> None:
        data = os.urandom(3 * CHUNK_SIZE + 12345)
        target.backing.put("/c", data)
        connector = target.connector
        assert connector.checksum("/c", "MD5") == hashlib.md5(data).hexdigest()
        assert connector.checksum("/c", "SHA1") == hashlib.sha1(data).hexdigest()
        assert connector.checksum("/c", "sha256") == hashlib.sha256(data).hexdigest()
        assert connector.checksum("/c", "SHA512") == hashlib.sha512(data).hexdigest()
        assert connector.checksum("/c", "ADLER32") == f"{zlib.adler32(data):08x}"
        both = connector.digests("/c", ["sha-256", "md5"])
        assert both == {
            "sha256": hashlib.sha256(data).digest(),
            "md5": hashlib.md5(data).digest(),
        }
        target.backing.put("/empty", b"")
        assert connector.checksum("/empty", "adler32") == "00000001"
        with pytest.raises(UnsupportedAlgorithm):
            connector.checksum("/c", "crc32c")
        with pytest.raises(IsADirectory):
            connector.checksum("/", "md5")

    # --- big files, in bounded memory ------------------------------------------------------

    def test_a_large_file_streams_through_in_bounded_memory(self, target: StorageTarget) -> None:
        size = int(os.environ.get("ISTHMUS_TEST_LARGE_FILE", str(64 * 1024 * 1024)))
        expected = hashlib.sha256()
        for chunk in pattern_chunks(size):
            expected.update(chunk)
        peak_known = _reset_peak_rss()
        rss_before = _rss_kib()
        tracemalloc.start()
        try:
            result = target.connector.write_atomic(
                "/large.bin", pattern_chunks(size), WriteOptions(algorithms=("sha256",))
            )
            streamed = hashlib.sha256()
            read = 0
            with target.connector.open_read("/large.bin") as stream:
                for chunk in stream:
                    streamed.update(chunk)
                    read += len(chunk)
            checksum = target.connector.checksum("/large.bin", "sha256")
            _, python_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.size == size and read == size
        assert result.hexdigest("sha256") == expected.hexdigest()
        assert streamed.hexdigest() == expected.hexdigest() == checksum
        # A few chunks in flight at most, whatever the file's size.
        assert python_peak < 8 * CHUNK_SIZE, f"peak Python allocations {python_peak} bytes"
        if peak_known:
            growth_kib = _peak_rss_kib() - rss_before
            assert growth_kib < 48 * 1024, f"peak RSS grew by {growth_kib} KiB"

    # --- unicode names -----------------------------------------------------------------------

    def test_unicode_names_round_trip(self, target: StorageTarget) -> None:
        connector = target.connector
        connector.mkdir(f"/{UNICODE_DIR}")
        path = f"/{UNICODE_DIR}/{UNICODE_FILE}"
        connector.write_atomic(path, ["contenu ✓".encode()])
        assert target.backing.get(path) == "contenu ✓".encode()
        assert connector.stat(path).name == UNICODE_FILE
        with connector.open_read(path) as stream:
            assert stream.read() == "contenu ✓".encode()
        connector.rename(path, f"/{UNICODE_DIR}/renommé ✓")
        assert [e.name for e in connector.list(f"/{UNICODE_DIR}")] == ["renommé ✓"]
        connector.delete(f"/{UNICODE_DIR}", recursive=True)
        assert target.backing.names("/") == set()

    # --- paths that try to leave the root ----------------------------------------------------

    ESCAPES = ("../escaped", "/../escaped", "/a/../../escaped", "a/b/../../../escaped")

    def _assert_refused_everywhere(self, target: StorageTarget, path: str) -> None:
        """Every operation on ``path`` is refused, and nothing outside the root changes."""
        connector = target.connector
        before = target.backing.outside_state()
        attempts = [
            lambda: connector.stat(path),
            lambda: connector.list(path),
            lambda: connector.open_read(path).read(),
            lambda: connector.write_atomic(path, [b"pwned"]),
            lambda: connector.mkdir(path),
            lambda: connector.mkdir(path + "/deeper", parents=True),
            lambda: connector.rename("/inside.txt", path),
            lambda: connector.rename(path, "/stolen"),
            lambda: connector.delete(path, recursive=True),
            lambda: connector.set_mtime(path, 0.0),
            lambda: connector.checksum(path, "md5"),
        ]
        for attempt in attempts:
            with pytest.raises((PathEscape, InvalidPath)) as raised:
                attempt()
            if target.backing.host_root:
                assert target.backing.host_root not in str(raised.value)
        assert target.backing.outside_state() == before
        assert target.backing.get("/inside.txt") == b"inside"
        assert target.backing.get("/stolen") is None

    @pytest.mark.parametrize("path", ESCAPES)
    def test_dot_dot_cannot_leave_the_root(self, target: StorageTarget, path: str) -> None:
        target.backing.put("/inside.txt", b"inside")
        target.backing.make_dir("/a")
        self._assert_refused_everywhere(target, path)
        if target.backing.outside is not None:
            assert not (target.backing.outside.parent / "escaped").exists()

    def test_nul_bytes_are_refused(self, target: StorageTarget) -> None:
        target.backing.put("/inside.txt", b"inside")
        with pytest.raises(InvalidPath):
            target.connector.stat("/inside.txt\x00.jpg")
        self._assert_refused_everywhere(target, "/bad\x00name")

    def test_dot_dot_that_stays_inside_is_just_a_path(self, target: StorageTarget) -> None:
        target.backing.make_dir("/a")
        target.backing.put("/b", b"B")
        with target.connector.open_read("/a/../b") as stream:
            assert stream.read() == b"B"

    # --- symlinks (storage that has them) ------------------------------------------------------

    def _needs_symlinks(self, target: StorageTarget) -> None:
        if not target.backing.supports_symlinks:
            pytest.skip("this storage has no symbolic links")

    def test_symlinks_are_reported_as_symlinks(self, target: StorageTarget) -> None:
        self._needs_symlinks(target)
        target.backing.make_dir("/dir")
        target.backing.put("/dir/file", b"12345")
        target.backing.symlink("/to-file", "dir/file")
        target.backing.symlink("/to-dir", "dir")
        target.backing.symlink("/dangling", "nowhere")
        entries = {e.name: e for e in target.connector.list("/")}
        link = entries["to-file"]
        assert link.type is EntryType.SYMLINK
        assert link.link_target == "/dir/file"
        assert link.target is not None and link.target.type is EntryType.FILE
        assert link.target.size == 5 and link.is_file()
        assert entries["to-dir"].is_dir()
        dangling = entries["dangling"]
        assert dangling.type is EntryType.SYMLINK and dangling.target is None
        assert target.connector.stat("/to-file").type is EntryType.SYMLINK

    def test_symlinks_inside_the_root_are_followed(self, target: StorageTarget) -> None:
        self._needs_symlinks(target)
        target.backing.make_dir("/dir")
        target.backing.put("/dir/file", b"through the link")
        target.backing.symlink("/to-dir", "dir")
        target.backing.symlink("/dir/up", "../dir/file")
        with target.connector.open_read("/to-dir/file") as stream:
            assert stream.read() == b"through the link"
        with target.connector.open_read("/dir/up") as stream:
            assert stream.read() == b"through the link"
        assert sorted(e.name for e in target.connector.list("/to-dir")) == ["file", "up"]
        target.connector.write_atomic("/to-dir/new", [b"n"])
        assert target.backing.get("/dir/new") == b"n"

    def test_real_path_resolves_links_inside_the_root(self, target: StorageTarget) -> None:
        connector = target.connector
        target.backing.make_dir("/dir")
        target.backing.put("/dir/file", b"x")
        assert connector.real_path("/dir/./file") == "/dir/file"
        assert connector.real_path("/dir/not-yet") == "/dir/not-yet"  # a name to create
        with pytest.raises(NotFound):
            connector.real_path("/missing/file")
        if not target.backing.supports_symlinks:
            return
        target.backing.symlink("/to-dir", "dir")
        target.backing.symlink("/dir/alias", "file")
        assert connector.real_path("/to-dir/file") == "/dir/file"
        assert connector.real_path("/to-dir/new") == "/dir/new"
        assert connector.real_path("/to-dir/alias") == "/dir/file"
        # Without follow, a final link is the link itself (what delete and rename act on).
        assert connector.real_path("/to-dir/alias", follow=False) == "/dir/alias"
        assert connector.real_path("/to-dir", follow=False) == "/to-dir"
        target.backing.symlink("/out", "/etc")
        with pytest.raises(PathEscape):
            connector.real_path("/out/passwd")
        with pytest.raises(PathEscape):
            connector.real_path("/out")
        assert connector.real_path("/out", follow=False) == "/out"

    def test_renaming_a_symlink_moves_the_link_only(self, target: StorageTarget) -> None:
        self._needs_symlinks(target)
        target.backing.make_dir("/dir")
        target.backing.put("/dir/file", b"stays")
        target.backing.symlink("/dir/link", "file")
        target.connector.rename("/dir/link", "/dir/renamed")
        assert target.connector.stat("/dir/renamed").link_target == "/dir/file"
        assert target.backing.names("/dir") == {"file", "renamed"}
        assert target.backing.get("/dir/file") == b"stays"

    def test_deleting_a_symlink_removes_the_link_only(self, target: StorageTarget) -> None:
        self._needs_symlinks(target)
        target.backing.make_dir("/dir")
        target.backing.put("/dir/file", b"kept")
        target.backing.symlink("/link", "dir")
        target.connector.delete("/link", recursive=True)
        assert target.backing.get("/dir/file") == b"kept"
        assert target.backing.names("/") == {"dir"}

    def test_symlinks_can_be_made_inside_the_root_only(self, target: StorageTarget) -> None:
        self._needs_symlinks(target)
        target.backing.make_dir("/dir")
        target.backing.put("/dir/file", b"x")
        target.connector.symlink("/dir/alias", "/dir/file")
        target.connector.symlink("/rel", "dir/file")
        assert target.connector.stat("/dir/alias").link_target == "/dir/file"
        assert target.connector.stat("/rel").link_target == "/dir/file"
        before = target.backing.outside_state()
        for escaping in ("../outside", "/../outside", "dir/../../x"):
            with pytest.raises(PathEscape):
                target.connector.symlink("/evil", escaping)
        assert "evil" not in target.backing.names("/")
        assert target.backing.outside_state() == before

    def _assert_not_followed(self, target: StorageTarget, link: str) -> None:
        """A symlink that leads outside may be seen, renamed or deleted as a link, but nothing
        that would follow it works, and nothing outside changes."""
        connector = target.connector
        before = target.backing.outside_state()
        attempts = [
            lambda: connector.list(link),
            lambda: connector.open_read(link).read(),
            lambda: connector.checksum(link, "sha256"),
            lambda: connector.set_mtime(link, 0.0),
            lambda: connector.mkdir(link + "/deeper", parents=True),
        ]
        for attempt in attempts:
            with pytest.raises(PathEscape) as raised:
                attempt()
            if target.backing.host_root:
                assert target.backing.host_root not in str(raised.value)
        entry = connector.stat(link)
        assert entry.type is EntryType.SYMLINK and entry.target is None
        assert target.backing.outside_state() == before

    def test_a_symlink_to_etc_leads_nowhere(self, target: StorageTarget) -> None:
        self._needs_symlinks(target)
        target.backing.put("/inside.txt", b"inside")
        target.backing.symlink("/etc-link", "/etc")
        self._assert_not_followed(target, "/etc-link")
        self._assert_refused_everywhere(target, "/etc-link/passwd")
        self._assert_refused_everywhere(target, "/etc-link/isthmus-escape")
        assert not Path("/etc/isthmus-escape").exists()
        target.connector.delete("/etc-link")  # removes the link, not /etc
        assert Path("/etc/passwd").exists()

    def test_a_symlink_to_a_sibling_outside_the_root_leads_nowhere(
        self, target: StorageTarget
    ) -> None:
        self._needs_symlinks(target)
        outside = target.backing.outside
        if outside is None:
            pytest.skip("this storage has nothing outside its root to point at")
        target.backing.put("/inside.txt", b"inside")
        target.backing.symlink("/relative", "../" + outside.name)
        target.backing.symlink("/absolute", str(outside))
        target.backing.symlink("/to-secret", str(outside / "secret.txt"))
        for base in ("/relative", "/absolute"):
            self._assert_not_followed(target, base)
            self._assert_refused_everywhere(target, f"{base}/secret.txt")
            self._assert_refused_everywhere(target, f"{base}/new.txt")
        self._assert_not_followed(target, "/to-secret")
        listed = {e.name: e for e in target.connector.list("/")}
        assert all(listed[name].target is None for name in ("relative", "absolute", "to-secret"))
        target.connector.delete("/relative", recursive=True)
        assert (outside / "secret.txt").read_bytes() == b"outside the root"

    def test_a_directory_holding_an_escaping_link_deletes_without_following_it(
        self, target: StorageTarget
    ) -> None:
        self._needs_symlinks(target)
        outside = target.backing.outside
        if outside is None:
            pytest.skip("this storage has nothing outside its root to point at")
        before = target.backing.outside_state()
        target.backing.make_dir("/tree/sub")
        target.backing.symlink("/tree/sub/out", str(outside))
        target.connector.delete("/tree", recursive=True)
        assert target.backing.names("/") == set()
        assert target.backing.outside_state() == before

    def test_a_root_prefix_is_not_the_root(self, target: StorageTarget) -> None:
        """``<root>-evil`` starts with the root's path but is outside it."""
        self._needs_symlinks(target)
        if target.backing.host_root is None:
            pytest.skip("this storage has no host path")
        evil = Path(target.backing.host_root + "-evil")
        evil.mkdir(exist_ok=True)
        (evil / "x").write_bytes(b"evil")
        target.backing.put("/inside.txt", b"inside")
        target.backing.symlink("/prefix", str(evil))
        self._assert_refused_everywhere(target, "/prefix/x")
        assert (evil / "x").read_bytes() == b"evil"

    def test_symlink_loops_are_refused(self, target: StorageTarget) -> None:
        self._needs_symlinks(target)
        target.backing.symlink("/loop-a", "loop-b")
        target.backing.symlink("/loop-b", "loop-a")
        assert target.connector.stat("/loop-a").target is None
        with pytest.raises(InvalidPath):
            target.connector.open_read("/loop-a")
        with pytest.raises(InvalidPath):
            target.connector.list("/loop-b/x")
