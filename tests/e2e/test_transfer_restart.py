"""A transfer survives its server being killed (SIGKILL) mid-task, again and again: after each
restart on the same data dir the task goes on from its durable record, files recorded as done
are not copied again, and a watcher polling the destination never sees a partial file."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from globus_sdk import TransferClient, TransferData

from tests.conftest import _new_user
from tests.database import fresh_database_url, wants_postgres
from tests.e2e.helpers import pointed_at
from tests.e2e.test_transfer_file_ops import app_transfer_client
from tests.e2e.test_transfer_tasks import LARGE_FILE, Site, collection_of, digests
from tests.live import LiveServer, start_server

pytestmark = pytest.mark.postgres

SMALL_FILES = 300
SMALL_SIZE = 256 * 1024
KILLS = 3


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with fresh_database_url(tmp_path) as database_url:
        env = {"ISTHMUS_DATABASE_URL": database_url} if wants_postgres() else {}
        # A killed runner's claims lapse after 2 s (on SQLite the restart takes them at once).
        server = start_server(tmp_path / "data", ISTHMUS_TASK_LEASE_SECONDS="2", **env)
        try:
            _new_user(server, "owner")
            with pointed_at(server):
                yield Site(server, collection_of(server))
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
    assert server.process is not None
    server.process.kill()  # SIGKILL: no cleanup of any kind
    server.process.wait()


def test_a_transfer_survives_sigkill_of_its_server(site: Site) -> None:
    alice = _new_user(site.server, "alice")
    tc: TransferClient = app_transfer_client(site, alice,  # type: ignore[arg-type]
                                             site.collection_id)
    tc.operation_ls(site.collection_id)
    source = site.home(alice) / "src"
    source.mkdir()
    for number in range(SMALL_FILES):
        (source / f"f{number:03}.bin").write_bytes(os.urandom(SMALL_SIZE))
    with (source / "large.bin").open("wb") as handle:
        for _ in range(0, LARGE_FILE, 1024 * 1024):
            handle.write(os.urandom(1024 * 1024))
    destination = site.home(alice) / "dst"
    watcher = Watcher(source, destination)
    watcher.start()

    data = TransferData(site.collection_id, site.collection_id, verify_checksum=True)
    data.add_item("/~/src/", "/~/dst/", recursive=True)
    task_id = tc.submit_transfer(data)["task_id"]
    kills = 0
    recorded: dict[str, int] = {}
    seen = 0
    while kills < KILLS:
        task = tc.get_task(task_id)
        if task["status"] != "ACTIVE":
            break
        if task["bytes_transferred"] <= seen:
            time.sleep(0.05)
            continue
        # What the task has recorded as done, by the inode it was written to.
        for item in tc.task_successful_transfers(task_id)["DATA"]:
            name = item["destination_path"].rsplit("/dst/", 1)[1]
            recorded[name] = (destination / name).stat().st_ino
        kill(site.server)
        kills += 1
        site.server.start()
        seen = tc.get_task(task_id)["bytes_transferred"]
    assert kills >= 1, "the transfer ended before the server could be killed"

    assert tc.task_wait(task_id, timeout=240, polling_interval=1)
    watcher.done.set()
    watcher.join()
    task = tc.get_task(task_id)
    assert task["status"] == "SUCCEEDED", task
    assert watcher.partial == [] and watcher.looks > 10
    # A killed writer's temporary file stays on disk (hidden; nothing sweeps it yet).
    assert {name: value for name, value in digests(destination).items()
            if not name.startswith(".isthmus-part-")} == digests(source)
    # No listing ever shows a temporary file.
    listed = {item["name"] for item in tc.operation_ls(site.collection_id, path="/~/dst/")}
    assert listed == {path.name for path in source.iterdir()}
    assert recorded, "nothing was recorded before a kill"
    for name, inode in recorded.items():
        assert (destination / name).stat().st_ino == inode, f"{name} was copied again"
    copied = [item["destination_path"] for page in
              tc.paginated.task_successful_transfers(task_id).pages() for item in page["DATA"]]
    assert len(copied) == len(set(copied)) == SMALL_FILES + 1
