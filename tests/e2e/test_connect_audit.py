"""The endpoint's audit records: a user reads and writes over HTTPS with curl, and the
owner reads the records with `globus-connect-server audit load|query|dump` (the real
console script, logged in as the owner); a user holding no endpoint role is refused."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from globus_sdk import DeleteData, MappedCollectionDocument, TransferData

from tests.conftest import EndpointSite, User, _new_user, answer_login, shell_environment
from tests.e2e.data_helpers import DataSite, curl, dav, start_data_site
from tests.e2e.helpers import pointed_at
from tests.e2e.test_connect_manager_api import gcs_client
from tests.e2e.test_gcs_cli import GCS
from tests.e2e.test_transfer_file_ops import app_transfer_client
from tests.e2e.test_transfer_tasks import expect_error as expect_transfer_error
from tests.e2e.test_transfer_tasks import wait

CONTENT = b"audited bytes, 29 of them...\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataSite]:
    yield from start_data_site(tmp_path_factory.mktemp("isthmus-audit"))


@pytest.fixture(scope="module")
def alice(site: DataSite) -> User:
    return _new_user(site.server, "alice")


@pytest.fixture(scope="module")
def alice_token(site: DataSite, alice: User) -> str:
    return site.token(alice)


def gcs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GCS, *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)


def logged_in_shell(site: DataSite, user: User, home: Path) -> dict[str, str]:
    """A shell of ``user`` after `globus-connect-server login ENDPOINT_ID`."""
    env = shell_environment(site.server, home)
    process = subprocess.Popen([GCS, "login", site.endpoint_id, "--no-local-server"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        answer_login(site.server, process, user)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, f"{out}\n{err}"
    return env


@pytest.fixture(scope="module")
def owner_shell(site: DataSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return logged_in_shell(site, site.owner, tmp_path_factory.mktemp("owner-home"))


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def activity(site: DataSite, alice: User, alice_token: str,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Alice's PUT, GET, DELETE in her folder, a PUT refused outside it, and a GET with a
    token that is not active; the collection paths they name."""
    body = tmp_path_factory.mktemp("audit-body") / "body"
    body.write_bytes(CONTENT)
    home = site.home_url(alice)
    put = curl(site.server, alice_token, "-X", "PUT", "--data-binary", f"@{body}",
               f"{home}/report.txt")
    assert put.status == 201, put.text
    got = curl(site.server, alice_token, f"{home}/report.txt")
    assert got.status == 200 and got.body == CONTENT
    assert dav(site, alice_token, "DELETE", f"{home}/report.txt").status == 204
    refused = curl(site.server, alice_token, "-X", "PUT", "--data-binary", f"@{body}",
                   f"{site.url}/planted.txt")
    assert refused.status == 403, refused.text
    assert curl(site.server, "not-a-token", f"{home}/report.txt").status == 401
    return {"file": f"/{alice.username}/report.txt", "refused": "/planted.txt"}


