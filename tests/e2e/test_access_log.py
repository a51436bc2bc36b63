"""`isthmus serve --access-log` / ISTHMUS_ACCESS_LOG: one line per request, nothing secret."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import globus_sdk
import pytest
import requests

from tests.e2e.helpers import pointed_at
from tests.live import LiveServer, start_server

LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 127\.0\.0\.1 (?P<method>[A-Z]+) "
    r"(?P<path>\S+) (?P<status>\d{3}) (?P<ms>\d+\.\d)$"
)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """Two worker processes sharing one log, named by the environment variable."""
    root = tmp_path_factory.mktemp("isthmus-access-log")
    log = root / "logs" / "access.log"
    server = start_server(root / "data", "--workers", "2", ISTHMUS_ACCESS_LOG=str(log))
    try:
        yield server, log
    finally:
        server.stop()


def test_every_request_is_one_line_without_query_or_secrets(
    two_workers: tuple[LiveServer, Path]
) -> None:
    server, log = two_workers
    http = requests.Session()
    http.verify = server.ca_file
    http.trust_env = False
    created = server.create_client("logged", "client_identity")
    secret = created["secret"]
    with pointed_at(server):
        app = globus_sdk.ConfidentialAppAuthClient(created["id"], secret)
        token = app.oauth2_client_credentials_tokens(requested_scopes="openid")
    access_token = token.by_resource_server["auth.globus.org"]["access_token"]
    before = log.read_text().splitlines() if log.exists() else []
    for _ in range(20):
        assert http.get(server.base_url + "v2/api/identities",
                        params={"usernames": "secret-user@isthmus.local"},
                        headers={"Authorization": f"Bearer {access_token}"}).status_code == 200
    assert http.get(server.base_url + "v2/web/auth-code?code=secret-code").status_code == 200
    # A path that tries to start a line of its own.
    assert http.get(server.base_url + "v2/api/x%0Aforged%20200").status_code == 404
    assert http.post(server.base_url + "v2/oauth2/token", data={"grant_type": "password"},
                     auth=(created["id"], secret)).status_code == 400
    # Every service on the port is logged the same way: Groups, Transfer, Connect.
    others = [
        ("GET", "/groups/v2/groups/my_groups", {"statuses": "secret-status"}),
        ("GET", "/v0.10/endpoint_search", {"filter_fulltext": "secret-search"}),
        ("GET", "/api/info", {"include": "secret-include"}),
    ]
    statuses = [str(http.request(method, server.base_url + path.lstrip("/"), params=params,
                                 headers={"Authorization": f"Bearer {access_token}"}
                                 ).status_code)
                for method, path, params in others]
    assert "404" not in statuses and not any(status.startswith("5") for status in statuses), \
        statuses

    lines = log.read_text().splitlines()[len(before):]
    assert len(lines) == 26, lines
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    summary = [(m["method"], m["path"], m["status"]) for m in parsed if m]
    assert summary == [("GET", "/v2/api/identities", "200")] * 20 + [
        ("GET", "/v2/web/auth-code", "200"),
        ("GET", "/v2/api/x%0Aforged%20200", "404"),
        ("POST", "/v2/oauth2/token", "400"),
    ] + [(method, path, status) for (method, path, _), status in zip(others, statuses,
                                                                     strict=True)]
    text = log.read_text()
    assert "?" not in text
    for secret_value in ("secret-user", "secret-code", "secret-status", "secret-search",
                         "secret-include", secret, access_token):
        assert secret_value not in text
