"""Schemathesis against the live server's own OpenAPI document: no input makes Auth answer 5xx.

The document (``/openapi.json``) describes every ``/v2/api`` and ``/v2/oauth2``
route with its parameters and bodies, so schemathesis generates both valid and
invalid requests from it (its positive and negative modes). Each request
carries real credentials: a manage_projects token of a user who administers a
project, a client and a scope, or for the token endpoints that client's Basic
credentials; and path ids are often swapped for those real ones, so requests
get past authentication and lookups into the rules behind them. Checks: no 5xx,
and every answer matches the documented schema (the Globus Auth error envelope
for each 4xx).

Bounded for CI: ``ISTHMUS_SCHEMATHESIS_EXAMPLES`` (default 20) examples per
operation and generation mode, derandomized, no shrinking. With
``ISTHMUS_TEST_DATABASE=postgresql`` the server runs on PostgreSQL (``make
test`` does that for `postgres`-marked tests).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from isthmus.server import ROUTERS
from tests.conftest import _new_user
from tests.e2e.helpers import MANAGE, TRANSFER_ALL, user_auth_token
from tests.live import LiveServer, server_on_fresh_database

pytestmark = pytest.mark.postgres

EXAMPLES = int(os.environ.get("ISTHMUS_SCHEMATHESIS_EXAMPLES") or 20)
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"isthmus-hypothesis-{os.getuid()}")
# Auth's API only: Groups and Connect have hypothesis fuzz tests of their own
# (test_groups_no_server_errors.py, test_connect_bad_input.py).
FUZZED = r"^/v2/(api|oauth2)/"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

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


@dataclass(frozen=True)
class Fuzzed:
    """The server under test and the real credentials and ids requests start from."""

    server: LiveServer
    http: requests.Session
    bearer: str
    basic: str
    # Per path parameter name, ids of real rows the user administers.
    ids: dict[str, list[str]]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    tmp = tmp_path_factory.mktemp("isthmus-schemathesis")
    with server_on_fresh_database(tmp, "--access-log", str(tmp / "access.log")) as server:
        http = requests.Session()
        http.verify = server.ca_file
        http.trust_env = False
        try:
            yield _provision(server, http)
        finally:
            http.close()


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
    return Fuzzed(server, http, bearer=token, basic=basic, ids={
        "project_id": [project["id"]],
        "client_id": [client["id"]],
        "credential_id": [credential["id"]],
        "scope_id": [scope["id"], transfer["id"]],
        "policy_id": [policy["id"]],
        "identity_id": [user.id],
    })


def _swap(value: Any, real: list[str]) -> Any:
    """Two generated values in three become a real id; the choice hangs on the value
    itself, so a case replays the same."""
    pick = int(hashlib.sha256(repr(value).encode()).hexdigest(), 16)
    return real[pick % len(real)] if pick % 3 else value


def _with_real_ids(document: Any, fuzzed: Fuzzed) -> Any:
    if isinstance(document, list):
        return [_with_real_ids(item, fuzzed) for item in document]
    if not isinstance(document, dict):
        return document
    swapped = {}
    for key, value in document.items():
        real = fuzzed.ids.get(BODY_IDS.get(key, ""))
        swapped[key] = (_swap(value, real) if real and isinstance(value, str)
                        else _with_real_ids(value, fuzzed))
    return swapped


# Body fields that name rows, and the path parameter whose real ids they take.
BODY_IDS = {"project": "project_id", "project_id": "project_id", "scope": "scope_id"}


def _real_ids(case: schemathesis.Case, fuzzed: Fuzzed) -> None:
    """Most generated ids name nothing: put real ones in the path and body, often."""
    for name, value in list((case.path_parameters or {}).items()):
        real = fuzzed.ids.get(name)
        if real:
            case.path_parameters[name] = _swap(value, real)
    if isinstance(case.body, dict | list):
        case.body = _with_real_ids(case.body, fuzzed)


def _credentials(case: schemathesis.Case, fuzzed: Fuzzed) -> dict[str, str]:
    if case.path.startswith("/v2/oauth2/token"):
        return {"Authorization": f"Basic {fuzzed.basic}"}
    return {"Authorization": f"Bearer {fuzzed.bearer}"}


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a live server over TLS: latency is not what is under test
    database=None,  # keep no example database in the repository
    # The same requests on every run, so CI time stays bounded and a failure repeats;
    # ISTHMUS_SCHEMATHESIS_RANDOM=1 explores new ones.
    derandomize=not os.environ.get("ISTHMUS_SCHEMATHESIS_RANDOM"),
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_no_generated_request_gets_a_server_error(
    fuzzed: Fuzzed, subtests: pytest.Subtests
) -> None:
    schema = schemathesis.openapi.from_url(
        fuzzed.server.base_url + "openapi.json", verify=fuzzed.server.ca_file, timeout=30,
    ).include(path_regex=FUZZED)
    base_url = fuzzed.server.base_url.rstrip("/")
    # Deletions last: the rows they remove are what the other operations work on.
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda operation: operation.method.upper() == "DELETE")
    # Every Auth API route and method (the next test checks the list is complete).
    assert len(operations) == sum(len(methods) for methods in AUTH_API.values())
    for operation in operations:
        for mode in GenerationMode:
            strategy = operation.as_strategy(generation_mode=mode)

            @FUZZ
            @given(case=strategy)
            def requests_(case: schemathesis.Case) -> None:
                _real_ids(case, fuzzed)
                case.call_and_validate(
                    base_url=base_url, session=fuzzed.http, headers=_credentials(case, fuzzed),
                    checks=[not_a_server_error, response_schema_conformance], timeout=30,
                    verify=fuzzed.server.ca_file,
                )

            with subtests.test(msg=f"{operation.label} ({mode.value})"):
                requests_()

    # The credentials and real ids took requests past authentication into the rules.
    answered = [line.split() for line in fuzzed.server.access_log_lines()]
    succeeded = {(fields[2], UUID.sub("{id}", fields[3])) for fields in answered
                 if fields[4] == "200" and re.match(FUZZED, fields[3])}
    assert len(succeeded) >= 20, sorted(succeeded)


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
