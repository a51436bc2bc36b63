"""Transfer and delete tasks through the official SDK's TransferClient and the real globus-cli,
on a live server whose runner does the work: from the "<host> files" collection to a second
mapped POSIX collection over a directory of its own (and between folders of one), a tree of
1,000 small files, empty directories, a symlink and a large file, compared byte for byte (by
digest) by the test itself.

The runner's claiming is exercised here, so the module runs on PostgreSQL too.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from globus_sdk import (
    DeleteData,
    MappedCollectionDocument,
    StorageGatewayDocument,
    TransferAPIError,
    TransferClient,
    TransferData,
)

from tests.conftest import EndpointSite, User, _new_user, answer_login, shell_environment
from tests.database import fresh_database_url, wants_postgres
from tests.e2e.helpers import GLOBUS, cli_login, globus, pointed_at
from tests.e2e.test_connect_manager_api import POSIX, gcs_client
from tests.e2e.test_transfer_file_ops import app_transfer_client, dependency
from tests.e2e.test_transfer_registry import transfer_client
from tests.live import LiveServer, start_server

pytestmark = pytest.mark.postgres

LARGE_FILE = int(os.environ.get("ISTHMUS_TEST_LARGE_FILE", str(64 * 1024 * 1024)))
SMALL_FILES = 1000


class Site:
    """A server of this module's own, its "<host> files" collection, and its users."""

    def __init__(self, server: LiveServer, collection_id: str, owner: User) -> None:
        self.server = server
        self.collection_id = collection_id
        self.owner = owner  # the endpoint's owner (its first user)

    def home(self, user: User) -> Path:
        return self.server.data_dir / "files" / user.username


