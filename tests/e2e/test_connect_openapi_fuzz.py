"""Schemathesis over the GCS Manager API's OpenAPI document: no request gets a 5xx.

The document (``/openapi.json``, `connect/openapi.py`) describes every ``/api`` route
with its query parameters and its body as the schema the Manager checks it with, so
schemathesis generates valid documents (positive mode) and broken ones (negative mode).
Each request carries the endpoint owner's manage_collections token, and path and body ids
are often swapped for real ones (a gateway, collections, a role, a node, a user credential,
a sharing policy, a custom domain), so requests get past authentication and lookups into
the rules behind them. Checks: no 5xx, and every answer is the ``result#1.0.0`` envelope
(with the GCS error code on a 4xx).

Bounded for CI: ``ISTHMUS_GCS_SCHEMATHESIS_EXAMPLES`` (default 8) examples per operation
and generation mode (the campaign itself is `tests.e2e.fuzzing`).
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import _new_user
from tests.e2e.fuzzing import (
    Fuzzed,
    bearer_credentials,
    examples,
    fuzz_every_operation,
    fuzzed_server,
    succeeded,
)
from tests.e2e.helpers import native_login
from tests.e2e.test_gcs_domains import certificate
from tests.live import LiveServer

pytestmark = pytest.mark.postgres

EXAMPLES = examples("ISTHMUS_GCS_SCHEMATHESIS_EXAMPLES", 8)
# The browser flow of oauth-create (/api/v1/...) answers with pages, not the envelope.
FUZZED = r"^/api/(?!v1/)"
# Body fields that name rows, and the path parameter whose real ids they take. Identity
# ids stay as generated: a real one would hand the endpoint's ownership away.
BODY_IDS = {"storage_gateway_id": "gateway_id", "mapped_collection_id": "collection_id",
            "collection_id": "collection_id", "collection": "collection_id",
            "user_credential_id": "credential_id", "ids": "collection_id"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    tmp = tmp_path_factory.mktemp("isthmus-gcs-schemathesis")
    with fuzzed_server(tmp) as (server, http):
        yield _provision(server, http, tmp)


def _provision(server: LiveServer, http: requests.Session, tmp: Path) -> Fuzzed:
    owner = _new_user(server, "gcsfuzzowner")  # the first user owns the endpoint
    api = server.base_url + "api/"
    endpoint_id = http.get(api + "info", timeout=30).json()["data"][0]["endpoint_id"]
    scope = f"urn:globus:auth:scope:{endpoint_id}:manage_collections"
    token = native_login(server, owner.username, owner.password, [scope])[endpoint_id][
        "access_token"]
    bearer = {"Authorization": f"Bearer {token}"}

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = http.request(method, api + path, json=body, headers=bearer, timeout=30)
        assert answer.status_code < 300, answer.text
        found: dict[str, Any] = answer.json()["data"][0]
        return found

    collection = call("GET", "collections")
    gateway_id = collection["storage_gateway_id"]
    call("PATCH", f"collections/{collection['id']}", {
        "DATA_TYPE": "collection#1.0.0", "collection_type": "mapped",
        "allow_guest_collections": True})
    credential = call("POST", "user_credentials", {
        "DATA_TYPE": "user_credential#1.0.0", "storage_gateway_id": gateway_id,
        "identity_id": owner.id, "username": getpass.getuser()})
    guest = call("POST", "collections", {
        "DATA_TYPE": "collection#1.0.0", "collection_type": "guest", "display_name": "g",
        "mapped_collection_id": collection["id"], "user_credential_id": credential["id"],
        "collection_base_path": credential["home_directory"]})
    policy = call("POST", "sharing_policies", {
        "DATA_TYPE": "sharing_policy#1.0.0", "collection_id": collection["id"],
        "sharing_restrict_paths": {"DATA_TYPE": "path_restrictions#1.0.0",
                                   "read_write": ["/"]}})
    cert, key = certificate(tmp, "fuzz", "*.fuzz.example.org")
    call("POST", "endpoint/domains", {
        "DATA_TYPE": "domain#1.0.0", "domain_name": "fuzz.example.org", "wildcard": True,
        "certificate": cert.read_text(), "private_key": key.read_text()})
    call("PUT", f"collections/{collection['id']}/domain", {
        "DATA_TYPE": "domain#1.0.0", "domain_name": "files.fuzz.example.org"})
    roles = http.get(api + "roles", headers=bearer, timeout=30).json()["data"]
    nodes = http.get(api + "nodes", headers=bearer, timeout=30).json()["data"]
    return Fuzzed(server, http, bearer_credentials(token), body_ids=BODY_IDS, ids={
        "gateway_id": [gateway_id],
        "collection_id": [collection["id"], guest["id"]],
        "role_id": [role["id"] for role in roles],
        "node_id": [node["id"] for node in nodes] or [str(endpoint_id)],
        "credential_id": [credential["id"]],
        "policy_id": [policy["id"]],
        "domain_name": ["*.fuzz.example.org", "fuzz.example.org"],
    })


def test_no_generated_manager_request_gets_a_server_error(
    fuzzed: Fuzzed, subtests: pytest.Subtests
) -> None:
    assert fuzz_every_operation(fuzzed, FUZZED, subtests, EXAMPLES) >= 50
    # The token and real ids took requests past authentication into the rules.
    found = succeeded(fuzzed.server, FUZZED, ("200", "201", "202"))
    assert len(found) >= 25, sorted(found)


def test_the_document_describes_every_manager_route_with_its_body(fuzzed: Fuzzed) -> None:
    paths = fuzzed.http.get(fuzzed.server.base_url + "openapi.json", timeout=30).json()[
        "paths"]
    manager = {path: item for path, item in paths.items() if re.match(FUZZED, path)}
    for path, item in manager.items():
        for method, operation in item.items():
            assert "4XX" in operation["responses"], (method, path)
            if method in ("post", "put", "patch"):
                assert "requestBody" in operation, (method, path)
    collection = manager["/api/collections"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert collection["required"] == ["DATA_TYPE", "display_name"]
    assert collection["properties"]["https_url"]["readOnly"] is True
    assert collection["properties"]["public"] == {"type": "boolean"}
    domain = manager["/api/endpoint/domains"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert domain["properties"]["DATA_TYPE"]["pattern"] == r"^domain#1\.[0-9]+\.0$"
    assert manager["/api/info"]["get"]["security"] == []
