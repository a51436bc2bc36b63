"""The `isthmus` administrative commands, against a running server and a stopped one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import globus_sdk
import pytest
import requests

from tests.browser import Browser
from tests.e2e.helpers import TUTORIAL_CLIENT_ID, pointed_at
from tests.live import ISTHMUS, LiveServer, free_port, start_server


def run(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([ISTHMUS, *args, "--data-dir", str(data_dir)], input=stdin,
                          capture_output=True, text=True, timeout=60)


def logs_in(server: LiveServer, username: str, password: str) -> bool:
    with pointed_at(server):
        client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
        client.oauth2_start_flow(requested_scopes="openid")
        url = client.oauth2_get_authorize_url()
    try:
        location = Browser(server.ca_file).authorize(url, username, password)
    except AssertionError:
        return False
    return "code=" in location


def test_users_on_a_stopped_deployment(tmp_path: Path) -> None:
    data_dir = tmp_path / "offline"
    created = run(data_dir, "user", "create", "Bob", "--password-stdin", "--json",
                  "--email", "bob@example.org", "--organization", "Lab", stdin="secret\n")
    assert created.returncode == 0, created.stderr
    document = json.loads(created.stdout)
    assert document["username"] == "bob@isthmus.local"
    assert document["organization"] == "Lab"

    again = run(data_dir, "user", "create", "bob", "--password-stdin", stdin="other\n")
    assert again.returncode != 0
    assert "already exists" in again.stderr

    listed = json.loads(run(data_dir, "user", "list", "--json").stdout)
    assert listed["domain"] == "isthmus.local"
    assert [user["username"] for user in listed["users"]] == ["bob@isthmus.local"]
    assert "Local identity provider domain: isthmus.local" in run(data_dir, "user", "list").stdout

    missing = run(data_dir, "user", "disable", "nobody")
    assert missing.returncode != 0
    assert "No local user" in missing.stderr


def test_password_change_and_disable_take_effect_on_a_running_server(
    server: LiveServer,
) -> None:
    server.create_user("dana", "first-password")
    assert logs_in(server, "dana", "first-password")
    server.run("user", "set-password", "dana", "--password-stdin", stdin="second-password\n")
    assert not logs_in(server, "dana", "first-password")
    assert logs_in(server, "dana", "second-password")
    server.run("user", "disable", "dana")
    assert not logs_in(server, "dana", "second-password")


def test_client_types_secrets_and_deletion(server: LiveServer) -> None:
    public = server.create_client("native", "public_installed_client")
    assert public["secret"] is None
    robot = server.create_client("robot", "client_identity")
    assert robot["secret"] and len(robot["secret"]) >= 43
    listed = server.run_json("client", "list")["clients"]
    assert {public["id"], robot["id"]} <= {client["id"] for client in listed}
    # The secret is shown once and stored only as a digest.
    assert robot["secret"] not in server.run("client", "list", "--json")

    with pointed_at(server):
        confidential = globus_sdk.ConfidentialAppAuthClient(robot["id"], robot["secret"])
        token = confidential.oauth2_client_credentials_tokens(requested_scopes="openid")
        access = token.by_resource_server["auth.globus.org"]["access_token"]
        auth = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(access))
        assert auth.userinfo()["sub"] == robot["id"]
        server.run("client", "delete", robot["id"])
        with pytest.raises(globus_sdk.AuthAPIError) as revoked:
            auth.userinfo()
        assert revoked.value.http_status == 401
        with pytest.raises(globus_sdk.AuthAPIError) as gone:
            confidential.oauth2_client_credentials_tokens(requested_scopes="openid")
        assert gone.value.http_status == 401


def test_scope_create_with_dependencies(server: LiveServer) -> None:
    service = server.create_client("service", "resource_server")
    scope = server.run_json(
        "scope", "create", service["id"], "do_things", "--name", "Do things",
        "--description", "It does things",
        "--dependent-scope", "urn:globus:auth:scope:transfer.api.globus.org:all",
    )
    assert scope["scope_string"] == f"https://auth.globus.org/scopes/{service['id']}/do_things"
    assert scope["dependent_scopes"] == ["urn:globus:auth:scope:transfer.api.globus.org:all"]
    bad = subprocess.run(
        [ISTHMUS, "scope", "create", service["id"], "Bad Suffix", "--name", "x",
         "--description", "y", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode != 0
    assert "suffix" in bad.stderr


def test_env_points_the_sdk_at_the_server(server: LiveServer) -> None:
    script = (
        'eval "$1"; "$2" -c "import globus_sdk, os; '
        "c = globus_sdk.NativeAppAuthClient('" + TUTORIAL_CLIENT_ID + "'); "
        "print(c.base_url); print(c.get_openid_configuration()['issuer']); "
        "print(globus_sdk.TransferClient().base_url)\""
    )
    exports = server.run("env")
    assert "export GLOBUS_SDK_VERIFY_SSL=" + server.ca_file in exports
    env = {key: value for key, value in server.process_env().items() if key != "NO_PROXY"}
    result = subprocess.run(["bash", "-c", script, "bash", exports, sys.executable],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    base_url, issuer, transfer_url = result.stdout.split()
    assert base_url == server.base_url
    assert issuer == server.base_url.rstrip("/")
    # TransferClient requests <base>/v0.10/..., where Isthmus serves Transfer.
    assert transfer_url == server.base_url


def test_plain_http_behind_a_proxy_advertises_the_public_url(tmp_path: Path) -> None:
    live = start_server(tmp_path / "proxied", "--http", "--public-url",
                        "https://isthmus.example.edu/")
    try:
        config = requests.get(live.base_url + ".well-known/openid-configuration",
                              timeout=10).json()
        assert config["issuer"] == "https://isthmus.example.edu"
        assert config["jwks_uri"] == "https://isthmus.example.edu/jwk.json"
        assert config["token_endpoint"] == "https://isthmus.example.edu/v2/oauth2/token"
        printed = live.run("env")
        assert "export GLOBUS_SDK_SERVICE_URL_AUTH=https://isthmus.example.edu/" in printed
        assert "export GLOBUS_SDK_SERVICE_URL_GROUPS=https://isthmus.example.edu/groups/" in printed
        assert not (live.data_dir / "tls").exists()
        # The Connect endpoint is advertised at the public address too.
        info = requests.get(live.base_url + "api/info", timeout=10).json()["data"][0]
        assert info["domain_name"] == "isthmus.example.edu"
        assert "GCS Manager API at https://isthmus.example.edu/api/" in live.log()
    finally:
        live.stop()


def test_restart_keeps_keys_users_and_certificate(tmp_path: Path) -> None:
    live = start_server(tmp_path / "restart")
    try:
        live.create_user("erin", "pw")
        jwk_before = requests.get(live.base_url + "jwk.json", verify=live.ca_file,
                                  timeout=10).json()
        ca_before = Path(live.ca_file).read_bytes()
        endpoint_before = requests.get(live.base_url + "api/info", verify=live.ca_file,
                                       timeout=10).json()["data"][0]["client_id"]
        live.stop()
        live.start()
        # The same endpoint, not a second one.
        assert requests.get(live.base_url + "api/info", verify=live.ca_file,
                            timeout=10).json()["data"][0]["client_id"] == endpoint_before
        jwk_after = requests.get(live.base_url + "jwk.json", verify=live.ca_file,
                                 timeout=10).json()
        assert jwk_after == jwk_before
        assert Path(live.ca_file).read_bytes() == ca_before
        assert logs_in(live, "erin", "pw")
    finally:
        live.stop()


def test_real_certificates_are_served(tmp_path: Path, server: LiveServer) -> None:
    # The session server's own certificate stands in for one a campus CA issued.
    tls = server.data_dir / "tls"
    live = LiveServer(tmp_path / "realcert", free_port(), trusted_ca=server.ca_file,
                      serve_args=("--tls-cert", str(tls / "server.pem"),
                                  "--tls-key", str(tls / "server-key.pem")))
    live.start()
    try:
        assert not (live.data_dir / "tls").exists()
        answer = requests.get(live.base_url + "jwk.json", verify=server.ca_file, timeout=10)
        assert answer.json()["keys"][0]["kty"] == "RSA"
    finally:
        live.stop()
