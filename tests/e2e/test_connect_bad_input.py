"""Property-based robustness of the GCS Manager API and Transfer's routes (registry, access
rules, file operations, bookmarks).

As `test_no_server_errors` does for Auth: Hypothesis sends mutated requests
(mostly valid documents and queries of a live server with a nasty character
spliced in, a field's value swapped, a header changed) to every route, and no
answer may be a 5xx. Errors must come in the service's own shape: the GCS
result envelope under /api, Transfer's ``code``/``message``/``request_id``
under /v0.10. ``ISTHMUS_FUZZ_EXAMPLES`` bounds the examples per route.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import _new_user
from tests.e2e.helpers import TRANSFER_ALL, native_login
from tests.e2e.test_no_server_errors import FUZZ, NASTY, Drawn, json_values
from tests.live import LiveServer, server_on_fresh_database

pytestmark = pytest.mark.postgres

POSIX = "145812c8-decc-41f1-83cf-bb2a85a2a70b"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True)
class Route:
    path: str  # {id} is replaced by a known or drawn id
    methods: tuple[str, ...]
    service: str  # gcs | transfer


ROUTES = [
    Route("api/info", ("GET",), "gcs"),
    Route("api/endpoint", ("GET", "PATCH", "PUT"), "gcs"),
    Route("api/storage_gateways", ("GET", "POST"), "gcs"),
    Route("api/storage_gateways/{id}", ("GET", "PATCH", "PUT", "DELETE"), "gcs"),
    Route("api/collections", ("GET", "POST"), "gcs"),
    Route("api/collections/{id}", ("GET", "PATCH", "PUT", "DELETE"), "gcs"),
    Route("api/roles", ("GET", "POST"), "gcs"),
    Route("api/roles/{id}", ("GET", "DELETE"), "gcs"),
    Route("api/endpoint/owner", ("PUT",), "gcs"),
    Route("api/endpoint/owner_string", ("PUT", "DELETE"), "gcs"),
    Route("api/endpoint/subscription_id", ("PUT",), "gcs"),
    Route("api/nodes", ("GET", "POST"), "gcs"),
    Route("api/nodes/{id}", ("GET", "PATCH", "PUT", "DELETE"), "gcs"),
    Route("api/collections/check", ("GET",), "gcs"),
    Route("api/collections/batch_delete", ("POST",), "gcs"),
    Route("api/collections/{id}/check", ("GET",), "gcs"),
    Route("api/collections/{id}/owner_string", ("PUT", "DELETE"), "gcs"),
    Route("api/collections/{id}/owner", ("PUT",), "gcs"),
    Route("api/collections/{id}/subscription_admin_verified", ("PUT",), "gcs"),
    Route("api/user_credentials", ("GET", "POST"), "gcs"),
    Route("api/user_credentials/{id}", ("GET", "PATCH", "PUT", "DELETE"), "gcs"),
    Route("api/sharing_policies", ("GET", "POST"), "gcs"),
    Route("api/sharing_policies/{id}", ("GET", "DELETE"), "gcs"),
    Route("v0.10/endpoint/{id}", ("GET",), "transfer"),
    Route("v0.10/endpoint_search", ("GET",), "transfer"),
    # {guest}: the guest collection the rules are on.
    Route("v0.10/endpoint/{id}/access_list", ("GET",), "transfer"),
    Route("v0.10/endpoint/{id}/access", ("POST",), "transfer"),
    Route("v0.10/endpoint/{guest}/access/{id}", ("GET", "PUT", "DELETE"), "transfer"),
    Route("v0.10/endpoint/{id}/role_list", ("GET",), "transfer"),
    Route("v0.10/endpoint/{guest}/role/{id}", ("GET",), "transfer"),
    Route("v0.10/operation/endpoint/{id}/ls", ("GET",), "transfer"),
    Route("v0.10/operation/endpoint/{id}/stat", ("GET",), "transfer"),
    Route("v0.10/operation/endpoint/{id}/mkdir", ("POST",), "transfer"),
    Route("v0.10/operation/endpoint/{id}/rename", ("POST",), "transfer"),
    Route("v0.10/operation/endpoint/{id}/symlink", ("POST",), "transfer"),
    Route("v0.10/bookmark_list", ("GET",), "transfer"),
    Route("v0.10/bookmark", ("POST",), "transfer"),
    Route("v0.10/bookmark/{id}", ("GET", "PUT", "DELETE"), "transfer"),
    Route("v0.10/submission_id", ("GET",), "transfer"),
    Route("v0.10/transfer", ("POST",), "transfer"),
    Route("v0.10/delete", ("POST",), "transfer"),
    Route("v0.10/task_list", ("GET",), "transfer"),
    Route("v0.10/task/{id}", ("GET", "PUT"), "transfer"),
    Route("v0.10/task/{id}/cancel", ("POST",), "transfer"),
    Route("v0.10/task/{id}/event_list", ("GET",), "transfer"),
    Route("v0.10/task/{id}/successful_transfers", ("GET",), "transfer"),
    Route("v0.10/task/{id}/skipped_errors", ("GET",), "transfer"),
    Route("v0.10/task/{id}/pause_info", ("GET",), "transfer"),
]
TASK_ROUTES = ("", "/cancel", "/event_list", "/successful_transfers", "/skipped_errors",
               "/pause_info")


@dataclass
class Known:
    server: LiveServer
    gcs_token: str
    transfer_token: str
    guest_id: str = ""
    ids: dict[str, list[str]] = field(default_factory=dict)
    bodies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    queries: dict[str, list[dict[str, str]]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Known]:
    tmp = tmp_path_factory.mktemp("isthmus-gcs-fuzz")
    with server_on_fresh_database(tmp) as server:
        yield _collect(server)


def _collect(server: LiveServer) -> Known:
    owner = _new_user(server, "fuzzowner")
    http = requests.Session()
    http.verify = server.ca_file
    http.trust_env = False
    endpoint_id = http.get(server.base_url + "api/info").json()["data"][0]["client_id"]
    scope = f"urn:globus:auth:scope:{endpoint_id}:manage_collections"
    tokens = native_login(server, owner.username, owner.password, [scope, TRANSFER_ALL])
    known = Known(server, tokens[endpoint_id]["access_token"],
                  tokens["transfer.api.globus.org"]["access_token"])
    gcs = {"Authorization": f"Bearer {known.gcs_token}"}
    gateway = {"DATA_TYPE": "storage_gateway#1.1.0", "display_name": "g", "connector_id": POSIX,
               "root": "/", "allowed_domains": ["example.org"], "users_deny": ["root"],
               "identity_mappings": [{"DATA_TYPE": "expression_identity_mapping#1.0.0",
                                      "mappings": [{"source": "{username}",
                                                    "match": "(.*)@example.org",
                                                    "output": "{0}"}]}],
               "policies": {"DATA_TYPE": "posix_storage_policies#1.0.0",
                            "groups_allow": ["a"]}}
    gateway_id = http.post(server.base_url + "api/storage_gateways", json=gateway,
                           headers=gcs).json()["data"][0]["id"]
    collection = {"DATA_TYPE": "collection#1.8.0", "collection_type": "mapped",
                  "display_name": "c", "storage_gateway_id": gateway_id,
                  "collection_base_path": "/x", "delete_protected": True, "public": True,
                  "keywords": ["k"], "policies": {"DATA_TYPE": "posix_collection_policies#1.0.0",
                                                  "sharing_groups_allow": ["g"]}}
    collection_id = http.post(server.base_url + "api/collections", json=collection,
                              headers=gcs).json()["data"][0]["id"]
    role = {"DATA_TYPE": "role#1.0.0", "collection": collection_id, "role": "activity_monitor",
            "principal": f"urn:globus:auth:identity:{uuid.uuid4()}"}
    role_id = http.post(server.base_url + "api/roles", json=role,
                        headers=gcs).json()["data"][0]["id"]
    marker = http.get(server.base_url + "api/collections", params={"page_size": 1},
                      headers=gcs).json()["marker"]
    node = {"DATA_TYPE": "node#1.3.0", "status": "active", "ip_addresses": ["192.0.2.1"],
            "incoming_port_range": [50000, 51000], "data_interface": "192.0.2.2"}
    node_id = http.post(server.base_url + "api/nodes", json=node,
                        headers=gcs).json()["data"][0]["id"]
    files = next(item for item in http.get(server.base_url + "api/collections",
                                           headers=gcs).json()["data"]
                 if item["display_name"].endswith(" files"))
    # File operations on "<host> files" need the owner's data_access consent.
    known.transfer_token = native_login(server, owner.username, owner.password, [
        f"{TRANSFER_ALL}[*https://auth.globus.org/scopes/{files['id']}/data_access]",
    ])["transfer.api.globus.org"]["access_token"]
    credential = {"DATA_TYPE": "user_credential#1.0.0", "display_name": "fuzz",
                  "storage_gateway_id": files["storage_gateway_id"],
                  "policies": {"DATA_TYPE": "posix_user_credential_policies#1.0.0"}}
    credential_id = http.post(server.base_url + "api/user_credentials", json=credential,
                              headers=gcs).json()["data"][0]["id"]
    guest = {"DATA_TYPE": "collection#1.0.0", "collection_type": "guest",
             "display_name": "fuzz share", "mapped_collection_id": files["id"],
             "user_credential_id": credential_id, "collection_base_path": "/~/fuzz"}
    known.guest_id = http.post(server.base_url + "api/collections", json=guest,
                               headers=gcs).json()["data"][0]["id"]
    policy = {"DATA_TYPE": "sharing_policy#1.0.0", "collection_id": collection_id,
              "users": ["someone"], "sharing_restrict_paths": {
                  "DATA_TYPE": "path_restrictions#1.0.0", "read": ["$HOME/a"], "none": ["/"]}}
    policy_id = http.post(server.base_url + "api/sharing_policies", json=policy,
                          headers=gcs).json()["data"][0]["id"]
    rule = {"DATA_TYPE": "access", "principal_type": "identity", "principal": owner.id,
            "path": "/a/", "permissions": "r", "expiration_date": "2999-01-01T00:00:00"}
    rule_id = http.post(f"{server.base_url}v0.10/endpoint/{known.guest_id}/access", json=rule,
                        headers={"Authorization": f"Bearer {known.transfer_token}"},
                        ).json()["access_id"]
    bookmark = {"endpoint_id": files["id"], "path": "/~/", "name": "fuzz"}
    transfer = {"Authorization": f"Bearer {known.transfer_token}"}
    bookmark_id = http.post(f"{server.base_url}v0.10/bookmark", json=bookmark,
                            headers=transfer).json()["id"]
    # The requests get past consent into the collection.
    listed = http.get(f"{server.base_url}v0.10/operation/endpoint/{files['id']}/ls",
                      headers=transfer)
    assert listed.status_code == 200, listed.text
    # A task, and the documents that made it (resubmitted: Duplicate, unless mutated).
    transfer_document = {
        "DATA_TYPE": "transfer", "source_endpoint": files["id"],
        "destination_endpoint": files["id"], "submission_id": str(uuid.uuid4()),
        "label": "fuzz", "sync_level": 3, "verify_checksum": True, "deadline": "2030-01-01",
        "filter_rules": [{"DATA_TYPE": "filter_rule", "method": "exclude", "name": "*.tmp",
                          "type": "file"}],
        "DATA": [{"DATA_TYPE": "transfer_item", "source_path": "/~/fuzz/",
                  "destination_path": "/~/fuzz-copy/", "recursive": True},
                 {"DATA_TYPE": "transfer_item", "source_path": "/~/fuzz/a",
                  "destination_path": "/~/fuzz-copy/b", "external_checksum": "0" * 32,
                  "checksum_algorithm": "MD5"}]}
    delete_document = {"DATA_TYPE": "delete", "endpoint": files["id"],
                       "submission_id": str(uuid.uuid4()), "recursive": True,
                       "ignore_missing": True, "interpret_globs": True,
                       "DATA": [{"DATA_TYPE": "delete_item", "path": "/~/fuzz-copy/*.x"}]}
    submitted = http.post(f"{server.base_url}v0.10/transfer", json=transfer_document,
                          headers=transfer)
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["task_id"]
    roles = http.get(f"{server.base_url}v0.10/endpoint/{known.guest_id}/role_list",
                     headers=transfer)
    assert roles.status_code == 200, roles.text
    role_of_guest = roles.json()["DATA"][0]["id"]
    http.close()
    collection_routes = ("check", "owner_string", "owner", "subscription_admin_verified")
    known.ids = {"api/storage_gateways/{id}": [gateway_id],
                 "api/collections/{id}": [collection_id, known.guest_id],
                 "api/roles/{id}": [role_id],
                 "api/nodes/{id}": [node_id],
                 **{f"api/collections/{{id}}/{name}": [collection_id]
                    for name in collection_routes},
                 "api/user_credentials/{id}": [credential_id],
                 "api/sharing_policies/{id}": [policy_id],
                 "v0.10/endpoint/{id}": [endpoint_id, collection_id],
                 "v0.10/endpoint/{id}/access_list": [known.guest_id, collection_id],
                 "v0.10/endpoint/{id}/access": [known.guest_id],
                 "v0.10/endpoint/{guest}/access/{id}": [rule_id],
                 "v0.10/endpoint/{id}/role_list": [endpoint_id, collection_id, known.guest_id],
                 "v0.10/endpoint/{guest}/role/{id}": [role_of_guest],
                 **{f"v0.10/operation/endpoint/{{id}}/{name}": [files["id"], known.guest_id]
                    for name in ("ls", "stat", "mkdir", "rename", "symlink")},
                 "v0.10/bookmark/{id}": [bookmark_id],
                 **{f"v0.10/task/{{id}}{suffix}": [task_id] for suffix in TASK_ROUTES}}
    identity = {"DATA_TYPE": "owner_string#1.0.0", "identity_id": owner.id}
    endpoint = {"DATA_TYPE": "endpoint#1.1.0", "display_name": "e", "public": True,
                "network_use": "normal", "keywords": ["a"], "contact_email": None,
                "gridftp_control_channel_port": 443}
    known.bodies = {"api/endpoint": [endpoint],
                    "api/storage_gateways": [gateway],
                    "api/storage_gateways/{id}": [gateway],
                    "api/collections": [collection, guest],
                    "api/collections/{id}": [collection, guest],
                    "api/roles": [role],
                    "api/endpoint/owner": [{**identity, "DATA_TYPE": "endpoint_owner#1.0.0"}],
                    "api/endpoint/owner_string": [identity],
                    "api/endpoint/subscription_id": [{
                        "DATA_TYPE": "endpoint_subscription#1.0.0",
                        "subscription_id": str(uuid.uuid4())}],
                    "api/nodes": [node],
                    "api/nodes/{id}": [node],
                    "api/collections/batch_delete": [{"DATA_TYPE": "batch#1.0.0",
                                                      "ids": [collection_id]}],
                    "api/collections/{id}/owner_string": [identity],
                    "api/collections/{id}/owner": [{**identity,
                                                    "DATA_TYPE": "collection_owner#1.0.0"}],
                    "api/collections/{id}/subscription_admin_verified": [{
                        "DATA_TYPE": "subscription_admin_verified#1.0.0",
                        "subscription_admin_verified": True}],
                    "api/user_credentials": [credential],
                    "api/user_credentials/{id}": [credential],
                    "api/sharing_policies": [policy],
                    "v0.10/endpoint/{id}/access": [rule],
                    "v0.10/endpoint/{guest}/access/{id}": [
                        {"DATA_TYPE": "access", "permissions": "rw",
                         "expiration_date": "2998-01-01"}, rule],
                    "v0.10/operation/endpoint/{id}/mkdir": [
                        {"DATA_TYPE": "mkdir", "path": "/~/fuzz/made/"}],
                    "v0.10/operation/endpoint/{id}/rename": [
                        {"DATA_TYPE": "rename", "old_path": "/~/fuzz/a", "new_path": "~/b"}],
                    "v0.10/operation/endpoint/{id}/symlink": [
                        {"DATA_TYPE": "symlink", "symlink_target": "/~/fuzz",
                         "path": "/~/fuzz/link"}],
                    "v0.10/bookmark": [bookmark],
                    "v0.10/bookmark/{id}": [{"name": "renamed", "pinned": True}],
                    "v0.10/transfer": [transfer_document],
                    "v0.10/delete": [delete_document],
                    "v0.10/task/{id}": [{"DATA_TYPE": "task", "label": "fuzzed",
                                         "deadline": "2031-01-01 00:00:00+00:00"}]}
    known.queries = {
        "api/storage_gateways": [{"include": "private_policies", "page_size": "1"}],
        "api/collections": [{"filter": "mapped_collections,created_at>=2020-01-01",
                             "page_size": "1", "marker": marker,
                             "storage_gateway_id": gateway_id}],
        "api/roles": [{"collection_id": collection_id, "include": "all_roles"}],
        "api/nodes": [{"page_size": "1", "marker": marker}],
        "api/user_credentials": [{"storage_gateway": files["storage_gateway_id"],
                                  "include": "all", "page_size": "1"}],
        "api/sharing_policies": [{"collection_id": collection_id, "username": "someone",
                                  "page_size": "1"}],
        **{f"v0.10/operation/endpoint/{{id}}/{name}": [
            {"path": "/~/", "show_hidden": "0", "orderby": "type,name DESC",
             "filter": "name:~*.txt/size:>5", "limit": "10", "offset": "1"},
            {"path": "~/fuzz/../", "filter": "last_modified:2020-01-01,"}]
           for name in ("ls", "stat")},
        "v0.10/task_list": [
            {"filter": "type:TRANSFER,DELETE/status:ACTIVE,INACTIVE/label:~fu*,!~x",
             "orderby": "request_time DESC,label", "limit": "10", "offset": "0",
             "fields": "task_id"},
            {"filter": f"task_id:{task_id}/request_time:2020-01-01 00:00:00,", "limit": "1"}],
        "v0.10/task/{id}/event_list": [{"filter": "is_error:1", "limit": "5", "offset": "1"},
                                       {"filter": ""}],
        **{f"v0.10/task/{{id}}/{name}": [{"marker": "0"}]
           for name in ("successful_transfers", "skipped_errors")},
        "v0.10/endpoint_search": [
            {"filter_fulltext": "files", "filter_scope": "all", "limit": "10", "offset": "0"},
            {"filter_scope": "my-endpoints", "filter_entity_type": "GCSv5_endpoint",
             "filter_owner_id": endpoint_id, "filter_non_functional": "1"},
        ],
    }
    return known


def _splice(value: str, nasty: str, at: int) -> str:
    at = min(at, len(value))
    return value[:at] + nasty + value[at:]


def _mutate(data: st.DataObject, value: Any, depth: int = 0) -> Any:
    """The value with a small change somewhere inside it."""
    if isinstance(value, dict) and value and depth < 4:
        key = data.draw(st.sampled_from(sorted(value)), label="key")
        return {**value, key: _mutate(data, value[key], depth + 1)}
    if isinstance(value, list) and value and depth < 4:
        index = data.draw(st.integers(0, len(value) - 1), label="index")
        return [*value[:index], _mutate(data, value[index], depth + 1), *value[index + 1:]]
    if isinstance(value, str) and data.draw(st.booleans(), label="splice"):
        return _splice(value, data.draw(st.sampled_from(NASTY), label="nasty"),
                       data.draw(st.integers(0, len(value)), label="at"))
    return data.draw(json_values, label="replacement")


def draw_request(data: st.DataObject, route: Route, known: Known) -> Drawn:
    method = data.draw(st.sampled_from(route.methods), label="method")
    if data.draw(st.integers(0, 9), label="other method?") == 0:
        method = data.draw(st.sampled_from(METHODS), label="other method")
    token = known.gcs_token if route.service == "gcs" else known.transfer_token
    headers = {"Authorization": f"Bearer {token}"}
    if data.draw(st.integers(0, 9), label="other token?") == 0:
        headers["Authorization"] = data.draw(st.sampled_from([
            "", "Bearer", f"Bearer {known.transfer_token}", f"Bearer {known.gcs_token}x",
            "Basic Zm9vOmJhcg==", "Bearer " + "a" * 600]), label="authorization")
    identifier = data.draw(st.sampled_from(known.ids.get(route.path, ["-"])), label="id")
    if data.draw(st.integers(0, 4), label="other id?") == 0:
        identifier = data.draw(st.sampled_from([str(uuid.uuid4()), identifier.upper(), ""])
                               | st.text(max_size=12), label="other id")
    path = route.path.replace("{guest}", known.guest_id).replace(
        "{id}", quote(identifier, safe=""))

    query: dict[str, str] = dict(data.draw(st.sampled_from(known.queries.get(route.path,
                                                                             [{}]))))
    for _ in range(data.draw(st.integers(0, 2), label="query changes")):
        name = data.draw(st.sampled_from(sorted(query)) if query else st.text(max_size=8),
                         label="param")
        value = query.get(name, "")
        query[name] = (_splice(value, data.draw(st.sampled_from(NASTY), label="nasty"),
                               data.draw(st.integers(0, len(value)), label="at"))
                       if data.draw(st.booleans(), label="splice param") else
                       data.draw(st.text(max_size=20), label="param value"))

    body: bytes | None = None
    if method in ("POST", "PUT", "PATCH"):
        document: Any = data.draw(st.sampled_from(known.bodies.get(route.path, [{}])),
                                  label="document")
        for _ in range(data.draw(st.integers(0, 3), label="body changes")):
            document = _mutate(data, document)
        body = json.dumps(document).encode()
        headers["Content-Type"] = "application/json"
        if data.draw(st.integers(0, 9), label="raw?") == 0:
            body = data.draw(st.binary(max_size=100) | st.sampled_from(
                [b"[" * 3000 + b"]" * 3000, b'{"DATA_TYPE": NaN}', b"", b'"\\ud800"']),
                label="raw")
        if data.draw(st.integers(0, 9), label="content type?") == 0:
            headers["Content-Type"] = data.draw(st.sampled_from(
                ["text/plain", "application/json; charset=utf-16", ""]), label="type")
    url = known.server.base_url + path + ("?" + urlencode(query) if query else "")
    return Drawn(method, url, headers, body)


def check(route: Route, drawn: Drawn, response: requests.Response) -> None:
    where = f"{drawn.method} {drawn.url[:500]} headers={drawn.headers} body={drawn.body!r:.1000}"
    # Transfer's 502s say the storage failed (mkdir over a file, ...): not a server error
    # (the SDK never retries ExternalError codes).
    storage_failed = (route.service == "transfer" and response.status_code == 502
                      and "ExternalError" in response.json()["code"])
    assert response.status_code < 500 or storage_failed, (
        f"{response.status_code} for {where}: {response.text}")
    if response.status_code == 307:  # a trailing slash: to the route without it
        assert response.headers["Location"], where
        return
    assert response.headers.get("Content-Type", "").startswith("application/json"), where
    body = response.json()
    if route.service == "gcs":
        assert re.fullmatch(r"result#1\.\d+\.0", body["DATA_TYPE"]), where
        assert body["http_response_code"] == response.status_code, where
        assert isinstance(body["code"], str) and isinstance(body["data"], list), where
        if response.status_code >= 400:
            assert isinstance(body["message"], str) and body["code"] != "success", where
    elif response.status_code >= 400:
        assert isinstance(body["code"], str) and isinstance(body["message"], str), where
        assert isinstance(body["request_id"], str), where


@pytest.mark.parametrize("route", ROUTES, ids=[route.path for route in ROUTES])
def test_no_input_makes_a_connect_or_transfer_route_answer_5xx(
    known: Known, route: Route,
) -> None:
    http = requests.Session()
    http.verify = known.server.ca_file
    http.trust_env = False

    @FUZZ
    @given(data=st.data())
    def property_(data: st.DataObject) -> None:
        drawn = draw_request(data, route, known)
        response = http.request(drawn.method, drawn.url, headers=drawn.headers,
                                data=drawn.body, allow_redirects=False, timeout=30)
        check(route, drawn, response)

    try:
        property_()
    finally:
        http.close()
