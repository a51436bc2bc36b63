"""The endpoint's own OpenID Connect server: a node's Unix accounts sign in to Isthmus.

A node served as https://localhost:PORT runs `globus-connect-server oidc create`, which
sets up its OIDC server and registers it with Auth for the domain ``localhost``. The test
makes a local account (useradd + chpasswd); a person then logs in at Auth's login page
through "Sign in with <name>", typing that account's password into the node's form, and
becomes the identity ``<account>@localhost``. A POSIX gateway for that domain maps the
identity to the account by the default mapping, and a file written over HTTPS lands owned
by its uid. Wrong passwords, a tampered state, a reused code and an unknown client are
refused with clear errors.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import globus_sdk
import pytest
import requests

from isthmus.auth import upstream
from isthmus.core.config import Settings
from isthmus.core.db import reading
from isthmus.deployment import open_deployment
from tests.browser import Sites, parse_form, query_of
from tests.database import fresh_database_url, wants_postgres
from tests.e2e.data_helpers import collection_scopes
from tests.e2e.helpers import TUTORIAL_CLIENT_ID, client_token_auth, pointed_at
from tests.e2e.test_gcs_cli import (
    Deployment,
    _deployment,
    created_id,
    gcs,
    login_as,
    ok,
)

DOMAIN = "localhost"
NAME = "Campus accounts"
BUTTON = f"Sign in with {NAME}"


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    uid: int

    @property
    def username(self) -> str:
        return f"{self.name}@{DOMAIN}"


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    """A local account with a password and a home directory, removed afterwards."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("making a local account needs root and useradd")
    name = f"isth{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    subprocess.run(["useradd", "--create-home", "--shell", "/usr/sbin/nologin",
                    "--comment", "Ada Campus", name], check=True, capture_output=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True,
                       capture_output=True)
        yield Account(name, password, pwd.getpwnam(name).pw_uid)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], check=False, capture_output=True)
        subprocess.run(["userdel", "-r", name], check=False, capture_output=True)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A server, and an endpoint served by a node at https://localhost:PORT, its admin
    logged in on the node."""
    root = tmp_path_factory.mktemp("gcs-oidc")
    with fresh_database_url(root) as database_url:
        shared = {"ISTHMUS_DATABASE_URL": database_url} if wants_postgres() else {}
        for deployment in _deployment(root, shared, host=DOMAIN):
            login_as(deployment, deployment.admin, deployment.env, "login",
                     "--no-local-server")
            yield deployment


@pytest.fixture(scope="module")
def oidc(node: Deployment) -> dict[str, Any]:
    """`oidc create`: the node's OIDC server, registered with Auth."""
    printed = ok(gcs(node.env, "oidc", "create", "--display-name", NAME, cwd=node.workdir))
    assert f"Created the OIDC server {node.node_url}/oidc" in printed
    assert f"sign in as <account>@{DOMAIN}" in printed
    shown: dict[str, Any] = json.loads(ok(gcs(node.env, "oidc", "show", "-F", "json")))
    return shown


def _get(url: str, **options: Any) -> requests.Response:
    return requests.get(url, allow_redirects=False, **options)


def _post(url: str, **options: Any) -> requests.Response:
    return requests.post(url, allow_redirects=False, **options)


def sites_of(node: Deployment) -> Sites:
    return Sites((node.server.base_url, node.server.ca_file),
                 (node.node_url, node.server.ca_file))


def native_authorize_url(node: Deployment, scopes: list[str]) -> tuple[
        globus_sdk.NativeAppAuthClient, str]:
    with pointed_at(node.server):
        client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
        client.oauth2_start_flow(requested_scopes=scopes)
        return client, str(client.oauth2_get_authorize_url())


def to_node_form(node: Deployment, sites: Sites, url: str) -> str:
    """From Auth's login page, "Sign in with ..." to the node's authorize URL."""
    page = sites.open(url)
    assert page.status_code == 200, page.text[:2000]
    assert BUTTON in page.text
    pressed = sites.press(url, page.text, BUTTON)
    assert pressed.status_code == 303, pressed.text[:2000]
    location = str(pressed.headers["Location"])
    assert location.startswith(f"{node.node_url}/oidc/authorize?"), location
    return location


def log_in_at_node(sites: Sites, node_url: str, name: str, password: str) -> requests.Response:
    form_page = sites.open(node_url)
    assert form_page.status_code == 200, form_page.text[:2000]
    form = parse_form(form_page.text)
    assert {"username", "password", "csrf_token"} <= set(form.fields)
    return sites.submit(node_url, form, username=name, password=password)


