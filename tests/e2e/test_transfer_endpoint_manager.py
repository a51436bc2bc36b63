"""The endpoint manager through the official SDK: holders of the endpoint's activity_monitor
role read other users' tasks, activity_manager holders also cancel them and pause them with
pause rules (which the runner honours), and everyone else is refused."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
from globus_sdk import (
    GCSClient,
    GCSRoleDocument,
    GuestCollectionDocument,
    TransferClient,
    TransferData,
    UserCredentialDocument,
)

from tests.conftest import EndpointSite, User, _new_user
from tests.e2e.helpers import native_login, pointed_at
from tests.e2e.test_connect_guest import ACCOUNT
from tests.e2e.test_connect_manager_api import gcs_client
from tests.e2e.test_transfer_file_ops import app_transfer_client
from tests.e2e.test_transfer_registry import transfer_client
from tests.e2e.test_transfer_tasks import digests, expect_error, make_tree
from tests.live import ISTHMUS


@pytest.fixture(scope="module")
def site(endpoint_site: EndpointSite) -> Iterator[EndpointSite]:
    with pointed_at(endpoint_site.server):
        yield endpoint_site


@pytest.fixture(scope="module")
def owner_gcs(site: EndpointSite) -> GCSClient:
    scope = str(GCSClient.get_gcs_endpoint_scopes(site.endpoint_id).manage_collections)
    token = native_login(site.server, site.owner.username, site.owner.password,
                         [scope])[site.endpoint_id]["access_token"]
    return GCSClient(site.server.manager_url, authorizer=globus_sdk.AccessTokenAuthorizer(token))


def user_with_role(site: EndpointSite, owner_gcs: GCSClient, prefix: str,
                   role: str | None) -> TransferClient:
    user = _new_user(site.server, prefix)
    if role is not None:
        owner_gcs.create_role(GCSRoleDocument(principal=f"urn:globus:auth:identity:{user.id}",
                                              role=role))
    return transfer_client(site, user)


@pytest.fixture(scope="module")
def alice(site: EndpointSite) -> User:
    return _new_user(site.server, "alice")


@pytest.fixture(scope="module")
def alice_tc(site: EndpointSite, alice: User) -> TransferClient:
    client = app_transfer_client(site, alice, site.collection_id)
    client.operation_ls(site.collection_id)  # makes alice's home
    make_tree(home(site, alice) / "src", files=20, large=1024 * 1024)
    return client


def home(site: EndpointSite, user: User) -> Path:
    return site.server.data_dir / "files" / user.username


def submit(site: EndpointSite, tc: TransferClient, name: str) -> str:
    data = TransferData(site.collection_id, site.collection_id, label=name)
    data.add_item("/~/src/", f"/~/{name}/", recursive=True)
    return str(tc.submit_transfer(data)["task_id"])


def until(check: Any, timeout: float = 30) -> Any:
    started = time.monotonic()
    while not (found := check()):
        assert time.monotonic() - started < timeout
        time.sleep(0.2)
    return found


def test_monitors_read_managers_cancel_and_pause_others_are_refused(
    site: EndpointSite, owner_gcs: GCSClient, alice: User, alice_tc: TransferClient,
) -> None:
    monitor = user_with_role(site, owner_gcs, "monica", "activity_monitor")
    manager = user_with_role(site, owner_gcs, "manny", "activity_manager")
    nobody = user_with_role(site, owner_gcs, "nobody", None)
    # A rule pausing alice's tasks on the endpoint, from now on.
    rule = manager.endpoint_manager_create_pause_rule({
        "DATA_TYPE": "pause_rule", "message": "disk maintenance",
        "endpoint_id": site.endpoint_id, "identity_id": alice.id, "start_time": None})
    assert (rule["message"], rule["editable"], rule["pause_task_transfer_read"]) == (
        "disk maintenance", True, True)
    paused_id = submit(site, alice_tc, "paused")
    task = until(lambda: (found := alice_tc.get_task(paused_id))["is_paused"] and found)
    assert (task["status"], task["nice_status"], task["is_ok"]) == (
        "INACTIVE", "PAUSED_BY_ADMIN", False)
    info = alice_tc.task_pause_info(paused_id)
    assert [item["id"] for item in info["pause_rules"]] == [rule["id"]]
    assert info["source_pause_message"] == "disk maintenance"
    assert [item["task_id"] for item in alice_tc.task_list(filter="is_paused:1")] == [paused_id]

    # The monitor sees and reads alice's task, but may not cancel, pause or make rules.
    listed = monitor.endpoint_manager_task_list(filter_status="ACTIVE,INACTIVE")
    assert paused_id in [item["task_id"] for item in listed]
    assert [item["task_id"] for item in monitor.endpoint_manager_task_list(
        filter_status="INACTIVE", filter_is_paused=True)] == [paused_id]
    shown = monitor.endpoint_manager_get_task(paused_id)
    assert (shown["owner_id"], shown["owner_string"], shown["source_host_endpoint_id"]) == (
        alice.id, alice.username, site.endpoint_id)
    assert [item["task_id"] for item in monitor.paginated.endpoint_manager_task_list(
        filter_task_id=[paused_id]).items()] == [paused_id]
    assert monitor.endpoint_manager_task_pause_info(paused_id)["pause_rules"][0]["id"] == \
        rule["id"]
    assert "STARTED" not in [event["code"] for event in
                             monitor.endpoint_manager_task_event_list(paused_id)]
    assert [item["id"] for item in monitor.endpoint_manager_pause_rule_list()] == [rule["id"]]
    assert site.endpoint_id in [item["id"] for item in
                                monitor.endpoint_manager_monitored_endpoints()]
    expect_error(403, "PermissionDenied", monitor.endpoint_manager_cancel_tasks,
                 [paused_id], "no")
    expect_error(403, "PermissionDenied", monitor.endpoint_manager_pause_tasks,
                 [paused_id], "no")
    expect_error(403, "PermissionDenied", monitor.endpoint_manager_create_pause_rule,
                 {"message": "no", "endpoint_id": site.endpoint_id})
    expect_error(403, "PermissionDenied", monitor.endpoint_manager_delete_pause_rule,
                 rule["id"])
    expect_error(400, "ClientError.BadRequest", monitor.endpoint_manager_task_list)

    # Without a role: refused, and nothing listed.
    for call, args in [(nobody.endpoint_manager_get_task, (paused_id,)),
                       (nobody.endpoint_manager_task_event_list, (paused_id,)),
                       (nobody.endpoint_manager_cancel_tasks, ([paused_id], "no"))]:
        expect_error(403, "PermissionDenied", call, *args)
    assert list(nobody.endpoint_manager_task_list(filter_status="ACTIVE,INACTIVE")) == []
    expect_error(404, "ClientError.NotFound", nobody.endpoint_manager_get_pause_rule,
                 rule["id"])
    expect_error(404, "ClientError.NotFound", manager.endpoint_manager_get_task,
                 str(uuid.uuid4()))

    # The manager cancels a second (paused) task of alice's.
    canceled_id = submit(site, alice_tc, "canceled")
    cancel = manager.endpoint_manager_cancel_tasks([canceled_id], "too big")
    assert until(lambda: manager.endpoint_manager_cancel_status(cancel["id"])["done"])
    canceled = alice_tc.get_task(canceled_id)
    assert (canceled["status"], canceled["fatal_error"]["code"], canceled["canceled_by_admin"],
            canceled["canceled_by_admin_message"]) == ("FAILED", "CANCELED", "BOTH", "too big")

    # A single task paused by id stays paused when the rule goes, until resumed.
    assert manager.endpoint_manager_pause_tasks([paused_id], "hold on")["code"] == "Paused"
    manager.endpoint_manager_delete_pause_rule(rule["id"])
    assert alice_tc.get_task(paused_id)["is_paused"]
    assert manager.endpoint_manager_resume_tasks([paused_id])["code"] == "Resumed"
    # At once: a task paused when its slice began was handed back (no lease to outwait).
    assert alice_tc.task_wait(paused_id, timeout=20, polling_interval=1)
    assert alice_tc.get_task(paused_id)["status"] == "SUCCEEDED"
    assert digests(home(site, alice) / "paused") == digests(home(site, alice) / "src")
    copied = list(monitor.endpoint_manager_task_successful_transfers(paused_id))
    assert len(copied) == len(digests(home(site, alice) / "src"))
    expect_error(404, "ClientError.NotFound", manager.endpoint_manager_get_pause_rule,
                 rule["id"])
    # Every task of alice's on the endpoint, a page at a time, newest first.
    pages = monitor.paginated.endpoint_manager_task_list(
        filter_endpoint=site.endpoint_id, filter_owner_id=alice.id, query_params={"limit": 1})
    assert [item["task_id"] for item in pages.items()] == [canceled_id, paused_id]
    expect_error(400, "ClientError.BadRequest", manager.endpoint_manager_create_pause_rule,
                 {"message": "x", "endpoint_id": site.endpoint_id, "identity_id": 7})


def test_monitors_see_the_endpoint_what_it_hosts_and_guest_access_rules(
    site: EndpointSite, owner_gcs: GCSClient, alice: User, alice_tc: TransferClient,
) -> None:
    monitor = user_with_role(site, owner_gcs, "mona", "activity_monitor")
    nobody_user = _new_user(site.server, "nemo")
    nobody = transfer_client(site, nobody_user)
    # alice shares a folder of her home in a guest collection, with a rule for nobody_user.
    alice_gcs = gcs_client(site, alice)
    gateway = str(alice_gcs.get_collection(site.collection_id)["storage_gateway_id"])
    credential = alice_gcs.create_user_credential(UserCredentialDocument(
        storage_gateway_id=gateway, identity_id=alice.id, username=ACCOUNT))
    (home(site, alice) / "shared").mkdir(exist_ok=True)
    guest = str(alice_gcs.create_collection(GuestCollectionDocument(
        display_name="alice shares", mapped_collection_id=site.collection_id,
        user_credential_id=credential["id"], collection_base_path="/~/shared"))["id"])
    rule_id = transfer_client(site, alice).add_endpoint_acl_rule(guest, {
        "DATA_TYPE": "access", "principal_type": "identity", "principal": nobody_user.id,
        "path": "/", "permissions": "r"})["access_id"]

    endpoint = monitor.endpoint_manager_get_endpoint(site.endpoint_id)
    assert (endpoint["id"], endpoint["entity_type"]) == (site.endpoint_id, "GCSv5_endpoint")
    shown = monitor.endpoint_manager_get_endpoint(guest)
    assert (shown["id"], shown["entity_type"], shown["host_endpoint_id"]) == (
        guest, "GCSv5_guest_collection", site.collection_id)
    # The endpoint hosts its collections; the mapped collection hosts its guest collections.
    on_endpoint = [item["id"] for item in
                   monitor.endpoint_manager_hosted_endpoint_list(site.endpoint_id)]
    assert {site.collection_id, guest} <= set(on_endpoint)
    assert site.endpoint_id not in on_endpoint
    on_mapped = [item["id"] for item in
                 monitor.endpoint_manager_hosted_endpoint_list(site.collection_id)]
    assert guest in on_mapped and site.collection_id not in on_mapped
    assert list(monitor.endpoint_manager_hosted_endpoint_list(guest)) == []
    # alice's rule, as the collection's own access_list shows it.
    rules = monitor.endpoint_manager_acl_list(guest)
    assert rules["DATA_TYPE"] == "access_list"
    assert {(item["id"], item["principal"], item["path"], item["permissions"])
            for item in rules if item["id"] == rule_id} == {
        (rule_id, nobody_user.id, "/", "r")}
    expect_error(400, "NotSupported", monitor.endpoint_manager_acl_list, site.collection_id)
    unknown = str(uuid.uuid4())
    for call in (monitor.endpoint_manager_get_endpoint,
                 monitor.endpoint_manager_hosted_endpoint_list,
                 monitor.endpoint_manager_acl_list):
        expect_error(404, "EndpointNotFound", call, unknown)
        expect_error(404, "EndpointNotFound", call, "not-an-id")

    # Without a role: refused on what they can see (the guest collection, through the
    # rule naming them), and what they cannot see stays unknown.
    for call in (nobody.endpoint_manager_get_endpoint,
                 nobody.endpoint_manager_hosted_endpoint_list,
                 nobody.endpoint_manager_acl_list):
        expect_error(403, "PermissionDenied", call, guest)
    hidden = transfer_client(site, _new_user(site.server, "hidden"))
    expect_error(404, "EndpointNotFound", hidden.endpoint_manager_acl_list, guest)
    expect_error(404, "EndpointNotFound", hidden.endpoint_manager_get_endpoint, guest)


def watch(site: EndpointSite, task_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ISTHMUS, "task", "watch", task_id, "--interval", "0.2",
         "--data-dir", str(site.server.data_dir)],
        capture_output=True, text=True, env=site.server.process_env(), timeout=60)


def test_isthmus_task_watch_follows_a_task_to_its_end(
    site: EndpointSite, alice: User, alice_tc: TransferClient,
) -> None:
    task_id = submit(site, alice_tc, "watched")
    watched = watch(site, task_id)  # started while the task runs, ends when it does
    assert watched.returncode == 0, watched.stderr
    total = sum(path.stat().st_size for path in (home(site, alice) / "src").rglob("*")
                if path.is_file() and not path.is_symlink())
    files = len(digests(home(site, alice) / "src"))
    assert watched.stdout.splitlines() == [
        f"Task {task_id} SUCCEEDED: {files} files, {total} bytes transferred"]
    assert f"{files}/{files} files" in watched.stderr  # the progress bar's last state
    unknown = str(uuid.uuid4())
    missing = watch(site, unknown)
    assert missing.returncode != 0
    assert (missing.stdout, missing.stderr.splitlines()) == (
        "", [f"Error: No task found with id '{unknown}'"])
