"""Schemathesis over Transfer's OpenAPI document: no request gets a 5xx.

The document (``/openapi.json``, `transfer/openapi.py`) describes every ``/v0.10`` route
with its query parameters and body, so `tests.e2e.fuzzing` generates valid and broken
requests from it. Each request carries the endpoint owner's transfer token, consented to
the mapped collection's data_access (file operations get past consent), and path and body
ids are often swapped for real ones: the endpoint, its mapped and guest collections, an
access rule, a bookmark, tasks, a pause rule, an admin cancel, the collection's roles. The
owner administers the endpoint, so the endpoint manager's routes reach their rules too.
Checks: no 5xx (but the spec's 502 ``ExternalError.*`` for what the storage refuses, e.g.
mkdir of a folder that exists), and every answer is a Transfer document (Transfer's error
body on a 4xx), and no traceback in the server's log.

Bounded for CI: ``ISTHMUS_TRANSFER_SCHEMATHESIS_EXAMPLES`` (default 10) examples per
operation and generation mode; set it to 40 or more for a campaign.
"""

from __future__ import annotations

import getpass
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import _new_user
from tests.e2e.fuzzing import (
    Fuzzed,
    bearer_credentials,
    examples,
    fuzz_every_operation,
    fuzzed_server,
    not_a_server_error_but_storage,
    succeeded,
)
from tests.e2e.helpers import native_login
from tests.e2e.test_transfer_file_ops import dependency
from tests.live import LiveServer

pytestmark = pytest.mark.postgres