def finish_at_auth(node: Deployment, sites: Sites, callback: str) -> str:
    """The callback at Auth, then its consent: the redirect to the native app's code page."""
    url, response = callback, sites.open(callback)
    for _ in range(6):
        if response.status_code in (302, 303):
            location = urljoin(url, response.headers["Location"])
            if "/v2/web/auth-code" in location:
                return location
            url, response = location, sites.open(location)
            continue
        assert response.status_code == 200, response.text[:2000]
        form = parse_form(response.text)
        assert "decision" in form.buttons.values(), response.text[:2000]
        response = sites.submit(url, form, decision="allow")
    raise AssertionError("Auth never sent the browser to the application")


def sign_in(node: Deployment, account: Account, scopes: list[str]) -> dict[str, dict[str, str]]:
    """A native app's login in which the person signs in through the node's OIDC server."""
    client, url = native_authorize_url(node, scopes)
    sites = sites_of(node)
    response = log_in_at_node(sites, to_node_form(node, sites, url), account.name,
                              account.password)
    assert response.status_code == 303, response.text[:2000]
    callback = str(response.headers["Location"])
    assert callback.startswith(f"{node.server.base_url}v2/web/oidc/callback?"), callback
    location = finish_at_auth(node, sites, callback)
    code = sites.browser(location).code_from_page(location)
    with pointed_at(node.server):
        return dict(client.oauth2_exchange_code_for_tokens(code).by_resource_server)


@pytest.mark.postgres
def test_a_local_account_signs_in_and_maps_to_itself(
    node: Deployment, oidc: dict[str, Any], account: Account,
) -> None:
    assert oidc["domain"] == DOMAIN and oidc["registered"] is True
    assert oidc["issuer"] == f"{node.node_url}/oidc"
    assert oidc["redirect_uris"] == [f"{node.server.base_url}v2/web/oidc/callback"]
    assert "client_secret" not in oidc
    # A POSIX gateway for the domain maps <account>@localhost to <account> by default.
    env, cwd = node.env, node.workdir
    gateway_id = created_id("Storage Gateway", ok(gcs(
        env, "storage-gateway", "create", "posix", "Campus", "--domain", DOMAIN, cwd=cwd)))
    home = Path(pwd.getpwnam(account.name).pw_dir)
    collection_id = created_id("Collection", ok(gcs(
        env, "collection", "create", gateway_id, str(home), "Campus home", cwd=cwd)))

    tokens = sign_in(node, account, collection_scopes(collection_id))

    # Auth knows the person as <account>@localhost, from the node's identity provider.
    auth = client_token_auth(node.server)
    with pointed_at(node.server):
        (identity,) = auth.get_identities(usernames=account.username)["identities"]
        (provider,) = auth.get_identity_providers(domains=[DOMAIN])["identity_providers"]
    assert identity["username"] == account.username
    assert identity["name"] == "Ada Campus"  # the account's GECOS name
    assert identity["identity_provider"] == provider["id"] == oidc["identity_provider_id"]
    assert provider["name"] == NAME

    # Data access through the mapped collection acts as the Unix account.
    shown = json.loads(ok(gcs(env, "collection", "show", collection_id, "-F", "json")))
    token = tokens[collection_id]["access_token"]
    put = requests.put(f"{shown['https_url']}/hello.txt", data=b"hello from PAM",
                    headers={"Authorization": f"Bearer {token}"}, verify=node.server.ca_file,
                    timeout=30)
    assert put.status_code in (200, 201, 204), put.text
    written = home / "hello.txt"
    assert written.read_bytes() == b"hello from PAM"
    assert written.stat().st_uid == account.uid


def test_wrong_password_is_refused_and_repeated_failures_are_throttled(
    node: Deployment, oidc: dict[str, Any], account: Account,
) -> None:
    _, url = native_authorize_url(node, ["openid"])
    sites = sites_of(node)
    node_url = to_node_form(node, sites, url)
    refused = log_in_at_node(sites, node_url, account.name, "not-the-password")
    assert refused.status_code == 401
    assert "Wrong username or password." in refused.text
    assert "oidc/callback" not in refused.headers.get("Location", "")
    unknown = log_in_at_node(sites, node_url, "no-such-account-here", "whatever")
    assert unknown.status_code == 401 and "Wrong username or password." in unknown.text
    odd = log_in_at_node(sites, node_url, "a\x00<b>" * 50, "pass\x00word")
    assert odd.status_code == 401 and "<b>" not in odd.text
    root = log_in_at_node(sites, node_url, "root", "whatever")
    assert root.status_code == 403 and "superuser" in root.text
    # Five failures for one name lock it for a while, even with the right password.
    victim = "nobody"
    for _ in range(5):
        assert log_in_at_node(sites, node_url, victim, "guess").status_code == 401
    locked = log_in_at_node(sites, node_url, victim, "guess")
    assert locked.status_code == 429 and "Too many failed logins" in locked.text