def collection_of(server: LiveServer) -> str:
    import re

    found = re.search(r'collection "[^"]+": ([0-9a-f-]{36})', server.log())
    assert found, server.log()
    return found.group(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("tasks")
    with fresh_database_url(tmp) as database_url:
        env = {"ISTHMUS_DATABASE_URL": database_url} if wants_postgres() else {}
        # Two running transfers per user, so that a third visibly waits.
        server = start_server(tmp / "data", ISTHMUS_TRANSFER_ACTIVE_TASKS="2", **env)
        try:
            owner = _new_user(server, "owner")  # the first user owns the endpoint
            with pointed_at(server):
                yield Site(server, collection_of(server), owner)
        finally:
            server.stop()


@dataclass
class Collection:
    collection_id: str
    root: Path  # its storage gateway's root on disk


@pytest.fixture(scope="module")
def second(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Collection:
    """A second mapped POSIX collection, on a gateway like the files one (its users, their
    homes) over a directory of its own."""
    import re

    endpoint = re.search(r"Globus Connect Server endpoint: ([0-9a-f-]{36})", site.server.log())
    assert endpoint, site.server.log()
    owner_gcs = gcs_client(EndpointSite(site.server, site.owner, endpoint.group(1),
                                        site.collection_id, "files"), site.owner)
    files = owner_gcs.get_storage_gateway(
        owner_gcs.get_collection(site.collection_id)["storage_gateway_id"])
    root = tmp_path_factory.mktemp("second-disk")
    gateway = owner_gcs.create_storage_gateway(StorageGatewayDocument(
        display_name="second disk", connector_id=POSIX, root=str(root),
        allowed_domains=files["allowed_domains"], identity_mappings=files["identity_mappings"]))
    collection = owner_gcs.create_collection(MappedCollectionDocument(
        display_name="second disk", storage_gateway_id=gateway["id"], public=True))
    return Collection(str(collection["id"]), root)


@pytest.fixture(scope="module")
def alice(site: Site) -> User:
    return _new_user(site.server, "alice")


@pytest.fixture(scope="module")
def alice_tc(site: Site, alice: User, second: Collection) -> TransferClient:
    client = app_transfer_client(site, alice, site.collection_id)  # type: ignore[arg-type]
    client.add_app_data_access_scope(second.collection_id)
    for collection in (site.collection_id, second.collection_id):
        client.operation_ls(collection)  # makes alice's home there
    return client


@pytest.fixture(scope="module")
def second_home(alice: User, second: Collection) -> tuple[str, Path]:
    """alice's home on the second collection (a folder named after her below the gateway's
    root, as on the files one): its collection path, and where it is on disk."""
    return f"/{alice.username}/", second.root / alice.username


def make_tree(root: Path, files: int = SMALL_FILES, large: int = LARGE_FILE) -> None:
    """``files`` small files over nested folders, two empty folders, a symlink, a large file."""
    for number in range(files):
        folder = root / f"d{number % 5}" / f"e{number % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{number}.txt").write_bytes(f"file {number}\n".encode() * (number + 1))
    (root / "empty").mkdir()
    (root / "d0" / "empty-too").mkdir()
    (root / "link").symlink_to("d0")
    with (root / "large.bin").open("wb") as handle:
        block = os.urandom(1024 * 1024)
        for offset in range(0, large, len(block)):
            handle.write(block[: min(len(block), large - offset)])


def digests(root: Path) -> dict[str, str]:
    """SHA-256 of every regular file under ``root`` (symlinks not followed), by relative path."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def folders(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")
            if path.is_dir() and not path.is_symlink()}


def wait(tc: TransferClient, task_id: str, timeout: float = 240) -> dict[str, Any]:
    assert tc.task_wait(task_id, timeout=timeout, polling_interval=1)
    return tc.get_task(task_id).data


def expect_error(status: int, code: str, call: Any, *args: Any,
                 **kwargs: Any) -> TransferAPIError:
    with pytest.raises(TransferAPIError) as caught:
        call(*args, **kwargs)
    assert (caught.value.http_status, caught.value.code) == (status, code), caught.value.raw_text
    return caught.value


def all_pages(call: Any, *args: Any) -> list[dict[str, Any]]:
    return [item for page in call(*args).pages() for item in page["DATA"]]


@pytest.fixture(scope="module")
def tree(site: Site, alice: User, alice_tc: TransferClient) -> Path:
    source = site.home(alice) / "src"
    make_tree(source)
    return source


@pytest.fixture(scope="module")
def first_copy(site: Site, alice_tc: TransferClient, second: Collection,
               second_home: tuple[str, Path], tree: Path) -> dict[str, Any]:
    data = TransferData(site.collection_id, second.collection_id, label="first copy",
                        verify_checksum=True, preserve_timestamp=True)
    data.add_item("/~/src/", "/~/dst/", recursive=True)
    submitted = alice_tc.submit_transfer(data)
    assert submitted["code"] == "Accepted"
    assert submitted.http_status == 202
    task = wait(alice_tc, submitted["task_id"])
    # What was copied, before any other test changes the tree.
    task["copied"] = digests(tree)
    task["copied_to"] = digests(second_home[1] / "dst")
    return task


def test_a_recursive_transfer_copies_the_tree(
    site: Site, alice_tc: TransferClient, second: Collection, second_home: tuple[str, Path],
    tree: Path, first_copy: dict[str, Any],
) -> None:
    task = first_copy
    destination = second_home[1] / "dst"
    assert task["status"] == "SUCCEEDED", task
    assert task["copied_to"] == task["copied"]
    assert folders(destination) == folders(tree)  # empty folders too
    assert not (destination / "link").exists()  # links found while recursing are not followed
    # preserve_timestamp (to the microsecond: times pass through a float on the way).
    assert abs((destination / "large.bin").stat().st_mtime
               - (tree / "large.bin").stat().st_mtime) < 1e-5
    assert task["files"] == task["files_transferred"] == SMALL_FILES + 1
    assert task["files_skipped"] == 0
    assert task["directories"] == len(folders(tree)) + 1
    assert task["symlinks"] == 1
    total = sum(path.stat().st_size for path in tree.rglob("*")
                if path.is_file() and not path.is_symlink())
    assert task["bytes_transferred"] == total
    assert task["bytes_checksummed"] == total
    assert task["subtasks_pending"] == 0
    assert task["subtasks_succeeded"] == task["subtasks_total"]
    assert task["fatal_error"] is None and task["nice_status"] is None
    assert task["completion_time"] and task["label"] == "first copy"
    assert task["source_endpoint_id"] == site.collection_id
    assert task["destination_endpoint_id"] == second.collection_id
    # Every file copied, with the checksum the runner computed while streaming.
    copied = all_pages(alice_tc.paginated.task_successful_transfers, task["task_id"])
    expected = task["copied"]
    assert {item["destination_path"]: item["checksum"] for item in copied} == {
        f"{second_home[0]}dst/{name}": value for name, value in expected.items()}
    assert {item["checksum_algorithm"] for item in copied} == {"SHA256"}
    events = alice_tc.task_event_list(task["task_id"])
    assert [event["code"] for event in events] == ["SUCCEEDED", "STARTED"]
    assert alice_tc.task_pause_info(task["task_id"])["pause_rules"] == []
    assert list(alice_tc.task_skipped_errors(task["task_id"])) == []


def test_a_checksum_sync_copies_only_what_changed(
    site: Site, alice: User, alice_tc: TransferClient, second: Collection,
    second_home: tuple[str, Path], tree: Path, first_copy: dict[str, Any],
) -> None:
    assert first_copy["status"] == "SUCCEEDED"
    again = TransferData(site.collection_id, second.collection_id, sync_level="checksum")
    again.add_item("/~/src/", "/~/dst/", recursive=True)
    task = wait(alice_tc, alice_tc.submit_transfer(again)["task_id"])
    assert (task["status"], task["files_transferred"]) == ("SUCCEEDED", 0)
    assert task["files_skipped"] == SMALL_FILES + 1
    assert list(alice_tc.task_successful_transfers(task["task_id"])) == []

    changed = tree / "d1" / "e2" / "f11.txt"
    changed.write_text("changed\n")
    once_more = TransferData(site.collection_id, second.collection_id, sync_level="checksum")
    once_more.add_item("/~/src/", "/~/dst/", recursive=True)
    task = wait(alice_tc, alice_tc.submit_transfer(once_more)["task_id"])
    assert (task["status"], task["files_transferred"]) == ("SUCCEEDED", 1)
    copied = list(alice_tc.task_successful_transfers(task["task_id"]))
    assert [item["source_path"] for item in copied] == [f"/{alice.username}/src/d1/e2/f11.txt"]
    assert (second_home[1] / "dst" / "d1" / "e2" / "f11.txt").read_text() == "changed\n"
    assert digests(second_home[1] / "dst") == digests(tree)


def test_a_submission_id_runs_once(site: Site, alice: User, alice_tc: TransferClient) -> None:
    (site.home(alice) / "once.txt").write_text("once")
    submission_id = alice_tc.get_submission_id()["value"]
    data = TransferData(site.collection_id, site.collection_id, submission_id=submission_id)
    data.add_item("/~/once.txt", "/~/once-copy/once.txt")
    first = alice_tc.submit_transfer(data)
    second = alice_tc.submit_transfer(data)
    assert (first["code"], second["code"]) == ("Accepted", "Duplicate")
    assert first["task_id"] == second["task_id"]
    assert second["submission_id"] == submission_id
    same = alice_tc.task_list(filter={"task_id": first["task_id"]})
    assert len(same["DATA"]) == 1
    assert wait(alice_tc, first["task_id"])["status"] == "SUCCEEDED"
    assert (site.home(alice) / "once-copy" / "once.txt").read_text() == "once"


def test_malformed_documents_name_the_field(site: Site, alice_tc: TransferClient) -> None:
    ep = site.collection_id

    def submit(**fields: Any) -> dict[str, Any]:
        body = {"DATA_TYPE": "transfer", "source_endpoint": ep, "destination_endpoint": ep,
                "submission_id": str(uuid.uuid4()),
                "DATA": [{"DATA_TYPE": "transfer_item", "source_path": "/~/a",
                          "destination_path": "/~/b"}], **fields}
        return alice_tc.post("/v0.10/transfer", data=body).data

    expect_error(400, "ClientError.BadRequest.NoTransferItems", submit, DATA=[])
    for field, value in [("sync_level", 7), ("verify_checksum", "yes"), ("deadline", "soon"),
                         ("submission_id", "not-a-uuid"), ("label", 5),
                         ("filter_rules", [{"method": "drop", "name": "*"}])]:
        error = expect_error(400, "ClientError.BadRequest", submit, **{field: value})
        assert field in error.message, error.message
    bad_item = [{"DATA_TYPE": "transfer_item", "source_path": "/~/a", "destination_path": "/b",
                 "checksum_algorithm": "CRC99"}]
    error = expect_error(400, "ClientError.BadRequest", submit, DATA=bad_item)
    assert "DATA[0].checksum_algorithm" in error.message
    expect_error(404, "EndpointNotFound", submit, destination_endpoint=str(uuid.uuid4()))
    before = alice_tc.task_list(limit=1000)["total"]
    expect_error(400, "ClientError.BadRequest", alice_tc.post, "/v0.10/delete",
                 data={"DATA_TYPE": "delete", "endpoint": ep, "submission_id": str(uuid.uuid4()),
                       "DATA": [{"DATA_TYPE": "delete_item"}]})
    assert alice_tc.task_list(limit=1000)["total"] == before  # nothing was created


def test_a_delete_task_removes_a_subtree(
    site: Site, alice: User, alice_tc: TransferClient,
) -> None:
    doomed = site.home(alice) / "doomed"
    (doomed / "a" / "b").mkdir(parents=True)
    (doomed / "a" / "b" / "x.txt").write_text("x")
    (doomed / "keep.txt").write_text("keep")
    data = DeleteData(site.collection_id, recursive=True, label="cleanup")
    data.add_item("/~/doomed/a")
    task = wait(alice_tc, alice_tc.submit_delete(data)["task_id"])
    assert (task["status"], task["type"]) == ("SUCCEEDED", "DELETE")
    assert task["destination_endpoint_id"] is None
    assert not (doomed / "a").exists()
    assert (doomed / "keep.txt").read_text() == "keep"

    missing = DeleteData(site.collection_id, recursive=True)
    missing.add_item("/~/doomed/nothing-here")
    task = wait(alice_tc, alice_tc.submit_delete(missing)["task_id"])
    assert (task["status"], task["fatal_error"]["code"]) == ("FAILED", "FILE_NOT_FOUND")
    ignored = DeleteData(site.collection_id, recursive=True, ignore_missing=True)
    ignored.add_item("/~/doomed/nothing-here")
    assert wait(alice_tc, alice_tc.submit_delete(ignored)["task_id"])["status"] == "SUCCEEDED"


def test_task_list_filters_orders_and_pages(
    site: Site, alice: User, alice_tc: TransferClient,
) -> None:
    (site.home(alice) / "listed.txt").write_text("listed")
    ids = []
    for label in ("Alpha one", "alpha two", "beta"):
        data = TransferData(site.collection_id, site.collection_id, label=label)
        data.add_item("/~/listed.txt", f"/~/listed/{label}.txt")
        ids.append(alice_tc.submit_transfer(data)["task_id"])
    for task_id in ids:
        wait(alice_tc, task_id)

    def listed(**params: Any) -> list[str]:
        return [task["task_id"] for task in alice_tc.task_list(limit=1000, **params)["DATA"]]

    assert listed(filter="label:~alpha*", orderby="request_time ASC") == ids[:2]
    assert listed(filter="label:~alpha*,!~*two", orderby="label") == ids[:1]
    assert listed(filter="label:!~alpha*/label:~*a") == ids[2:]
    assert listed(filter={"task_id": ids[1:], "type": "TRANSFER", "status": "SUCCEEDED"},
                  orderby="request_time DESC") == ids[:0:-1]
    assert ids[0] not in listed(filter="type:DELETE")
    assert listed(filter="status:ACTIVE,INACTIVE") == []
    first = alice_tc.get_task(ids[0])["request_time"]
    assert ids[0] in listed(filter=f"request_time:{first.replace('T', ' ')[:19]},")
    page = alice_tc.task_list(limit=2, offset=1, filter="label:~alpha*/label:~*o*")
    assert (page["total"], page["offset"], page["limit"], page["length"]) == (2, 1, 2, 1)
    everything = list(alice_tc.paginated.task_list().items())
    assert len(everything) == alice_tc.task_list()["total"] >= 3
    expect_error(400, "ClientError.BadRequest", alice_tc.task_list, filter="colour:blue")
    expect_error(400, "ClientError.BadRequest", alice_tc.task_list, orderby="colour")
    expect_error(400, "ClientError.BadRequest", alice_tc.task_list, limit=5000)
    expect_error(409, "Conflict", alice_tc.update_task, ids[2], {"label": "x"})
    assert alice_tc.get_task(ids[2])["label"] == "beta"  # finished tasks do not change


@pytest.fixture(scope="module")
def slow_source(site: Site, alice: User, alice_tc: TransferClient) -> Path:
    """A smaller tree (200 small files) for `slow_transfer`: the task's first file comes
    after its folders are all listed, which must not take long."""
    source = site.home(alice) / "slow-src"
    make_tree(source, files=200, large=0)
    return source


def slow_transfer(site: Site, tc: TransferClient, source: Path, name: str) -> str:
    """A task of many small files (``source``'s folders copied 200 times, 40,000 files): far
    more work than the test lasts, so it is still running whenever the test ends it."""
    data = TransferData(site.collection_id, site.collection_id, label=name,
                        verify_checksum=True)
    for copy in range(200):
        for folder in sorted(p.name for p in source.iterdir() if p.name.startswith("d")):
            data.add_item(f"/~/{source.name}/{folder}/", f"/~/{name}/{copy}/{folder}/",
                          recursive=True)
    return str(tc.submit_transfer(data)["task_id"])


def test_cancel_stops_the_work_and_queued_tasks_wait_their_turn(
    site: Site, alice: User, alice_tc: TransferClient, second: Collection, slow_source: Path,
) -> None:
    ids = [slow_transfer(site, alice_tc, slow_source, f"slow{number}") for number in range(4)]
    # Two run (this server's share per user), the others wait queued.
    third = alice_tc.get_task(ids[2])
    assert (third["status"], third["nice_status"], third["is_ok"]) == ("ACTIVE", "Queued", True)
    # Tasks feed the in-use and recently-used scopes of endpoint_search (the latter also
    # holds the second collection when the module's first copy went there before).
    in_use = [item["id"] for item in alice_tc.endpoint_search(filter_scope="in-use")]
    assert in_use == [site.collection_id]
    recent = [item["id"] for item in alice_tc.endpoint_search(filter_scope="recently-used")]
    assert recent[0] == site.collection_id, recent
    assert set(recent) <= {site.collection_id, second.collection_id}, recent
    # A deadline moved into the past ends a task, queued or not.
    alice_tc.update_task(ids[3], {"deadline": "2000-01-01 00:00:06+00:00"})
    expired = wait(alice_tc, ids[3], timeout=30)
    assert (expired["status"], expired["fatal_error"]["code"]) == ("FAILED", "DEADLINE_EXCEEDED")
    updated = alice_tc.update_task(ids[2], {"label": "renamed",
                                            "deadline": "2099-01-02 03:04:05+00:00"})
    assert updated["code"] == "Updated"
    third = alice_tc.get_task(ids[2])
    assert (third["label"], third["deadline"]) == ("renamed", "2099-01-02T03:04:05+00:00")
    started = time.monotonic()
    while alice_tc.get_task(ids[0])["files_transferred"] == 0:
        assert time.monotonic() - started < 60
        time.sleep(0.2)
    before = time.monotonic()
    answer = alice_tc.cancel_task(ids[0])
    assert time.monotonic() - before < 5.5
    assert answer["code"] == "Canceled"
    task = alice_tc.get_task(ids[0])
    assert task["status"] == "FAILED"
    assert task["fatal_error"]["code"] == "CANCELED"
    assert task["subtasks_canceled"] > 0
    assert "CANCELED" in [event["code"] for event in alice_tc.task_event_list(ids[0])]
    copied = digests(site.home(alice) / "slow0")
    time.sleep(1.5)
    assert digests(site.home(alice) / "slow0") == copied  # nothing more was written
    assert not list((site.home(alice) / "slow0").rglob(".isthmus-part-*"))
    # The queued task got the freed place.
    started = time.monotonic()
    while alice_tc.get_task(ids[2])["nice_status"] == "Queued":
        assert time.monotonic() - started < 30
        time.sleep(0.2)
    for task_id in ids[1:3]:
        alice_tc.cancel_task(task_id)
        assert alice_tc.get_task(task_id)["status"] == "FAILED"
    assert alice_tc.cancel_task(ids[0])["code"] == "TaskComplete"
    # Once none of alice's tasks is active (earlier tests' too), nothing is in use.
    started = time.monotonic()
    while alice_tc.task_list(filter="status:ACTIVE,INACTIVE")["DATA"]:
        assert time.monotonic() - started < 60
        time.sleep(0.2)
    assert list(alice_tc.endpoint_search(filter_scope="in-use")) == []


def test_another_users_tasks_are_invisible(
    site: Site, alice_tc: TransferClient, first_copy: dict[str, Any],
) -> None:
    bob = _new_user(site.server, "bob")
    bob_tc = transfer_client(site, bob)  # type: ignore[arg-type]
    task_id = first_copy["task_id"]
    for call, args in [(bob_tc.get_task, ()), (bob_tc.cancel_task, ()),
                       (bob_tc.task_event_list, ()), (bob_tc.task_successful_transfers, ()),
                       (bob_tc.task_skipped_errors, ()), (bob_tc.task_pause_info, ()),
                       (bob_tc.update_task, ({"label": "mine"},))]:
        error = expect_error(404, "ClientError.NotFound", call, task_id, *args)
        assert error.message == f"No task found with id '{task_id}'"
    assert bob_tc.task_list()["total"] == 0
    assert alice_tc.get_task(task_id)["label"] == "first copy"
    # Without the data_access consent, bob's submission is refused at once.
    data = TransferData(site.collection_id, site.collection_id)
    data.add_item("/~/a", "/~/b")
    error = expect_error(403, "ConsentRequired", bob_tc.submit_transfer, data)
    assert error.info.consent_required.required_scopes == [dependency(site.collection_id)]
    assert bob_tc.task_list()["total"] == 0


def cli_consent(server: LiveServer, user: User, env: dict[str, str], scope: str) -> None:
    """`globus session consent --no-local-server SCOPE` with ``user`` at the keyboard."""
    process = subprocess.Popen([GLOBUS, "session", "consent", "--no-local-server", scope],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        answer_login(server, process, user)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, f"{out}\n{err}"


def test_globus_cli_transfers_waits_shows_and_deletes(
    site: Site, second: Collection, tmp_path: Path,
) -> None:
    """The tree of `test_a_recursive_transfer_copies_the_tree`, between the same two
    collections, through the real globus-cli."""
    carol = _new_user(site.server, "carol")
    env = shell_environment(site.server, tmp_path / "home")
    cli_login(site.server, carol, env)
    ep, other = site.collection_id, second.collection_id
    cli_consent(site.server, carol, env, dependency(ep, other))
    assert globus(env, "mkdir", f"{ep}:~/from").returncode == 0
    source = site.home(carol) / "from" / "tree"
    make_tree(source)

    done = globus(env, "transfer", "--recursive", "--label", "cli copy", "-F", "json",
                  f"{ep}:~/from/", f"{other}:~/to/")
    assert done.returncode == 0, done.stderr
    task_id = json.loads(done.stdout)["task_id"]
    waited = globus(env, "task", "wait", task_id, "--timeout", "240")
    assert waited.returncode == 0, waited.stderr
    shown = globus(env, "task", "show", task_id)
    assert shown.returncode == 0, shown.stderr
    assert "SUCCEEDED" in shown.stdout and "cli copy" in shown.stdout
    copied = second.root / carol.username / "to"
    assert digests(copied) == digests(site.home(carol) / "from")
    assert folders(copied / "tree") == folders(source)  # the empty folders too
    listed = globus(env, "ls", f"{other}:~/to/tree/")
    assert {"large.bin", "d0/", "empty/"} <= set(listed.stdout.split()), listed.stdout

    removed = globus(env, "delete", "--recursive", "-F", "json", f"{other}:~/to/tree/d1")
    assert removed.returncode == 0, removed.stderr
    delete_id = json.loads(removed.stdout)["task_id"]
    assert globus(env, "task", "wait", delete_id, "--timeout", "120").returncode == 0
    assert not (copied / "tree" / "d1").exists()
    assert (copied / "tree" / "d0").is_dir()
    listing = globus(env, "task", "list")
    assert task_id in listing.stdout and delete_id in listing.stdout


def test_cli_sees_a_failed_task_fail(site: Site, tmp_path: Path) -> None:
    dave = _new_user(site.server, "dave")
    env = shell_environment(site.server, tmp_path / "home")
    cli_login(site.server, dave, env)
    cli_consent(site.server, dave, env, dependency(site.collection_id))
    ep = site.collection_id
    submitted = globus(env, "transfer", "-F", "json", f"{ep}:~/missing.txt",
                       f"{ep}:~/copy.txt")
    assert submitted.returncode == 0, submitted.stderr
    task_id = json.loads(submitted.stdout)["task_id"]
    assert globus(env, "task", "wait", task_id, "--timeout", "60").returncode == 1
    events = globus(env, "task", "event-list", task_id)
    assert "FILE_NOT_FOUND" in events.stdout


def test_source_errors_skipped_and_external_checksums_checked(
    site: Site, alice: User, alice_tc: TransferClient,
) -> None:
    home = site.home(alice)
    (home / "sums").mkdir()
    (home / "sums" / "here.txt").write_text("here")
    md5 = hashlib.md5(b"here", usedforsecurity=False).hexdigest()
    ep = site.collection_id

    skipping = TransferData(ep, ep, skip_source_errors=True)
    skipping.add_item("/~/sums/here.txt", "/~/sums-out/here.txt", external_checksum=md5)
    skipping.add_item("/~/sums/gone.txt", "/~/sums-out/gone.txt")
    task = wait(alice_tc, alice_tc.submit_transfer(skipping)["task_id"])
    assert (task["status"], task["files_transferred"]) == ("SUCCEEDED", 1)
    assert task["subtasks_skipped_errors"] == 1
    skipped = list(alice_tc.task_skipped_errors(task["task_id"]))
    assert [(item["source_path"], item["error_code"]) for item in skipped] == [
        ("/~/sums/gone.txt", "FILE_NOT_FOUND")]
    copied = list(alice_tc.task_successful_transfers(task["task_id"]))
    assert [(item["checksum"], item["checksum_algorithm"]) for item in copied] == [(md5, "MD5")]

    wrong = TransferData(ep, ep)
    wrong.add_item("/~/sums/here.txt", "/~/sums-wrong/here.txt", external_checksum="0" * 32)
    task = wait(alice_tc, alice_tc.submit_transfer(wrong)["task_id"])
    assert (task["status"], task["fatal_error"]["code"]) == ("FAILED", "CHECKSUM_MISMATCH")
    assert not list((home / "sums-wrong").iterdir())  # nothing under the final name

    strict = TransferData(ep, ep)
    strict.add_item("/~/sums/gone.txt", "/~/sums-out/gone.txt")
    task = wait(alice_tc, alice_tc.submit_transfer(strict)["task_id"])
    assert (task["status"], task["fatal_error"]["code"]) == ("FAILED", "FILE_NOT_FOUND")
    errors = alice_tc.task_event_list(task["task_id"], query_params={"filter": "is_error:1"})
    assert [event["code"] for event in errors] == ["FILE_NOT_FOUND"]


def test_filter_rules_and_delete_destination_extra(
    site: Site, alice: User, alice_tc: TransferClient,
) -> None:
    source, target = site.home(alice) / "rules", site.home(alice) / "rules-out"
    for name in ("a.txt", "b.tmp", "sub/c.txt", "skip/d.txt"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(name)
    for name in ("extra.txt", "sub/old.txt", "a.txt"):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text("old " + name)
    data = TransferData(site.collection_id, site.collection_id, delete_destination_extra=True)
    data.add_item("/~/rules/", "/~/rules-out/", recursive=True)
    data.add_filter_rule("*.tmp", type="file")
    data.add_filter_rule("skip", type="dir")
    task = wait(alice_tc, alice_tc.submit_transfer(data)["task_id"])
    assert task["status"] == "SUCCEEDED", task
    assert task["filter_rules"][0]["name"] == "*.tmp"
    assert {str(p.relative_to(target)) for p in target.rglob("*")} == {"a.txt", "sub",
                                                                        "sub/c.txt"}
    assert (target / "a.txt").read_text() == "a.txt"


def test_deadlines_expire_tasks_and_globs_pick_what_to_delete(
    site: Site, alice: User, alice_tc: TransferClient,
) -> None:
    folder = site.home(alice) / "globbed"
    folder.mkdir()
    for name in ("one.log", "two.log", "keep.txt"):
        (folder / name).write_text(name)
    late = TransferData(site.collection_id, site.collection_id, deadline="2000-01-01")
    late.add_item("/~/globbed/keep.txt", "/~/late/keep.txt")
    task = wait(alice_tc, alice_tc.submit_transfer(late)["task_id"])
    assert (task["status"], task["fatal_error"]["code"]) == ("FAILED", "DEADLINE_EXCEEDED")
    assert task["subtasks_expired"] == 1
    assert not (site.home(alice) / "late").exists()

    data = DeleteData(site.collection_id, interpret_globs=True)
    data.add_item("/~/globbed/*.log")
    task = wait(alice_tc, alice_tc.submit_delete(data)["task_id"])
    assert task["status"] == "SUCCEEDED", task
    assert sorted(path.name for path in folder.iterdir()) == ["keep.txt"]
