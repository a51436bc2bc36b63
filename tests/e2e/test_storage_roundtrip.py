"""A tree goes round every kind of storage one endpoint has, moved by Transfer tasks that the
official SDK's TransferClient submits: POSIX ("<host> files") -> S3 (a bucket on moto's
server) -> WebDAV (a gateway whose upstream is a second Isthmus, reached with the owner's
OAuth2 user credential) -> POSIX, each hop with ``verify_checksum`` and
``preserve_timestamp``.

The tree holds 1,000 small files in nested folders, two empty folders, a symlink and a large
file (``ISTHMUS_TEST_LARGE_FILE``). After each hop rclone, reading the storage directly,
checks that exactly the source's files are there: in the bucket with its s3 backend
(``--download``: every byte), at the upstream with its webdav backend and a bearer token of
the upstream (names and sizes: WebDAV offers it no hash; the upstream's disk is compared by
digest). At the end the test compares digests, folders (the empty ones too) and
modification times of the returned tree with the source.

Symlinks, as Globus treats them: found while recursing they are not followed and not
recreated (Transfer counts them); named as items they are followed. A 3.65
``transfer_symlink_item`` onto S3 or WebDAV, which have no links, fails at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from globus_sdk import TransferClient, TransferData

from tests.e2e.data_helpers import rclone
from tests.e2e.helpers import pointed_at
from tests.e2e.storage_sites import (
    Pair,
    S3Site,
    add_s3_collection,
    connect_storage,
    make_gateway,
    rclone_s3,
    start_pair,
)
from tests.e2e.test_transfer_file_ops import app_transfer_client
from tests.e2e.test_transfer_tasks import LARGE_FILE, digests, folders, make_tree
from tests.s3_server import MotoS3

SMALL_FILES = 1000
TASK_TIMEOUT = 900  # the whole round; a shared CI machine may be slow


@dataclass
class Stores:
    pair: Pair  # the downstream is the endpoint with all three; the upstream holds WebDAV's
    s3: S3Site

    @property
    def posix_id(self) -> str:
        return self.pair.downstream.collection_id


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, moto_s3: MotoS3) -> Iterator[Stores]:
    for pair in start_pair(tmp_path_factory.mktemp("roundtrip")):
        pair.gateway_id, pair.collection_id = make_gateway(pair, "Upstream lab")
        connect_storage(pair, pair.gateway_id)
        pair.upstream_home.mkdir(parents=True, exist_ok=True)
        yield Stores(pair, add_s3_collection(pair.downstream, pair.env, moto_s3, "roundtrip"))


def transfer(tc: TransferClient, source: str, destination: str, items: tuple[str, str],
             label: str) -> dict[str, Any]:
    data = TransferData(source, destination, label=label, verify_checksum=True,
                        preserve_timestamp=True)
    data.add_item(*items, recursive=True)
    task_id = tc.submit_transfer(data)["task_id"]
    assert tc.task_wait(task_id, timeout=TASK_TIMEOUT, polling_interval=1), label
    task = tc.get_task(task_id).data
    assert task["status"] == "SUCCEEDED", [event["description"] for event in
                                           tc.task_event_list(task_id)]
    return task


def check_counts(task: dict[str, Any], source: Path, symlinks: int) -> None:
    files = digests(source)
    assert task["files"] == task["files_transferred"] == len(files)
    assert task["directories"] == len(folders(source)) + 1
    assert task["symlinks"] == symlinks
    total = sum((source / name).stat().st_size for name in files)
    assert task["bytes_transferred"] == task["bytes_checksummed"] == total


@pytest.mark.timeout(TASK_TIMEOUT)
def test_a_tree_goes_round_posix_s3_webdav_posix_and_comes_back_identical(
    stores: Stores, tmp_path: Path,
) -> None:
    pair, s3 = stores.pair, stores.s3
    down = pair.downstream
    with pointed_at(down.server):
        tc = app_transfer_client(down, down.owner, stores.posix_id)  # type: ignore[arg-type]
        tc.add_app_data_access_scope([s3.collection_id, pair.collection_id])
        tc.operation_ls(stores.posix_id)  # makes the owner's home
        source = down.home_dir(down.owner) / "tree"
        make_tree(source, files=SMALL_FILES, large=LARGE_FILE)
        expected = digests(source)
        person = pair.person.username

        to_s3 = transfer(tc, stores.posix_id, s3.collection_id, ("/~/tree/", "/rt/"),
                         "POSIX to S3")
        check_counts(to_s3, source, symlinks=1)
        in_bucket = rclone_s3(s3.moto, "check", "--download", str(source),
                              f"moto:{s3.bucket}/{s3.base}/rt")
        assert in_bucket.returncode == 0, in_bucket.stderr
        assert f"{len(expected)} matching files" in in_bucket.stderr, in_bucket.stderr

        to_webdav = transfer(tc, s3.collection_id, pair.collection_id,
                             ("/rt/", f"/{person}/rt/"), "S3 to WebDAV")
        check_counts(to_webdav, source, symlinks=0)
        # The upstream's collection as its users see it (names and sizes: WebDAV offers
        # rclone no hash), and its disk (the content).
        upstream = pair.upstream
        at_upstream = rclone(upstream.server, upstream.token(pair.person),
                             upstream.home_url(pair.person), tmp_path,
                             "check", str(source), "isthmus:rt")
        assert at_upstream.returncode == 0, at_upstream.stderr
        assert f"{len(expected)} matching files" in at_upstream.stderr, at_upstream.stderr
        assert digests(pair.upstream_home / "rt") == expected

        back = transfer(tc, pair.collection_id, stores.posix_id,
                        (f"/{person}/rt/", "/~/back/"), "WebDAV to POSIX")
        check_counts(back, source, symlinks=0)

    returned = down.home_dir(down.owner) / "back"
    assert digests(returned) == expected
    assert folders(returned) == folders(source)  # the empty folders too
    assert not (returned / "link").exists() and not (returned / "link").is_symlink()
    # Modification times survive to the second (WebDAV keeps no more).
    for name in expected:
        assert int((returned / name).stat().st_mtime) == int((source / name).stat().st_mtime)


def test_a_symlink_item_to_object_storage_fails_at_once(stores: Stores) -> None:
    """3.65's ``transfer_symlink_item`` (copy the link itself) has nothing to make on S3."""
    down = stores.pair.downstream
    with pointed_at(down.server):
        tc = app_transfer_client(down, down.owner, stores.posix_id)  # type: ignore[arg-type]
        tc.add_app_data_access_scope(stores.s3.collection_id)
        tc.operation_ls(stores.posix_id)
        home = down.home_dir(down.owner)
        (home / "target.txt").write_text("linked")
        (home / "alink").symlink_to("target.txt")
        submitted = tc.post("/v0.10/transfer", data={
            "DATA_TYPE": "transfer", "source_endpoint": stores.posix_id,
            "destination_endpoint": stores.s3.collection_id,
            "submission_id": tc.get_submission_id()["value"],
            "DATA": [{"DATA_TYPE": "transfer_symlink_item", "source_path": "/~/alink",
                      "destination_path": "/alink"}]})
        task_id = submitted["task_id"]
        assert tc.task_wait(task_id, timeout=120, polling_interval=1)
        task = tc.get_task(task_id)
    assert task["status"] == "FAILED"
    assert task["fatal_error"]["code"] == "NOT_SUPPORTED", task["fatal_error"]
    assert task["faults"] == 0  # refused, not retried