def test_the_login_form_needs_its_csrf_cookie_and_an_untampered_request(
    node: Deployment, oidc: dict[str, Any], account: Account,
) -> None:
    _, url = native_authorize_url(node, ["openid"])
    sites = sites_of(node)
    node_url = to_node_form(node, sites, url)
    form = parse_form(sites.open(node_url).text)
    # Another site's page posting the form: no cookie of ours comes with it.
    forged = _post(urljoin(node_url, form.action), verify=node.server.ca_file,
                        data={**form.fields, "username": account.name,
                              "password": account.password}, timeout=30)
    assert forged.status_code == 403 and "start the sign-in again" in forged.text
    # A redirect URI changed in the form is refused without redirecting anywhere.
    tampered = sites.submit(node_url, form, username=account.name, password=account.password,
                            redirect_uri="https://evil.example.org/callback")
    assert tampered.status_code == 400 and "Location" not in tampered.headers
    assert "redirect_uri" in tampered.text


def test_tampered_state_at_auth_is_refused(
    node: Deployment, oidc: dict[str, Any], account: Account,
) -> None:
    _, url = native_authorize_url(node, ["openid"])
    sites = sites_of(node)
    response = log_in_at_node(sites, to_node_form(node, sites, url), account.name,
                              account.password)
    callback = str(response.headers["Location"])
    parts = urlsplit(callback)
    params = {key: values[0] for key, values in parse_qs(parts.query).items()}
    params["state"] = params["state"][:-4] + "AAAA"
    tampered = sites.open(urlunsplit(parts._replace(query=urlencode(params))))
    assert tampered.status_code == 400, tampered.text[:2000]
    assert "start it again" in tampered.text


def test_unknown_client_and_bad_authorization_requests(
    node: Deployment, oidc: dict[str, Any],
) -> None:
    authorize = f"{node.node_url}/oidc/authorize"
    verify = node.server.ca_file
    good = {"client_id": str(oidc["client_id"]), "redirect_uri": oidc["redirect_uris"][0],
            "response_type": "code", "scope": "openid", "state": "s1",
            "code_challenge": "x" * 43, "code_challenge_method": "S256"}
    unknown = _get(authorize, params={**good, "client_id": str(uuid.uuid4())},
                        verify=verify, timeout=30)
    assert unknown.status_code == 400 and "Unknown client" in unknown.text
    elsewhere = _get(authorize, params={**good, "redirect_uri": "https://evil.example/"},
                          verify=verify, timeout=30)
    assert elsewhere.status_code == 400 and "Location" not in elsewhere.headers
    # With the client and redirect URI known, errors go back to the client.
    no_pkce = _get(authorize, params={**good, "code_challenge": ""}, verify=verify,
                        timeout=30)
    assert no_pkce.status_code == 303
    back = query_of(no_pkce.headers["Location"])
    assert back["error"] == "invalid_request" and back["state"] == "s1"
    assert "PKCE" in back["error_description"]
    # Odd input is a 4xx, never a 5xx.
    odd = [_get(authorize, params={**good, "state": "a\x00b"}, verify=verify, timeout=30),
           _get(f"{authorize}?client_id=a&client_id=b", verify=verify, timeout=30),
           _post(f"{node.node_url}/oidc/token", data="x" * 20000, verify=verify, timeout=30,
                 headers={"Content-Type": "application/x-www-form-urlencoded"}),
           _post(f"{node.node_url}/oidc/token", json={"grant_type": "authorization_code"},
                 verify=verify, timeout=30),
           _post(f"{node.node_url}/oidc/token", data={"code": "\x00"}, verify=verify,
                 timeout=30, headers={"Authorization": "Basic !!!"}),
           _post(authorize, data={"csrf_token": "x"}, verify=verify, timeout=30)]
    assert [400 <= response.status_code < 500 for response in odd] == [True] * len(odd), [
        (response.status_code, response.text[:200]) for response in odd]
    # Discovery names what Auth needs.
    document = _get(f"{node.node_url}/oidc/.well-known/openid-configuration",
                         verify=verify, timeout=30).json()
    assert document["issuer"] == oidc["issuer"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    keys = _get(document["jwks_uri"], verify=verify, timeout=30).json()["keys"]
    assert [key["kty"] for key in keys] == ["RSA"] and "d" not in keys[0]


def _auth_side_secret(node: Deployment, provider_id: str) -> str:
    """The client secret Auth keeps (sealed) for the node's provider, as Auth reads it."""
    auth = open_deployment(Settings.load(node.server.data_dir,
                                         database_url=node.env.get("ISTHMUS_DATABASE_URL")))
    with reading(auth.sessions) as session:
        return upstream.configured(session, auth.secret_box,
                                   uuid.UUID(provider_id)).party.client_secret


def test_codes_are_single_use_and_need_the_client_secret_and_verifier(
    node: Deployment, oidc: dict[str, Any], account: Account,
) -> None:
    _, url = native_authorize_url(node, ["openid"])
    sites = sites_of(node)
    node_url = to_node_form(node, sites, url)
    response = log_in_at_node(sites, node_url, account.name, account.password)
    assert response.status_code == 303
    code = query_of(str(response.headers["Location"]))["code"]
    token_url = f"{node.node_url}/oidc/token"
    client_id = str(oidc["client_id"])
    secret = _auth_side_secret(node, str(oidc["identity_provider_id"]))
    redirect_uri = str(oidc["redirect_uris"][0])
    verify = node.server.ca_file

    def redeem(credentials: tuple[str, str], **fields: str) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri, **fields}
        return _post(token_url, data=data, auth=credentials, verify=verify, timeout=30)

    wrong_secret = redeem((client_id, "not-the-secret"), code_verifier="v" * 43)
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"
    # Auth's verifier is sealed in its sign-in state: a guessed one fails, and spends the code.
    wrong_verifier = redeem((client_id, secret), code_verifier="v" * 43)
    assert wrong_verifier.status_code == 400
    assert wrong_verifier.json()["error"] == "invalid_grant"
    reused = redeem((client_id, secret), code_verifier="v" * 43)
    assert reused.status_code == 400 and reused.json() == {
        "error": "invalid_grant",
        "error_description": "The code is unknown, expired or already used"}
    grant = _post(token_url, data={"grant_type": "password"}, auth=(client_id, secret),
                       verify=verify, timeout=30)
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    userinfo = _get(f"{node.node_url}/oidc/userinfo", verify=verify, timeout=30,
                         headers={"Authorization": "Bearer not-a-token"})
    assert userinfo.status_code == 401 and userinfo.json()["error"] == "invalid_token"


