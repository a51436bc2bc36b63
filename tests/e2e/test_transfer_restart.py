"""A transfer survives its server being killed (SIGKILL) mid-task, again and again: after each
restart on the same data dir the task goes on from its durable record, files recorded as done
are not copied again, a large file killed mid-copy resumes from its last checkpoint (what is
sent again is under one checkpoint step per file in flight), a watcher polling the destination
never sees a partial file, and no temporary file is left at the end. A graceful stop and
an endpoint manager's pause keep the large file's copy the same way.

The server is stopped and let go on (SIGSTOP, SIGCONT) to catch a copy at a given point:
a test's polling alone can miss a copy that is that fast on one machine and not another."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from globus_sdk import TransferClient, TransferData

from isthmus.transfer.checkpoints import step_for
from isthmus.transfer.engine import PARALLEL_FILES
from tests.conftest import _new_user
from tests.database import fresh_database_url, wants_postgres
from tests.e2e.helpers import pointed_at
from tests.e2e.test_transfer_file_ops import app_transfer_client
from tests.e2e.test_transfer_tasks import LARGE_FILE, Site, collection_of, digests
from tests.live import LiveServer, start_server

pytestmark = pytest.mark.postgres

# Two runs of small files (`engine.SMALL_RUN_FILES`), so the first kill finds the second going.
SMALL_FILES = 2000
SMALL_SIZE = 8 * 1024
# Kills while the large file is mid-copy: once this much of it is written, then this much.
LARGE_KILLS = (0.4, 0.7)
KILLS = 1 + len(LARGE_KILLS)
PART = ".isthmus-part-"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with fresh_database_url(tmp_path) as database_url:
        env = {"ISTHMUS_DATABASE_URL": database_url} if wants_postgres() else {}
        # A killed runner's claims lapse after 2 s (on SQLite the restart takes them at once).
        server = start_server(tmp_path / "data", ISTHMUS_TASK_LEASE_SECONDS="2", **env)
        try:
            owner = _new_user(server, "owner")
            with pointed_at(server):
                yield Site(server, collection_of(server), owner)
        finally:
            server.stop()


class Watcher(threading.Thread):
    """Polls the destination: every file under its final name must be whole."""

    def __init__(self, source: Path, destination: Path) -> None:
        super().__init__(daemon=True)
        self.sizes = {str(path.relative_to(source)): path.stat().st_size
                      for path in source.rglob("*") if path.is_file()}
        self.destination = destination
        self.partial: list[str] = []
        self.looks = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for path in list(self.destination.rglob("*")) if self.destination.exists() else []:
                if path.name.startswith(".isthmus-part-"):
                    continue  # the writer's temporary name, never a final one
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    continue
                name = str(path.relative_to(self.destination))
                if path.is_file() and size != self.sizes[name]:
                    self.partial.append(f"{name}: {size} of {self.sizes[name]} bytes")
            self.looks += 1
            time.sleep(0.005)


def kill(server: LiveServer) -> None:
    """SIGKILL the server: no cleanup of any kind. Its account workers, orphaned, are let go
    on (`large_part_reaches` may have stopped them) to find their pipe closed and exit."""
    assert server.process is not None
    orphans = family(server.process.pid)[1:]
    server.process.kill()
    server.process.wait()
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def parts(destination: Path) -> dict[str, int]:
    """The temporary files in the destination folder, by name: their sizes."""
    found = {}
    for entry in os.scandir(destination) if destination.exists() else ():
        if entry.name.startswith(PART):
            try:
                found[entry.name] = entry.stat().st_size
            except FileNotFoundError:
                continue
    return found


def family(pid: int) -> list[int]:
    """The process and its descendants (the server's account workers write files too)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, index = [pid], 0
    while index < len(found):
        found.extend(children.get(found[index], []))
        index += 1
    return found


def signal_all(pids: list[int], signal_number: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)


@contextlib.contextmanager
def punctual() -> Iterator[None]:
    """Meanwhile this thread wakes from its sleeps on time: it runs at a real-time priority
    (where the test may: it runs as root in CI), ahead of the other tests' processes on a
    loaded machine; it takes the GIL from the test's other threads within 0.5 ms; and no
    thread stops them all for a full garbage collection. Without this a 2 ms slice of the
    server sometimes lasted 0.11-0.14 s, long enough to copy the whole 64 MiB file; with
    it, at most 15 ms (starting up) and 10 ms (copying, 2-8 MiB)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    gc.disable()
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        raised = True
    except PermissionError:
        raised = False
    try:
        yield
    finally:
        if raised:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        gc.enable()
        sys.setswitchinterval(interval)


def large_part_reaches(server: LiveServer, destination: Path, size: int,
                       timeout: float = 120) -> bool:
    """Wait until a temporary file of at least ``size`` bytes (only the large file's can be
    that big) is in the destination; False if none was seen in time.

    The server runs in slices of a few milliseconds (SIGCONT, then SIGSTOP) and the folder is
    looked at between them, so a copy faster than this test's polling (a loaded CI machine
    can leave it unscheduled for a tenth of a second) cannot pass the point unseen. On True
    the server is left stopped at that point: `kill` ends it there, `go_on` lets it run.
    A server just spawned is run this way from its start (`restarted_until_part_reaches`)."""
    assert server.process is not None
    ends = time.monotonic() + timeout
    members: list[int] = []
    looked_up = 0.0
    with punctual():
        while time.monotonic() < ends:
            # Looked up again now and then (a scan of /proc takes ~5 ms): a server starting
            # up starts its account workers later.
            if time.monotonic() - looked_up > 0.1:
                members, looked_up = family(server.process.pid), time.monotonic()
            signal_all(members, signal.SIGCONT)
            time.sleep(0.002)
            signal_all(members, signal.SIGSTOP)
            if any(found >= size for found in parts(destination).values()):
                return True
    signal_all(family(server.process.pid), signal.SIGCONT)
    return False


def restarted_until_part_reaches(server: LiveServer, destination: Path, size: int) -> bool:
    """`large_part_reaches` on the server started again: run in slices from its first
    instruction, since its runner takes the task up again before the server answers HTTP
    and a free start could carry the copy past ``size`` (or to its end) unseen."""
    server.spawn()
    return large_part_reaches(server, destination, size)


def go_on(server: LiveServer) -> None:
    assert server.process is not None
    signal_all(family(server.process.pid), signal.SIGCONT)


# `slowed`'s governor: a process of its own, so that the test's threads (its HTTP calls) do
# not hold it off the GIL while the server runs.
GOVERNOR = """
import os, signal, sys, time
pids = [int(pid) for pid in sys.argv[1].split(",")]
running, stopped = float(sys.argv[2]), float(sys.argv[3])
def send(number):
    for pid in pids:
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            pass
signal.signal(signal.SIGTERM, lambda *_: (send(signal.SIGCONT), sys.exit(0)))
try:  # on time, ahead of the other tests' processes (see `punctual`)
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
except PermissionError:
    pass