def query(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    records = json.loads(ok(gcs(env, "audit", "query", "-F", "json", *args)))
    assert isinstance(records, list)
    return records


def test_owner_queries_what_a_user_did_over_https(
        site: DataSite, alice: User, activity: dict[str, str],
        owner_shell: dict[str, str]) -> None:
    records = query(owner_shell, "--username", alice.username)
    done = [(r["operation"], r["path"], r["bytes"], r["status"], r["result"]) for r in records]
    assert done == [
        ("PUT", activity["file"], len(CONTENT), 201, "ok"),
        ("GET", activity["file"], len(CONTENT), 200, "ok"),
        ("DELETE", activity["file"], None, 204, "ok"),
        ("PUT", activity["refused"], 0, 403, "permission_denied"),  # nothing was taken
    ]
    for record in records:
        assert record["identity_id"] == alice.id
        assert record["collection_id"] == site.collection_id
        assert record["endpoint_id"] == site.endpoint_id
        assert record["channel"] == "https" and record["local_account"]

    # Filters: operation, result, path, time range; the text table names the user.
    gets = query(owner_shell, "--username", alice.username, "--operation", "get")
    assert [r["path"] for r in gets] == [activity["file"]]
    errors = query(owner_shell, "--result", "error")
    assert {(r["path"], r["result"], r["username"]) for r in errors} == {
        (activity["refused"], "permission_denied", alice.username),
        (activity["file"], "not_authorized", None)}  # the inactive token names no one
    assert [r["bytes"] for r in query(owner_shell, "--path", f"/{alice.username}")] == [
        len(CONTENT), len(CONTENT), None, 0]  # the refused GET moved nothing
    assert query(owner_shell, "--start", "2999-01-01T00:00:00Z") == []
    table = ok(gcs(owner_shell, "audit", "query", "--operation", "DELETE"))
    assert alice.username in table and activity["file"] in table


def test_dump_and_load_give_every_record_and_no_token(
        alice_token: str, activity: dict[str, str], owner_shell: dict[str, str]) -> None:
    lines = ok(gcs(owner_shell, "audit", "dump")).splitlines()
    dumped = [json.loads(line) for line in lines]
    assert len(dumped) == 5
    assert [r["operation"] for r in dumped] == ["PUT", "GET", "DELETE", "PUT", "GET"]
    rows = list(csv.DictReader(io.StringIO(ok(gcs(owner_shell, "audit", "dump", "--csv")))))
    assert [row["path"] for row in rows] == [r["path"] for r in dumped]
    assert rows[0]["bytes"] == str(len(CONTENT))
    for text in (json.dumps(dumped), json.dumps(rows)):
        assert alice_token not in text and "not-a-token" not in text
    loaded = ok(gcs(owner_shell, "audit", "load"))
    assert "Audit records available: 5" in loaded
    assert "Kept for 365 days" in loaded  # ISTHMUS_AUDIT_RETENTION_DAYS's default


def test_a_user_without_an_endpoint_role_is_refused(
        site: DataSite, alice: User, activity: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    env = logged_in_shell(site, alice, tmp_path_factory.mktemp("alice-home"))
    for command in (("query",), ("dump",), ("load",)):
        refused = gcs(env, "audit", *command)
        assert refused.returncode != 0 and "Insufficient permissions" in refused.stderr, \
            refused.stderr
        assert refused.stdout == ""


FIELDS = ("collection_id", "username", "identity_id", "channel", "operation", "path",
          "destination", "bytes", "status", "result")


def shown(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The records' fields, in a fixed order of records: each is written as its operation
    ends, and which of a copy's read and write ends first is the engine's business."""
    return sorted((tuple(record[name] for name in FIELDS) for record in records), key=repr)


def expected(*records: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return sorted(records, key=repr)


def test_transfer_operations_are_recorded_and_filtered(
        site: DataSite, alice: User, activity: dict[str, str],
        owner_shell: dict[str, str]) -> None:
    """Alice's Transfer work on two collections (mkdir, a refused mkdir, a copy task from
    one to the other, a rename, a delete task) and Bob's HTTPS upload on the second: `audit
    query` by user, identity, collection and time window, and `audit dump`, give exactly
    those records, each naming who, which collection and path, the bytes and the result."""
    files = EndpointSite(site.server, site.owner, site.endpoint_id, site.collection_id,
                         "files")
    with pointed_at(site.server):
        owner = gcs_client(files, site.owner)
        gateway = str(owner.get_collection(site.collection_id)["storage_gateway_id"])
        second = str(owner.create_collection(MappedCollectionDocument(
            display_name="audited second", storage_gateway_id=gateway,
            collection_base_path="/", public=True))["id"])
    bob = _new_user(site.server, "bob")
    bob_token = site.token(bob, collection_id=second)
    (site.home_dir(alice) / "source.txt").write_bytes(CONTENT)
    time.sleep(1)  # the HTTPS records of `activity` are written as their answers end
    started = datetime.now(UTC)

    home = f"/{alice.username}"
    with pointed_at(site.server):
        tc = app_transfer_client(files, alice, site.collection_id)
        tc.add_app_data_access_scope(second)
        tc.operation_mkdir(site.collection_id, "~/copies/")
        expect_transfer_error(403, "EndpointPermissionDenied", tc.operation_mkdir,
                              site.collection_id, "/not-hers/")
        data = TransferData(site.collection_id, second)
        data.add_item("~/source.txt", "~/copies/copy.txt")
        assert wait(tc, tc.submit_transfer(data)["task_id"])["status"] == "SUCCEEDED"
        tc.operation_rename(second, "~/copies/copy.txt", "~/copies/renamed.txt")
        removal = DeleteData(second)
        removal.add_item("~/copies/renamed.txt")
        assert wait(tc, tc.submit_delete(removal)["task_id"])["status"] == "SUCCEEDED"
    put = curl(site.server, bob_token, "-X", "PUT", "--data-binary", "bob's bytes",
               f"{site.server.base_url}data/{second}/{quote(bob.username)}/bob.txt")
    assert put.status == 201, put.text
    time.sleep(1)
    ended = datetime.now(UTC)
    assert not (site.home_dir(alice) / "copies" / "renamed.txt").exists()

    first = site.collection_id
    alices = [
        (first, alice.username, alice.id, "transfer", "MKDIR", f"{home}/copies", None, None,
         None, "ok"),
        (first, alice.username, alice.id, "transfer", "MKDIR", "/not-hers", None, None, 403,
         "permission_denied"),
        (first, alice.username, alice.id, "transfer", "READ", f"{home}/source.txt", None,
         len(CONTENT), None, "ok"),
        (second, alice.username, alice.id, "transfer", "WRITE", f"{home}/copies/copy.txt",
         None, len(CONTENT), None, "ok"),
        (second, alice.username, alice.id, "transfer", "MOVE", f"{home}/copies/copy.txt",
         f"{home}/copies/renamed.txt", None, None, "ok"),
        (second, alice.username, alice.id, "transfer", "DELETE",
         f"{home}/copies/renamed.txt", None, None, None, "ok"),
    ]
    bobs = [(second, bob.username, bob.id, "https", "PUT", f"/{bob.username}/bob.txt", None,
             len("bob's bytes"), 201, "ok")]
    window = ("--start", started.isoformat(), "--end", ended.isoformat())

    by_alice = query(owner_shell, "--username", alice.username, *window)
    assert shown(by_alice) == expected(*alices)
    assert all(r["local_account"] and r["endpoint_id"] == site.endpoint_id for r in by_alice)
    assert shown(query(owner_shell, "--identity-id", bob.id)) == expected(*bobs)
    assert shown(query(owner_shell, "--collection-id", second)) == expected(
        *[r for r in alices + bobs if r[0] == second])
    assert shown(query(owner_shell, "--collection-id", second, "--username",
                       alice.username)) == expected(*[r for r in alices if r[0] == second])
    assert shown(query(owner_shell, "--collection-id", first, *window)) == expected(
        *[r for r in alices if r[0] == first])
    # The window leaves out the HTTPS records made before it, and none is left out of it.
    everything = query(owner_shell)
    assert shown(query(owner_shell, *window)) == expected(*alices, *bobs)
    before = query(owner_shell, "--end", started.isoformat())
    assert len(before) == 5 and {r["channel"] for r in before} == {"https"}
    assert before + query(owner_shell, "--start", started.isoformat()) == everything

    dumped = [json.loads(line) for line in ok(gcs(owner_shell, "audit", "dump",
                                                  *window)).splitlines()]
    assert shown(dumped) == expected(*alices, *bobs)
    assert dumped == [{name: r[name] for name in dumped[0]} for r in query(owner_shell, *window)]
    rows = list(csv.DictReader(io.StringIO(ok(gcs(owner_shell, "audit", "dump", "--csv",
                                                  "--start", started.isoformat())))))
    assert [row["id"] for row in rows] == [str(r["id"]) for r in dumped]
    assert sorted((row["operation"], row["collection_id"], row["bytes"]) for row in rows) == \
        sorted((r[4], r[0], "" if r[7] is None else str(r[7])) for r in alices + bobs)