def test_update_register_and_delete(
    node: Deployment, oidc: dict[str, Any], account: Account,
) -> None:
    """Run last: it renames, re-registers and finally deletes the node's OIDC server."""
    env = node.env
    auth = client_token_auth(node.server)

    def provider_name() -> list[str]:
        with pointed_at(node.server):
            return [provider["name"] for provider in auth.get_identity_providers(
                domains=[DOMAIN])["identity_providers"]]

    refused = gcs(env, "oidc", "update", "--pam-service", "../../etc/passwd")
    assert refused.returncode == 1 and "PAM service" in refused.stderr
    ok(gcs(env, "oidc", "update", "--display-name", "Campus Unix"))
    assert provider_name() == ["Campus Unix"]
    shown = json.loads(ok(gcs(env, "oidc", "show", "-F", "json")))
    assert shown["display_name"] == "Campus Unix" and shown["registered"] is True
    # Registering again replaces the client secret: the old one stops working at once.
    old_secret = _auth_side_secret(node, str(oidc["identity_provider_id"]))
    assert "Registered the OIDC server" in ok(gcs(env, "oidc", "register"))
    assert _auth_side_secret(node, str(oidc["identity_provider_id"])) != old_secret
    again = gcs(env, "oidc", "create")
    assert again.returncode == 1 and "already has an OIDC server" in again.stderr

    assert "Deleted the OIDC server" in ok(gcs(env, "oidc", "delete"))
    missing = gcs(env, "oidc", "show")
    assert missing.returncode == 1 and "no OIDC server" in missing.stderr
    gone = _get(f"{node.node_url}/oidc/.well-known/openid-configuration",
                verify=node.server.ca_file, timeout=30)
    assert gone.status_code == 404
    # Auth no longer offers it; the identity it made stays (grants name it).
    _, url = native_authorize_url(node, ["openid"])
    page = sites_of(node).open(url)
    assert page.status_code == 200 and "Campus Unix" not in page.text
    with pointed_at(node.server):
        assert auth.get_identities(usernames=account.username)["identities"][0][
            "username"] == account.username


def test_endpoint_cleanup_withdraws_its_identity_provider(
    node: Deployment, account: Account,
) -> None:
    """Run last of all: the endpoint goes, and Auth stops offering its OIDC server."""
    env = node.env
    ok(gcs(env, "oidc", "create", "--display-name", "Campus again", cwd=node.workdir))
    _, url = native_authorize_url(node, ["openid"])
    assert "Sign in with Campus again" in sites_of(node).open(url).text
    ok(gcs(env, "endpoint", "cleanup", "-d", str(node.key_file), "--agree-to-delete-endpoint",
           cwd=node.workdir))
    page = sites_of(node).open(url)
    assert page.status_code == 200 and "Campus again" not in page.text
    providers = node.server.run_json("idp", "list", "--json")["identity_providers"]
    assert [(row["name"], row["status"]) for row in providers] == [
        (f"gcs-{node.endpoint_id}", "retired")]
