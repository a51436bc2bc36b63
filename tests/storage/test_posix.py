"""The POSIX connector: the conformance suite, in-process and as a mapped account, plus what is
particular to POSIX (privilege dropping, FIFOs, races against symlink swaps)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import mmap
import os
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.storage import posix as posix_module
from isthmus.storage.accounts import LocalAccount
from isthmus.storage.connector import Entry, EntryType, WriteOptions, WriteResult
from isthmus.storage.errors import (
    AccountNotFound,
    ChecksumMismatch,
    InvalidPath,
    NotADirectory,
    NotFound,
    NotSupported,
    PermissionDenied,
    QuotaExceeded,
    SizeMismatch,
    StorageError,
    StorageUnavailable,
)
from isthmus.storage.posix import (
    TEMP_PREFIX,
    PosixConnector,
    open_posix_connector,
    storage_error,
)
from isthmus.storage.posix_syscalls import start_writeback, sync_filesystem
from isthmus.storage.posix_worker import WorkerConnector, _rebuild_error
from tests.storage.conformance import Backing, ConnectorConformance, StorageTarget

SRC = Path(__file__).resolve().parents[2] / "src"


class PosixBacking(Backing):
    supports_symlinks = True

    def __init__(self, root: Path, outside: Path, owner: LocalAccount | None = None) -> None:
        self.root = root
        self.outside = outside
        self.host_root = str(root)
        self.owner = owner

    def _host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def _own(self, host: Path) -> None:
        if self.owner is not None:
            os.lchown(host, self.owner.uid, self.owner.gid)

    def put(self, path: str, data: bytes) -> None:
        host = self._host(path)
        self.make_dir(str(Path(path).parent))
        host.write_bytes(data)
        self._own(host)

    def get(self, path: str) -> bytes | None:
        host = self._host(path)
        return host.read_bytes() if host.is_file() and not host.is_symlink() else None

    def make_dir(self, path: str) -> None:
        host = self._host(path)
        missing = [p for p in [host, *host.parents] if not p.exists()]
        host.mkdir(parents=True, exist_ok=True)
        for created in missing:
            self._own(created)

    def names(self, path: str) -> set[str]:
        return set(os.listdir(self._host(path)))

    def symlink(self, path: str, text: str) -> None:
        host = self._host(path)
        os.symlink(text, host)
        self._own(host)


def _make_area(base: Path, owner: LocalAccount | None) -> tuple[Path, Path]:
    root = base / "root"
    outside = base / "outside"
    root.mkdir()
    outside.mkdir()
    # World-writable, so only the connector's confinement (not permissions) protects it.
    outside.chmod(0o777)
    secret = outside / "secret.txt"
    secret.write_bytes(b"outside the root")
    secret.chmod(0o666)
    (outside / "outside-only.txt").write_bytes(b"x")
    if owner is not None:
        os.chown(root, owner.uid, owner.gid)
    return root, outside


class TestPosixConformance(ConnectorConformance):
    @pytest.fixture(params=["server-account", "mapped-account"])
    def target(
        self, request: pytest.FixtureRequest, tmp_path: Path, public_tmp: Path
    ) -> Iterator[StorageTarget]:
        if request.param == "server-account":
            root, outside = _make_area(tmp_path, None)
            connector = open_posix_connector(root)
            backing = PosixBacking(root, outside)
        else:
            account: LocalAccount = request.getfixturevalue("mapped_account")
            root, outside = _make_area(public_tmp, account)
            connector = open_posix_connector(root, account)
            assert isinstance(connector, WorkerConnector)
            backing = PosixBacking(root, outside, account)
        with connector:
            yield StorageTarget(connector, backing)


# --- acting as a mapped account -----------------------------------------------------------


@pytest.fixture
def worker(mapped_account: LocalAccount, public_tmp: Path) -> Iterator[WorkerConnector]:
    root, _ = _make_area(public_tmp, mapped_account)
    connector = open_posix_connector(root, mapped_account)
    assert isinstance(connector, WorkerConnector)
    with connector:
        yield connector


def _status_ids(pid: int, field: str) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return [int(value) for value in line.split()[1:]]
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_the_worker_process_is_the_mapped_account_for_good(
    worker: WorkerConnector, mapped_account: LocalAccount
) -> None:
    worker.list("/")
    assert worker._process is not None
    pid = worker._process.pid
    assert _status_ids(pid, "Uid") == [mapped_account.uid] * 4  # real, effective, saved, fs
    assert _status_ids(pid, "Gid") == [mapped_account.gid] * 4
    assert sorted(_status_ids(pid, "Groups")) == sorted(mapped_account.groups)


def test_files_are_read_and_written_with_the_accounts_permissions(
    worker: WorkerConnector, mapped_account: LocalAccount
) -> None:
    root = Path(worker.root)
    private = root / "root-only.txt"
    private.write_bytes(b"root's")
    private.chmod(0o600)
    with pytest.raises(PermissionDenied):
        worker.open_read("/root-only.txt").read()
    with PosixConnector(root) as as_server:  # the server's own account (root) may
        assert as_server.open_read("/root-only.txt").read() == b"root's"
    worker.write_atomic("/mine.txt", [b"mine"])
    assert (root / "mine.txt").stat().st_uid == mapped_account.uid
    worker.mkdir("/mine")
    assert (root / "mine").stat().st_uid == mapped_account.uid
    locked = root / "locked"
    locked.mkdir(mode=0o700)
    with pytest.raises(PermissionDenied):
        worker.write_atomic("/locked/f", [b"x"])
    assert os.listdir(locked) == []


def test_a_root_the_account_cannot_reach_is_reported_at_once(
    mapped_account: LocalAccount, public_tmp: Path
) -> None:
    root = public_tmp / "closed"
    root.mkdir(mode=0o700)
    with pytest.raises(PermissionDenied):
        open_posix_connector(root, mapped_account)


def test_a_worker_that_dies_is_replaced(worker: WorkerConnector) -> None:
    Path(worker.root, "f").write_bytes(b"0123456789")
    stream = worker.open_read("/f")
    stream.chunk_size = 4
    assert stream.read(4) == b"0123"
    assert worker._process is not None
    worker._process.kill()
    worker._process.wait()
    with pytest.raises(StorageError):
        stream.read(4)  # its open file went with the worker
    assert [entry.name for entry in worker.list("/")] == ["f"]


def test_errors_from_the_worker_are_rebuilt_from_a_fixed_list() -> None:
    rebuilt = _rebuild_error({"type": "PathEscape", "message": "no", "path": "/x"})
    assert type(rebuilt).__name__ == "PathEscape" and rebuilt.path == "/x"
    assert type(_rebuild_error({"type": "SystemExit", "message": "m"})) is StorageError
    assert isinstance(_rebuild_error("not a document"), StorageUnavailable)
    assert len(_rebuild_error({"type": "NotFound", "message": "m" * 10_000}).message) <= 1000


def test_entries_from_another_process_are_type_checked() -> None:
    good = Entry("n", EntryType.FILE, 1, 2.0, 0o644, "u", "g").to_dict()
    assert Entry.from_dict(good).name == "n"
    for field, bad in [("size", "1"), ("size", True), ("type", "weird"), ("name", None)]:
        with pytest.raises(StorageError):
            Entry.from_dict({**good, field: bad})


def test_a_server_that_is_not_root_can_only_use_its_own_account(
    mapped_account: LocalAccount, public_tmp: Path
) -> None:
    """Run the connector in a real process as the unprivileged account."""
    system_python = Path("/usr/bin/python3.11")
    if not system_python.exists():
        pytest.skip("no system Python 3.11 that an unprivileged account can run")
    root, _ = _make_area(public_tmp, mapped_account)
    (root / "hello.txt").write_bytes(b"hi")
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(SRC)!r})
        from isthmus.storage import LocalAccount, open_posix_connector
        from isthmus.storage.errors import AccountNotPermitted
        try:
            open_posix_connector({str(root)!r}, LocalAccount.lookup("root"))
        except AccountNotPermitted as error:
            print("refused:", error)
        with open_posix_connector({str(root)!r}, LocalAccount.current()) as own:
            print("own:", type(own).__name__, [e.name for e in own.list("/")])
        """
    )
    done = subprocess.run(
        [str(system_python), "-I", "-c", script],
        user=mapped_account.uid,
        group=mapped_account.gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    if "Permission denied" in done.stderr and "isthmus" in done.stderr:
        pytest.skip("the source tree is not readable by an unprivileged account")
    assert done.returncode == 0, done.stderr
    refused, own = done.stdout.splitlines()
    assert refused.startswith("refused: ")
    assert f"runs as '{mapped_account.name}'" in refused
    assert "'root'" in refused and "not as root" in refused
    assert own == "own: PosixConnector ['hello.txt']"


def test_the_servers_own_account_is_served_in_process(tmp_path: Path) -> None:
    with open_posix_connector(tmp_path, LocalAccount.current()) as connector:
        assert isinstance(connector, PosixConnector)


# --- POSIX particulars ----------------------------------------------------------------------


@pytest.fixture
def posix(tmp_path: Path) -> Iterator[tuple[PosixConnector, Path, Path]]:
    root, outside = _make_area(tmp_path, None)
    with PosixConnector(root) as connector:
        yield connector, root, outside


def test_a_fifo_is_listed_but_never_opened(posix: tuple[PosixConnector, Path, Path]) -> None:
    connector, root, _ = posix
    os.mkfifo(root / "pipe")
    assert connector.stat("/pipe").type is EntryType.PIPE
    started = time.monotonic()
    with pytest.raises(NotSupported):
        connector.open_read("/pipe")
    assert time.monotonic() - started < 5  # refused, not stuck waiting for a writer


def test_short_writes_of_gathered_pieces_are_resumed_where_they_stopped(
    posix: tuple[PosixConnector, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """writev may take only part of what it is given (a signal, a nearly full disk)."""
    connector, root, _ = posix
    real_writev = os.writev
    calls: list[int] = []

    def at_most_five_bytes(fd: int, buffers: list[memoryview]) -> int:
        calls.append(len(buffers))
        return real_writev(fd, [b"".join(bytes(buffer) for buffer in buffers)[:5]])

    monkeypatch.setattr(os, "writev", at_most_five_bytes)
    pieces = [b"abc", b"defghij", b"", b"k", b"lmnopqrstu"]
    connector.write_atomic("/short", [b"".join(pieces[:2]), b"-"])
    with connector.begin_write("/gathered") as writer:
        writer.write_chunks(pieces)
        writer.commit()
    assert (root / "short").read_bytes() == b"abcdefghij-"
    assert (root / "gathered").read_bytes() == b"".join(pieces)
    assert len(calls) > 4


def test_a_large_write_is_handed_to_the_disk_as_it_arrives(
    posix: tuple[PosixConnector, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """So that the fsync before the file appears has little left to write."""
    connector, root, _ = posix
    handed: list[tuple[int, int]] = []

    def recording(fd: int, offset: int, length: int) -> None:
        handed.append((offset, length))
        start_writeback(fd, offset, length)

    monkeypatch.setattr(posix_module, "start_writeback", recording)
    block = os.urandom(1024 * 1024)
    size = 2 * posix_module.WRITEBACK_STEP + len(block) // 2
    with connector.begin_write("/large") as writer:
        for start in range(0, size, len(block)):
            writer.write_chunks([block[: min(len(block), size - start)]])
        writer.commit()
    assert (root / "large").stat().st_size == size
    # Consecutive ranges from the start, each at least a step; what is left goes with fsync.
    assert len(handed) == 2
    position = 0
    for offset, length in handed:
        assert offset == position and length >= posix_module.WRITEBACK_STEP
        position += length


def _cached_pages(path: Path) -> int:
    """How many of a file's pages are in the page cache now (mincore(2) on a mapping)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert address not in (None, ctypes.c_void_p(-1).value)
        try:
            resident = (ctypes.c_ubyte * pages)()
            assert libc.mincore(address, size, resident) == 0
            return sum(flag & 1 for flag in resident)
        finally:
            libc.munmap(address, size)
    finally:
        os.close(fd)


def test_what_a_checkpoint_made_durable_and_verified_leaves_the_page_cache(
    posix: tuple[PosixConnector, Path, Path],
) -> None:
    """A large copy holds a step or two of the page cache, not the whole file: others' cached
    data stays, and its next writes reuse the pages it freed (see `_drop_behind`)."""
    connector, root, _ = posix
    block = os.urandom(1024 * 1024)
    blocks = 16
    options = WriteOptions(algorithms=("sha256",), verify_on_disk=True, background=True)
    with connector.begin_write("/large", options) as writer:
        for _ in range(blocks):
            writer.write(block)
        (part,) = (path for path in root.iterdir() if path.name.startswith(TEMP_PREFIX))
        assert _cached_pages(part) * mmap.PAGESIZE > len(block) * blocks // 2
        deadline = time.monotonic() + 10
        # The verifying thread may still be reading the last ranges back: those stay cached.
        while _cached_pages(part) * mmap.PAGESIZE > 2 * len(block):
            assert time.monotonic() < deadline, "the durable, verified pages stayed cached"
            assert writer.checkpoint() == len(block) * blocks
            time.sleep(0.05)
        result = writer.commit()
    assert result.size == len(block) * blocks
    assert result.digests["sha256"] == hashlib.sha256(block * blocks).digest()
    assert (root / "large").read_bytes() == block * blocks


def test_writers_committed_together_appear_only_durable_and_verified(
    posix: tuple[PosixConnector, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """commit_all: one syncfs before the files are checked and renamed, one after; a file
    whose bytes on storage differ from what was sent, or whose size or digest is not the
    one expected, never appears; the others do."""
    connector, root, _ = posix
    (root / "d").mkdir()
    syncs: list[list[str]] = []

    def recording(fd: int) -> None:
        syncs.append(sorted(path.name for path in (root / "d").iterdir()))
        if len(syncs) == 1:  # the storage corrupts one file after it was written
            temp = next(path for path in (root / "d").iterdir()
                        if path.read_bytes() == b"to be corrupted")
            temp.write_bytes(b"to be CORRUPTED")
        sync_filesystem(fd)

    monkeypatch.setattr(posix_module, "sync_filesystem", recording)
    contents = {"good1": b"first", "good2": b"second", "corrupt": b"to be corrupted",
                "short": b"abc", "wrong": b"wrong digest"}
    writers = []
    for name, data in contents.items():
        options = WriteOptions(
            expected_size=10 if name == "short" else len(data), algorithms=("sha256",),
            expected_digests={"sha256": hashlib.sha256(b"other").digest()}
            if name == "wrong" else None, verify_on_disk=True)
        writer = connector.begin_write(f"/d/{name}", options)
        writer.write(data)
        writers.append(writer)
    outcomes = dict(zip(contents, connector.commit_all(writers), strict=True))
    assert isinstance(outcomes["short"], SizeMismatch)
    assert isinstance(outcomes["wrong"], ChecksumMismatch)
    assert isinstance(outcomes["corrupt"], ChecksumMismatch)
    for name in ("good1", "good2"):
        result = outcomes[name]
        assert isinstance(result, WriteResult)
        assert result.hexdigest("sha256") == hashlib.sha256(contents[name]).hexdigest()
        assert (root / "d" / name).read_bytes() == contents[name]
    # Nothing had its final name before the first sync; only the good files after all.
    assert len(syncs) == 2
    assert all(name.startswith(TEMP_PREFIX) for name in syncs[0]) and len(syncs[0]) == 3
    assert sorted(path.name for path in (root / "d").iterdir()) == ["good1", "good2"]


def test_temporary_names_are_hidden_and_reserved(posix: tuple[PosixConnector, Path, Path]) -> None:
    connector, root, _ = posix
    (root / f"{TEMP_PREFIX}leftover").write_bytes(b"half")
    (root / "real").write_bytes(b"r")
    assert [entry.name for entry in connector.list("/")] == ["real"]
    for attempt in (
        lambda: connector.write_atomic(f"/{TEMP_PREFIX}x", [b"x"]),
        lambda: connector.mkdir(f"/{TEMP_PREFIX}x"),
        lambda: connector.rename("/real", f"/{TEMP_PREFIX}x"),
        lambda: connector.symlink(f"/{TEMP_PREFIX}x", "/real"),
    ):
        with pytest.raises(InvalidPath):
            attempt()


def test_the_root_must_exist_and_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        PosixConnector(tmp_path / "missing")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectory):
        PosixConnector(tmp_path / "file")


def test_a_root_reached_through_a_symlink_knows_both_of_its_names(tmp_path: Path) -> None:
    real = tmp_path / "real-root"
    real.mkdir()
    (real / "f").write_bytes(b"F")
    alias = tmp_path / "alias-root"
    alias.symlink_to(real)
    (real / "via-real").symlink_to(real / "f")
    (real / "via-alias").symlink_to(alias / "f")
    with PosixConnector(alias) as connector:
        assert connector.open_read("/via-real").read() == b"F"
        assert connector.open_read("/via-alias").read() == b"F"
        assert connector.stat("/via-alias").link_target == "/f"


def test_a_link_that_reaches_nothing_never_shows_the_servers_own_paths(
    posix: tuple[PosixConnector, Path, Path],
) -> None:
    """ls shows a link's target as a collection path; a dangling or escaping link's raw text
    would name the root's real folder, or folders outside it."""
    connector, root, outside = posix
    (root / "dir").mkdir()
    (root / "dir" / "gone").symlink_to(root / "dir" / "missing")  # absolute, under the root
    (root / "dir" / "out").symlink_to(outside)  # absolute, outside the root
    (root / "dir" / "climbs").symlink_to(f"{root}/../{outside.name}")  # under it, then out
    (root / "dir" / "relative").symlink_to("../missing")  # shown as the link stores it
    entries = {entry.name: entry for entry in connector.list("/dir")}
    assert entries["gone"].link_target == "/dir/missing"
    assert entries["out"].link_target is None
    assert entries["climbs"].link_target is None
    assert entries["relative"].link_target == "../missing"
    for entry in entries.values():
        assert entry.type is EntryType.SYMLINK and entry.target is None
        assert str(root) not in repr(entry) and str(outside) not in repr(entry)
    assert connector.stat("/dir/gone").link_target == "/dir/missing"


def test_swapping_a_directory_for_a_symlink_mid_operation_never_escapes(
    posix: tuple[PosixConnector, Path, Path],
) -> None:
    """A local user renames a real directory and an escaping symlink in and out of the same
    name as fast as possible while the connector reads, lists and writes through it."""
    connector, root, outside = posix
    (root / "real").mkdir()
    (root / "real" / "secret.txt").write_bytes(b"inside secret")
    (root / "link").symlink_to(outside)
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            for name in ("real", "link"):
                try:
                    os.rename(root / name, root / "d")
                    os.rename(root / "d", root / name)
                except FileNotFoundError:
                    pass

    flipper = threading.Thread(target=flip)
    flipper.start()
    seen: set[bytes] = set()
    listed: set[str] = set()
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            with contextlib.suppress(StorageError), connector.open_read("/d/secret.txt") as stream:
                seen.add(stream.read())
            with contextlib.suppress(StorageError):
                listed.update(entry.name for entry in connector.list("/d"))
            with contextlib.suppress(StorageError):
                connector.write_atomic("/d/planted.txt", [b"planted"])
    finally:
        stop.set()
        flipper.join()
    assert seen <= {b"inside secret"}
    assert "outside-only.txt" not in listed
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before
    assert not any(name.startswith(TEMP_PREFIX) for name in os.listdir(root / "real"))


def test_over_long_names_are_refused_before_any_byte_is_sent(
    posix: tuple[PosixConnector, Path, Path],
) -> None:
    connector, root, _ = posix
    with pytest.raises(InvalidPath):
        connector.begin_write("/" + "n" * 300)
    with pytest.raises(InvalidPath):
        connector.stat("/" + "d" * 300 + "/f")
    assert os.listdir(root) == []


@pytest.mark.parametrize("variant", ["server-account", "mapped-account"])
def test_names_that_are_not_utf8_still_round_trip(
    request: pytest.FixtureRequest, tmp_path: Path, public_tmp: Path, variant: str
) -> None:
    account = request.getfixturevalue("mapped_account") if variant == "mapped-account" else None
    root, _ = _make_area(public_tmp if account else tmp_path, account)
    raw = os.fsencode(root) + b"/caf\xe9.txt"
    with open(raw, "wb") as handle:
        handle.write(b"latin-1 name")
    with open_posix_connector(root, account) as connector:
        (entry,) = connector.list("/")
        assert os.fsencode(entry.name) == b"caf\xe9.txt"
        assert connector.open_read("/" + entry.name).read() == b"latin-1 name"
        connector.rename("/" + entry.name, "/renamed.txt")
    assert os.listdir(root) == ["renamed.txt"]


def test_a_closed_worker_connection_stays_closed(worker: WorkerConnector) -> None:
    worker.close()
    with pytest.raises(StorageUnavailable):
        worker.list("/")


def test_local_accounts_are_looked_up(mapped_account: LocalAccount) -> None:
    found = LocalAccount.lookup(mapped_account.name)
    assert found.uid == mapped_account.uid and mapped_account.gid in found.groups
    assert mapped_account.name in found.group_names()  # useradd made a group of the same name
    with pytest.raises(AccountNotFound):
        LocalAccount.lookup("no-such-account-isthmus")
    with pytest.raises(AccountNotFound):
        LocalAccount.lookup("")
    assert LocalAccount.current().uid == os.geteuid()


def test_os_errors_become_storage_errors_that_name_only_collection_paths() -> None:
    full = storage_error(OSError(errno.ENOSPC, "No space", "/srv/data/files/x"), "/x")
    assert isinstance(full, QuotaExceeded) and full.path == "/x"
    assert "/srv" not in str(full)
    odd = storage_error(OSError(errno.EIO, "I/O error", "/srv/data/files/y"), "/y")
    assert isinstance(odd, StorageUnavailable) and "/srv" not in str(odd)
    assert "Input/output error" in str(odd)


def test_client_mistakes_default_to_4xx_and_storage_failures_to_5xx() -> None:
    from isthmus.storage import errors

    for kind in (
        errors.NotFound,
        errors.AlreadyExists,
        errors.NotADirectory,
        errors.IsADirectory,
        errors.DirectoryNotEmpty,
        errors.PermissionDenied,
        errors.AccountNotPermitted,
        errors.InvalidPath,
        errors.PathEscape,
        errors.InvalidArgument,
        errors.UnsupportedAlgorithm,
        errors.SizeMismatch,
        errors.ChecksumMismatch,
    ):
        assert 400 <= kind.http_status < 500, kind
    assert errors.StorageUnavailable.http_status == 503
    assert errors.QuotaExceeded.http_status == 507
    assert set(errors.ERROR_TYPES) >= {"PathEscape", "ChecksumMismatch", "StorageUnavailable"}