while True:
    send(signal.SIGSTOP)
    time.sleep(stopped)
    send(signal.SIGCONT)
    time.sleep(running)
"""


@contextlib.contextmanager
def slowed(server: LiveServer, running: float = 0.001, stopped: float = 0.019
           ) -> Iterator[None]:
    """Meanwhile the server runs ``running`` seconds in every ``running + stopped``: a copy
    that would end before what the test asks of the server takes effect takes that much
    longer, and the server still answers (as slowly)."""
    assert server.process is not None
    members = family(server.process.pid)
    governor = subprocess.Popen([sys.executable, "-c", GOVERNOR, ",".join(map(str, members)),
                                 str(running), str(stopped)])
    try:
        yield
    finally:
        governor.terminate()
        governor.wait()
        signal_all(members, signal.SIGCONT)


def test_a_transfer_survives_sigkill_of_its_server(site: Site) -> None:
    alice = _new_user(site.server, "alice")
    tc: TransferClient = app_transfer_client(site, alice,  # type: ignore[arg-type]
                                             site.collection_id)
    tc.operation_ls(site.collection_id)
    source = site.home(alice) / "src"
    source.mkdir()
    for number in range(SMALL_FILES):
        (source / f"f{number:04}.bin").write_bytes(os.urandom(SMALL_SIZE))
    with (source / "large.bin").open("wb") as handle:
        for _ in range(0, LARGE_FILE, 1024 * 1024):
            handle.write(os.urandom(1024 * 1024))
    destination = site.home(alice) / "dst"
    watcher = Watcher(source, destination)
    watcher.start()

    data = TransferData(site.collection_id, site.collection_id, verify_checksum=True)
    data.add_item("/~/src/", "/~/dst/", recursive=True)
    task_id = tc.submit_transfer(data)["task_id"]
    # First kill: among the small files, once some are recorded as done. Slowed meanwhile:
    # the large file starts as soon as the small files are, and a fast machine copied all
    # of it while the test asked what was recorded.
    recorded: dict[str, int] = {}
    with slowed(site.server):
        while not recorded:
            task = tc.get_task(task_id)
            assert task["status"] == "ACTIVE", \
                "the transfer ended before the server could be killed"
            # What the task has recorded as done, by the inode it was written to.
            for item in tc.task_successful_transfers(task_id)["DATA"]:
                name = item["destination_path"].rsplit("/dst/", 1)[1]
                recorded[name] = (destination / name).stat().st_ino
            if not recorded:
                time.sleep(0.05)
        kill(site.server)
    left: list[dict[str, int]] = []  # after each kill: the temporary files and their sizes
    left.append(parts(destination))
    # Then while the large file is being written (the small files come first, by name).
    for fraction in LARGE_KILLS:
        assert restarted_until_part_reaches(site.server, destination,
                                            int(LARGE_FILE * fraction)), \
            f"the large file was never seen {fraction:.0%} written"
        kill(site.server)
        left.append(parts(destination))
    site.server.start()

    assert tc.task_wait(task_id, timeout=240, polling_interval=1)
    watcher.done.set()
    watcher.join()
    task = tc.get_task(task_id)
    assert task["status"] == "SUCCEEDED", task
    assert watcher.partial == [] and watcher.looks > 10
    # Every file whole, and no temporary file left behind.
    assert digests(destination) == digests(source)
    assert not list(destination.rglob(f"{PART}*"))
    # No listing ever shows a temporary file.
    listed = {item["name"] for item in tc.operation_ls(site.collection_id, path="/~/dst/")}
    assert listed == {path.name for path in source.iterdir()}
    for name, inode in recorded.items():
        assert (destination / name).stat().st_ino == inode, f"{name} was copied again"
    copied = [item["destination_path"] for page in
              tc.paginated.task_successful_transfers(task_id).pages() for item in page["DATA"]]
    assert len(copied) == len(set(copied)) == SMALL_FILES + 1

    # What each restart found of the copies in flight, and where it went on from.
    resumed = [json.loads(event["details"]) for event in tc.task_event_list(
        task_id, limit=1000)["DATA"] if event["code"] == "RESUMED"]
    large = [found for found in resumed if found["file"].endswith("/large.bin")]
    step = step_for(LARGE_FILE)
    # The kills at set points of the large file resumed it past its start; the first kill,
    # among the small files, may find the large file begun too (it starts beside them).
    assert len(LARGE_KILLS) <= len(large) <= KILLS, resumed
    assert sum(kept["offset"] > 0 for kept in large) >= len(LARGE_KILLS), resumed
    for kept in large:
        assert 0 <= kept["offset"] <= kept["found"] <= LARGE_FILE, kept
        # What the killed server had written of the large file is what the next one found.
        assert any(kept["found"] in sizes.values() for sizes in left), (kept, left)
        assert kept["found"] - kept["offset"] <= step, kept
    resent = sum(found["found"] - found["offset"] for found in resumed)
    assert resent <= KILLS * PARALLEL_FILES * step, resumed
    # Only what was in flight resumed: at most one file per copying thread, per kill.
    assert len(resumed) <= KILLS * PARALLEL_FILES, resumed


def start_large_copy(site: Site, username: str, size: int = LARGE_FILE
                     ) -> tuple[TransferClient, Path, Path, str]:
    """A new user's verified transfer of one large file into a folder of theirs: the client,
    the source file, the destination folder and the task id."""
    user = _new_user(site.server, username)
    tc: TransferClient = app_transfer_client(site, user,  # type: ignore[arg-type]
                                             site.collection_id)
    tc.operation_ls(site.collection_id)
    source = site.home(user) / "big.bin"
    with source.open("wb") as handle:
        for _ in range(0, size, 1024 * 1024):
            handle.write(os.urandom(1024 * 1024))
    destination = site.home(user) / "out"
    destination.mkdir()
    data = TransferData(site.collection_id, site.collection_id, verify_checksum=True)
    data.add_item("/~/big.bin", "/~/out/big.bin")
    return tc, source, destination, tc.submit_transfer(data)["task_id"]


def assert_resumed_once(tc: TransferClient, task_id: str, source: Path, destination: Path,
                        kept: dict[str, int], step: int) -> None:
    """The `start_large_copy` task, interrupted once with ``kept`` (its temporary file) left,
    succeeds with the whole file, went on from a checkpoint of that copy (sending again at
    most one ``step``), and leaves no temporary file."""
    assert tc.task_wait(task_id, timeout=120, polling_interval=1)
    task = tc.get_task(task_id)
    assert task["status"] == "SUCCEEDED", task
    assert digests(destination) == {"big.bin": digests(source.parent)["big.bin"]}
    assert parts(destination) == {}
    resumed = [json.loads(event["details"]) for event in tc.task_event_list(task_id)["DATA"]
               if event["code"] == "RESUMED"]
    assert len(resumed) == 1 and resumed[0]["found"] in kept.values(), (resumed, kept)
    assert resumed[0]["offset"] > 0 and resumed[0]["found"] - resumed[0]["offset"] <= step, \
        resumed


def test_a_task_that_fails_after_a_crash_leaves_no_partial_file(site: Site) -> None:
    tc, source, destination, task_id = start_large_copy(site, "bob")
    assert large_part_reaches(site.server, destination, LARGE_FILE // 2), \
        "the copy was never seen half done"
    kill(site.server)
    assert parts(destination), "the killed copy left nothing to resume from"
    source.unlink()  # the restarted task cannot go on: it fails
    site.server.start()
    assert tc.task_wait(task_id, timeout=60, polling_interval=1)
    task = tc.get_task(task_id)
    assert task["status"] == "FAILED" and task["fatal_error"]["code"] == "FILE_NOT_FOUND", task
    # The temporary file goes once the task has ended (right after, in the runner).
    ends = time.monotonic() + 20
    while parts(destination) and time.monotonic() < ends:
        time.sleep(0.1)
    assert parts(destination) == {}
    assert not (destination / "big.bin").exists()


def test_a_server_stopped_gracefully_keeps_the_large_copy_to_resume_from(site: Site) -> None:
    """A restart (SIGTERM, the service stopping) is no crash: the runner stops the copy at its
    next buffer, and what was written of the large file up to its last checkpoint is kept
    and resumed, not sent again."""
    tc, source, destination, task_id = start_large_copy(site, "carol")
    # Early, so the copy is surely still going when the stop arrives (it stops at its next
    # buffer: see `Worker._pump`).
    step = step_for(LARGE_FILE)
    assert large_part_reaches(site.server, destination, step), "the copy was never seen begun"
    assert site.server.process is not None
    site.server.process.terminate()  # delivered when it goes on, at this point of the copy
    go_on(site.server)
    assert site.server.process.wait(timeout=10) == 0, "the server did not stop by itself"
    kept = parts(destination)
    assert len(kept) == 1 and step <= min(kept.values()) < LARGE_FILE, kept
    site.server.start()
    assert_resumed_once(tc, task_id, source, destination, kept, step)


def test_a_task_paused_mid_file_keeps_the_large_copy_to_resume_from(site: Site
                                                                     ) -> None:
    """An endpoint manager's pause rule stops a running copy at its next flush: the large
    file's temporary copy is kept while the task waits, and when the rule goes the copy
    goes on from its last checkpoint instead of from the start."""
    manager: TransferClient = app_transfer_client(site, site.owner,  # type: ignore[arg-type]
                                                  site.collection_id)
    manager.endpoint_manager_pause_rule_list()  # logged in now, not while the copy runs
    size = max(LARGE_FILE, 256 * 1024 * 1024)  # still mid-copy when the pause is noticed
    tc, source, destination, task_id = start_large_copy(site, "dave", size)
    step = step_for(size)
    assert large_part_reaches(site.server, destination, step), "the copy was never seen begun"
    # Slowed, so the copy is still going when the pause is noticed (at the next flush).
    with slowed(site.server):
        rule = manager.endpoint_manager_create_pause_rule({
            "DATA_TYPE": "pause_rule", "message": "held for maintenance",
            "endpoint_id": site.collection_id, "identity_id": None, "start_time": None})
        ends = time.monotonic() + 60
        while not tc.get_task(task_id)["is_paused"]:
            assert time.monotonic() < ends, "the task was never paused"
            time.sleep(0.25)
        # The task shows paused at once; its runner notices at its next flush (0.5 s).
        kept = parts(destination)
        while True:
            time.sleep(1)
            if parts(destination) == kept:
                break
            assert time.monotonic() < ends, "the copy went on while paused"
            kept = parts(destination)
    # The copy has stopped, and what it wrote is kept (the server at full speed again too).
    time.sleep(1)
    assert parts(destination) == kept and len(kept) == 1, kept
    assert step <= min(kept.values()) < size, kept
    assert not (destination / "big.bin").exists()
    assert tc.get_task(task_id)["status"] == "INACTIVE"

    manager.endpoint_manager_delete_pause_rule(rule["id"])
    assert_resumed_once(tc, task_id, source, destination, kept, step)
