"""Schemathesis against the live server's own OpenAPI document: no input makes Auth answer 5xx.

The document (``/openapi.json``) describes every ``/v2/api`` and ``/v2/oauth2``
route with its parameters and bodies; `tests.e2e.fuzzing` generates valid and invalid
requests from it. Each request carries real credentials: a manage_projects token of a
user who administers a project, a client and a scope, or for the token endpoints that
client's Basic credentials; path ids are often swapped for those real ones. Checks: no
5xx, and every answer matches the documented schema (the Globus Auth error envelope for
each 4xx).

Bounded for CI: ``ISTHMUS_SCHEMATHESIS_EXAMPLES`` (default 20) examples per
operation and generation mode.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from fastapi.routing import APIRoute

from isthmus.server import ROUTERS
from tests.conftest import _new_user
from tests.e2e.fuzzing import Fuzzed, examples, fuzz_every_operation, fuzzed_server, succeeded
from tests.e2e.helpers import MANAGE, TRANSFER_ALL, user_auth_token
from tests.live import LiveServer

pytestmark = pytest.mark.postgres

EXAMPLES = examples("ISTHMUS_SCHEMATHESIS_EXAMPLES", 20)
# Auth's API only: Groups and Connect have hypothesis fuzz tests of their own
# (test_groups_no_server_errors.py, test_connect_bad_input.py).
FUZZED = r"^/v2/(api|oauth2)/"

# Auth's API routes and their methods, as the document must list them.
AUTH_API = {
    "/v2/oauth2/token": {"post"}, "/v2/oauth2/token/introspect": {"post"},
    "/v2/oauth2/token/revoke": {"post"}, "/v2/oauth2/token/validate": {"post"},
    "/v2/oauth2/userinfo": {"get", "post"}, "/v2/oauth2/authorize": {"get"},
    "/v2/api/projects": {"get", "post"},
    "/v2/api/projects/{project_id}": {"get", "put", "post", "delete"},
    "/v2/api/policies": {"get", "post"},
    "/v2/api/policies/{policy_id}": {"get", "put", "post", "delete"},
    "/v2/api/clients": {"get", "post"},
    "/v2/api/clients/{client_id}": {"get", "put", "post", "delete"},
    "/v2/api/clients/{client_id}/credentials": {"get", "post"},
    "/v2/api/clients/{client_id}/credentials/{credential_id}": {"delete"},
    "/v2/api/clients/{client_id}/scopes": {"post"},
    "/v2/api/scopes": {"get"},
    "/v2/api/scopes/{scope_id}": {"get", "put", "post", "delete"},
    "/v2/api/identities": {"get"}, "/v2/api/identity_providers": {"get"},
    "/v2/api/identities/{identity_id}/consents": {"get"},
}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    with fuzzed_server(tmp_path_factory.mktemp("isthmus-schemathesis")) as (server, http):
        yield _provision(server, http)


def _provision(server: LiveServer, http: requests.Session) -> Fuzzed:
    user = _new_user(server, "fuzzer")
    token = user_auth_token(server, user, f"openid profile email {MANAGE}")
    bearer = {"Authorization": f"Bearer {token}"}
    base = server.base_url + "v2/api/"

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = http.post(base + path, json=body, headers=bearer, timeout=30)
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = answer.json()
        return document

    project = post("projects", {"project": {"display_name": "Fuzzed", "contact_email":
                                            "fuzz@example.org"}})["project"]
    client = post("clients", {"client": {"name": "Fuzzed", "project": project["id"],
                                         "client_type": "confidential_client"}})["client"]
    credential = post(f"clients/{client['id']}/credentials",
                      {"credential": {"name": "fuzz"}})["credential"]
    transfer = http.get(base + "scopes", params={"scope_strings": TRANSFER_ALL},
                        headers=bearer, timeout=30).json()["scopes"][0]
    scope = post(f"clients/{client['id']}/scopes", {"scope": {
        "name": "Fuzzed", "description": "Fuzzed", "scope_suffix": "fuzzed",
        "dependent_scopes": [{"scope": transfer["id"]}]}})["scope"]
    policy = post("policies", {"policy": {"project_id": project["id"],
                                          "display_name": "Fuzzed"}})["policy"]
    secret = credential["secret"]
    basic = base64.b64encode(f"{client['id']}:{secret}".encode()).decode()

    def credentials(case: schemathesis.Case | None) -> dict[str, str]:
        # The token endpoints take the client's credentials, the rest the user's token.
        if case is not None and case.path.startswith("/v2/oauth2/token"):
            return {"Authorization": f"Basic {basic}"}
        return {"Authorization": f"Bearer {token}"}

    return Fuzzed(server, http, credentials, body_ids=BODY_IDS, ids={
        "project_id": [project["id"]],
        "client_id": [client["id"]],
        "credential_id": [credential["id"]],
        "scope_id": [scope["id"], transfer["id"]],
        "policy_id": [policy["id"]],
        "identity_id": [user.id],
    })


# Body fields that name rows, and the path parameter whose real ids they take.
BODY_IDS = {"project": "project_id", "project_id": "project_id", "scope": "scope_id"}


def test_no_generated_request_gets_a_server_error(
    fuzzed: Fuzzed, subtests: pytest.Subtests
) -> None:
    fuzzed_operations = fuzz_every_operation(fuzzed, FUZZED, subtests, EXAMPLES)
    # Every Auth API route and method (the next test checks the list is complete).
    assert fuzzed_operations == sum(len(methods) for methods in AUTH_API.values())
    # The credentials and real ids took requests past authentication into the rules.
    found = succeeded(fuzzed.server, FUZZED, with_query=True)
    assert len(found) >= 20, sorted(found)


def test_the_document_lists_every_route_and_auth_routes_with_their_inputs(
    fuzzed: Fuzzed
) -> None:
    document = fuzzed.http.get(fuzzed.server.base_url + "openapi.json", timeout=30).json()
    paths = document["paths"]
    # Every API route of every service, with each of its methods. A collection's files
    # (`/data/...`, HTTP and WebDAV on arbitrary paths) are data, not an API: left out.
    served: dict[str, set[str]] = {}
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute), route
            if route.path.startswith("/data/"):
                assert not route.include_in_schema, route
                continue
            assert route.include_in_schema, route
            served.setdefault(route.path, set()).update(m.lower() for m in route.methods or ())
    assert {path: set(item) for path, item in paths.items()} == served
    # Auth's API is exactly the known list (so the fuzz test covers all of it), and
    # each operation is described (`auth/openapi.py`): its Globus error answers at least.
    listed = {path: set(item) for path, item in paths.items() if re.match(FUZZED, path)}
    assert listed == AUTH_API
    for path in listed:
        for method, operation in paths[path].items():
            assert "4XX" in operation["responses"], (method, path)
    operations = [op for item in paths.values() for op in item.values()]
    assert len({op["operationId"] for op in operations}) == len(operations)
    token_form = paths["/v2/oauth2/token"]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"]["schema"]
    assert token_form["required"] == ["grant_type"]
    assert "client_credentials" in token_form["properties"]["grant_type"]["enum"]
    project_body = paths["/v2/api/projects"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert project_body["required"] == ["project"]
    identity_query = {p["name"] for p in paths["/v2/api/identities"]["get"]["parameters"]}
    assert identity_query == {"ids", "usernames", "provision"}
    # Bad input is a 400 in the Globus format here, never FastAPI's 422.
    assert not any("422" in op["responses"] for op in operations)
    assert "4XX" in paths["/v2/api/scopes/{scope_id}"]["delete"]["responses"]