EXAMPLES = examples("ISTHMUS_TRANSFER_SCHEMATHESIS_EXAMPLES", 10)
FUZZED = r"^/v0\.10/"
TRANSFER = "transfer.api.globus.org"
# Body fields that name rows, and the path parameter whose real ids they take.
BODY_IDS = {"source_endpoint": "endpoint_id", "destination_endpoint": "endpoint_id",
            "endpoint": "endpoint_id", "endpoint_id": "endpoint_id",
            "task_id_list": "task_id"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    with fuzzed_server(tmp_path_factory.mktemp("isthmus-transfer-schemathesis")) as (
            server, http):
        yield _provision(server, http)


def _provision(server: LiveServer, http: requests.Session) -> Fuzzed:
    owner = _new_user(server, "xferfuzz")  # the first user owns the endpoint
    printed = server.log()
    endpoint = re.search(r"Globus Connect Server endpoint: ([0-9a-f-]{36})", printed)
    mapped = re.search(r'collection "[^"]+": ([0-9a-f-]{36})', printed)
    assert endpoint and mapped, printed
    endpoint_id, mapped_id = endpoint.group(1), mapped.group(1)
    manage = f"urn:globus:auth:scope:{endpoint_id}:manage_collections"
    tokens = native_login(server, owner.username, owner.password,
                          [dependency(mapped_id), manage])
    transfer = {"Authorization": f"Bearer {tokens[TRANSFER]['access_token']}"}
    gcs = {"Authorization": f"Bearer {tokens[endpoint_id]['access_token']}"}

    def call(method: str, url: str, headers: dict[str, str],
             body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = http.request(method, url, json=body, headers=headers, timeout=30)
        assert answer.status_code < 300, answer.text
        found: dict[str, Any] = answer.json()
        return found

    api, v0 = server.manager_url + "/api/", server.base_url + "v0.10/"
    # A guest collection on the owner's home, with an access rule for another user.
    call("PATCH", api + f"collections/{mapped_id}", gcs, {
        "DATA_TYPE": "collection#1.0.0", "collection_type": "mapped",
        "allow_guest_collections": True})
    gateway_id = call("GET", api + f"collections/{mapped_id}", gcs)["data"][0][
        "storage_gateway_id"]
    credential = call("POST", api + "user_credentials", gcs, {
        "DATA_TYPE": "user_credential#1.0.0", "storage_gateway_id": gateway_id,
        "identity_id": owner.id, "username": getpass.getuser()})["data"][0]
    guest_id = call("POST", api + "collections", gcs, {
        "DATA_TYPE": "collection#1.0.0", "collection_type": "guest", "display_name": "g",
        "mapped_collection_id": mapped_id, "user_credential_id": credential["id"],
        "collection_base_path": credential["home_directory"]})["data"][0]["id"]
    reader = _new_user(server, "xferreader")
    access_id = call("POST", v0 + f"endpoint/{guest_id}/access", transfer, {
        "DATA_TYPE": "access", "principal_type": "identity", "principal": reader.id,
        "path": "/", "permissions": "r"})["access_id"]
    bookmark_id = call("POST", v0 + "bookmark", transfer, {
        "DATA_TYPE": "bookmark", "name": "fuzzed", "endpoint_id": mapped_id,
        "path": "/~/"})["id"]

    # Files to work on, and tasks: a finished transfer, and a delete of what is not there.
    call("GET", v0 + f"operation/endpoint/{mapped_id}/ls", transfer)  # makes the home
    home = server.data_dir / "files" / owner.username
    (home / "src").mkdir(exist_ok=True)
    for number in range(3):
        (home / "src" / f"f{number}.txt").write_text(f"file {number}\n")

    def submit(kind: str, body: dict[str, Any]) -> str:
        submission_id = call("GET", v0 + "submission_id", transfer)["value"]
        return str(call("POST", v0 + kind, transfer, {
            **body, "submission_id": submission_id})["task_id"])

    transfer_id = submit("transfer", {
        "DATA_TYPE": "transfer", "source_endpoint": mapped_id,
        "destination_endpoint": mapped_id, "verify_checksum": True, "DATA": [{
            "DATA_TYPE": "transfer_item", "source_path": "/~/src/",
            "destination_path": "/~/dst/", "recursive": True}]})
    delete_id = submit("delete", {
        "DATA_TYPE": "delete", "endpoint": mapped_id, "ignore_missing": True,
        "DATA": [{"DATA_TYPE": "delete_item", "path": "/~/missing"}]})
    manager = v0 + "endpoint_manager/"
    pause_rule_id = call("POST", manager + "pause_rule", transfer, {
        "DATA_TYPE": "pause_rule", "message": "fuzzed", "endpoint_id": endpoint_id,
        "identity_id": str(uuid.uuid4()), "start_time": None})["id"]
    cancel_id = call("POST", manager + "admin_cancel", transfer, {
        "task_id_list": [delete_id], "message": "fuzzed"})["id"]
    roles = call("GET", v0 + f"endpoint/{mapped_id}/role_list", transfer)["DATA"]
    return Fuzzed(server, http, bearer_credentials(tokens[TRANSFER]["access_token"]),
                  body_ids=BODY_IDS, ids={
                      "endpoint_id": [mapped_id, guest_id, endpoint_id],
                      "rule_id": [access_id, pause_rule_id],
                      "bookmark_id": [bookmark_id],
                      "task_id": [transfer_id, delete_id],
                      "cancel_id": [cancel_id],
                      "role_id": [role["id"] for role in roles],
                  })


# A campaign (many examples) runs past the suite's per-test timeout: give it time in step.
@pytest.mark.timeout(max(300, EXAMPLES * 10))
def test_no_generated_transfer_request_gets_a_server_error(
    fuzzed: Fuzzed, subtests: pytest.Subtests
) -> None:
    checks = (not_a_server_error_but_storage, response_schema_conformance)
    assert fuzz_every_operation(fuzzed, FUZZED, subtests, EXAMPLES, checks) >= 40
    # The token and real ids took requests past authentication into the rules.
    found = succeeded(fuzzed.server, FUZZED, ("200", "201", "202"))
    assert len(found) >= 25, sorted(found)
    # Nothing failed unseen either: no handler's or task worker's traceback in the log.
    assert "Traceback" not in fuzzed.server.log()


def test_the_document_describes_every_transfer_route_with_its_inputs(fuzzed: Fuzzed) -> None:
    paths = fuzzed.http.get(fuzzed.server.base_url + "openapi.json", timeout=30).json()[
        "paths"]
    transfer = {path: item for path, item in paths.items() if re.match(FUZZED, path)}
    for path, item in transfer.items():
        for method, operation in item.items():
            assert "4XX" in operation["responses"], (method, path)
            assert operation["security"] == [{"bearer": []}], (method, path)
            if method in ("post", "put") and not path.endswith("/cancel"):
                assert "requestBody" in operation, (method, path)
    manager = {path for path in transfer if path.startswith("/v0.10/endpoint_manager/")}
    assert {"/v0.10/endpoint_manager/endpoint/{endpoint_id}",
            "/v0.10/endpoint_manager/endpoint/{endpoint_id}/hosted_endpoint_list",
            "/v0.10/endpoint_manager/endpoint/{endpoint_id}/access_list"} <= manager
    submit = transfer["/v0.10/transfer"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert submit["required"] == ["submission_id", "source_endpoint", "destination_endpoint",
                                  "DATA"]
    ls = {p["name"] for p in transfer["/v0.10/operation/endpoint/{endpoint_id}/ls"]["get"][
        "parameters"] if p["in"] == "query"}
    assert {"path", "filter", "orderby", "limit", "offset", "show_hidden"} <= ls
    error = transfer["/v0.10/task/{task_id}"]["get"]["responses"]["4XX"]["content"][
        "application/json"]["schema"]
    assert error["required"] == ["code", "message", "request_id", "resource"]


# --- what the campaigns found: each a 400 in Transfer's error body now, never a 5xx ------


def _get(fuzzed: Fuzzed, path: str, **params: str) -> requests.Response:
    return fuzzed.http.get(fuzzed.server.base_url + "v0.10/" + path, params=params,
                           headers=fuzzed.credentials(None), timeout=30)


def _send(fuzzed: Fuzzed, method: str, path: str, body: dict[str, Any]) -> requests.Response:
    return fuzzed.http.request(method, fuzzed.server.base_url + "v0.10/" + path, json=body,
                               headers=fuzzed.credentials(None), timeout=30)


def _refused(answer: requests.Response, field: str) -> None:
    assert answer.status_code == 400, (answer.status_code, answer.text)
    error = answer.json()
    assert error["code"].startswith("ClientError.BadRequest"), error
    assert field in error["message"], error
    assert set(error) >= {"code", "message", "request_id", "resource"}


HUGE = str(10**30)
# A date that exists, but not once turned into UTC (before year 1).
BEFORE_TIME = "0001-01-01T00:00:00+05:00"


def test_huge_offsets_markers_and_counts_are_refused(fuzzed: Fuzzed) -> None:
    task_id = fuzzed.ids["task_id"][0]
    _refused(_get(fuzzed, "task_list", offset=HUGE), "offset")
    _refused(_get(fuzzed, f"task/{task_id}/event_list", offset=HUGE), "offset")
    _refused(_get(fuzzed, f"task/{task_id}/successful_transfers", marker=HUGE), "marker")
    _refused(_get(fuzzed, f"task/{task_id}/skipped_errors", marker=HUGE), "marker")
    _refused(_get(fuzzed, f"endpoint_manager/task/{task_id}/event_list", offset=HUGE),
             "offset")
    _refused(_get(fuzzed, "endpoint_manager/task_list", filter_status="ACTIVE",
                  filter_min_faults=HUGE), "filter_min_faults")


def test_dates_outside_what_utc_can_hold_are_refused(fuzzed: Fuzzed) -> None:
    task_id, mapped = fuzzed.ids["task_id"][0], fuzzed.ids["endpoint_id"][0]
    _refused(_get(fuzzed, "task_list", filter=f"request_time:{BEFORE_TIME},"),
             "request_time")
    _refused(_get(fuzzed, "endpoint_manager/task_list", filter_endpoint=mapped,
                  filter_completion_time=f"{BEFORE_TIME},"), "filter_completion_time")
    _refused(_get(fuzzed, "endpoint_manager/task_list", filter_status="ACTIVE",
                  last_key=f"{BEFORE_TIME},{task_id}"), "last_key")
    _refused(_get(fuzzed, "endpoint_manager/task_list", filter_status="ACTIVE",
                  last_key=f"9999-12-31T23:59:59-05:00,{task_id}"), "last_key")
    _refused(_send(fuzzed, "PUT", f"task/{task_id}", {"DATA_TYPE": "task",
                                                       "deadline": BEFORE_TIME}), "deadline")
    submission_id = _get(fuzzed, "submission_id").json()["value"]
    _refused(_send(fuzzed, "POST", "delete", {
        "DATA_TYPE": "delete", "submission_id": submission_id, "endpoint": mapped,
        "deadline": BEFORE_TIME, "DATA": [{"DATA_TYPE": "delete_item", "path": "/~/x"}]}),
        "deadline")
    _refused(_send(fuzzed, "POST", "endpoint_manager/pause_rule", {
        "DATA_TYPE": "pause_rule", "message": "m", "endpoint_id": mapped,
        "start_time": BEFORE_TIME}), "start_time")


def test_nul_characters_in_query_strings_are_refused(fuzzed: Fuzzed) -> None:
    # PostgreSQL cannot compare with a string holding NUL: refused before any query.
    task_id = fuzzed.ids["task_id"][0]
    _refused(_get(fuzzed, "task_list", filter="label:a\x00b"), "NUL")
    _refused(_get(fuzzed, f"task/{task_id}/event_list", filter="is_error:\x00"), "NUL")
    _refused(_get(fuzzed, "endpoint_manager/task_list", filter_status="ACTIVE",
                  filter_local_user="\x00"), "NUL")


def test_id_lists_that_name_no_id_are_refused(fuzzed: Fuzzed) -> None:
    mapped = fuzzed.ids["endpoint_id"][0]
    _refused(_get(fuzzed, "endpoint_manager/task_list", filter_endpoint=","),
             "filter_endpoint")
    _refused(_get(fuzzed, "endpoint_manager/pause_rule_list", filter_endpoint=","),
             "filter_endpoint")
    _refused(_send(fuzzed, "POST", "endpoint_manager/pause_rule", {
        "DATA_TYPE": "pause_rule", "message": "m", "endpoint_id": mapped,
        "identity_id": ","}), "identity_id")


def test_every_body_that_is_not_a_json_object_is_refused(fuzzed: Fuzzed) -> None:
    paths = fuzzed.http.get(fuzzed.server.base_url + "openapi.json", timeout=30).json()[
        "paths"]
    bodies = [b"{not json", b"[1, 2]", b'"text"', b"1e999", b'{"a": NaN}',
              b"[" * 100_000 + b"]" * 100_000, b'{"DATA_TYPE": "\\ud800"}', b"\xff\xfe"]
    sent = 0
    for path, item in paths.items():
        for method, operation in item.items():
            if not re.match(FUZZED, path) or "requestBody" not in operation:
                continue
            real = re.sub(r"\{(\w+)\}", lambda name: fuzzed.ids[name.group(1)][0], path)
            for body in bodies:
                answer = fuzzed.http.request(
                    method, fuzzed.server.base_url.rstrip("/") + real, data=body,
                    headers={**fuzzed.credentials(None), "Content-Type": "application/json"},
                    timeout=30)
                assert answer.status_code == 400, (method, real, body[:20], answer.text)
                assert set(answer.json()) >= {"code", "message", "request_id", "resource"}
                sent += 1
    assert sent >= 15 * len(bodies)
