"""Pieces several end-to-end modules share: SDK environments and scripted logins."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import globus_sdk
from globus_sdk.login_flows import CommandLineLoginFlowManager

from tests.browser import Browser, Sites, parse_form
from tests.conftest import answer_login

if TYPE_CHECKING:
    import requests

    from tests.conftest import UpstreamPair, User
from tests.live import LiveServer

GLOBUS = str(Path(sys.executable).with_name("globus"))

TUTORIAL_CLIENT_ID = "61338d24-54d5-408f-a10d-66c06b59f6d2"
TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"
# The 3.x default, which 4.x makes callers spell out.
SEED_SCOPES = f"openid profile email {TRANSFER_ALL}"
MANAGE = "urn:globus:auth:scope:auth.globus.org:manage_projects"


@contextlib.contextmanager
def pointed_at(server: LiveServer) -> Iterator[None]:
    """Point the SDK in this process at `server` (the SDK reads these per client)."""
    saved = {key: os.environ.get(key) for key in server.sdk_environment()}
    os.environ.update(server.sdk_environment())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def scripted_login_flow(browser: Browser, username: str, password: str) -> Any:
    """A GlobusApp login-flow provider whose "user" is a Browser filling the pages."""

    class ScriptedLogin(CommandLineLoginFlowManager):
        logins = 0

        def print_authorize_url(self, authorize_url: str) -> None:
            self._location = browser.authorize(authorize_url, username, password)

        def prompt_for_code(self) -> str:
            ScriptedLogin.logins += 1
            return browser.code_from_page(self._location)

    return ScriptedLogin


def identity_of(response: globus_sdk.OAuthTokenResponse) -> str:
    return str(response.decode_id_token()["sub"])


def client_token_auth(server: LiveServer) -> globus_sdk.AuthClient:
    """An AuthClient on a client-credentials token scoped only openid profile email."""
    created = server.create_client("lookup", "client_identity")
    with pointed_at(server):
        app = globus_sdk.ConfidentialAppAuthClient(created["id"], created["secret"])
        tokens = app.oauth2_client_credentials_tokens(requested_scopes="openid profile email")
        token = tokens.by_resource_server["auth.globus.org"]["access_token"]
        return globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))


# --- signing in through an upstream Isthmus (see conftest.UpstreamPair) -------------------


def pair_sites(pair: UpstreamPair) -> Sites:
    """A fresh browser for both servers of the pair."""
    return Sites((pair.downstream.base_url, pair.downstream.ca_file),
                 (pair.upstream.base_url, pair.upstream.ca_file))


def through_upstream(
    pair: UpstreamPair, sites: Sites, page_url: str, page: requests.Response, button: str,
    user: User, *, decision: str = "allow",
) -> str:
    """Press `button` ("Sign in with ...") on a downstream page, log in and answer the
    consent at the upstream; returns the callback URL the upstream sends the browser to."""
    response = sites.press(page_url, page.text, button)
    assert response.status_code == 303, response.text[:2000]
    url = response.headers["Location"]
    assert url.startswith(pair.upstream.base_url + "v2/oauth2/authorize?"), url
    response = sites.open(url)
    for _ in range(4):
        if response.status_code in (302, 303):
            callback = urljoin(url, response.headers["Location"])
            assert callback.startswith(pair.callback + "?"), callback
            return callback
        assert response.status_code == 200, response.text[:2000]
        form = parse_form(response.text)
        if "password" in form.fields:
            response = sites.submit(url, form, username=user.username, password=user.password)
        else:
            assert "decision" in form.buttons.values(), response.text[:2000]
            response = sites.submit(url, form, decision=decision)
    raise AssertionError("the upstream never sent the browser back")


def finish_downstream(sites: Sites, callback: str) -> str:
    """Open the callback and consent at the downstream; the redirect to the app."""
    response, url = sites.follow(sites.open(callback), callback)
    for _ in range(3):
        if response.status_code in (302, 303):
            return urljoin(url, response.headers["Location"])
        assert response.status_code == 200, response.text[:2000]
        form = parse_form(response.text)
        assert "decision" in form.buttons.values(), response.text[:2000]
        response = sites.submit(url, form, decision="allow")
    raise AssertionError("no redirect to the application")


def native_login(server: LiveServer, username: str, password: str,
                 scopes: list[str], *, client_id: str = TUTORIAL_CLIENT_ID,
                 ) -> dict[str, dict[str, Any]]:
    """Tokens by resource server, from a native app's login (the tutorial client's unless
    ``client_id`` names another) as a person does it."""
    with pointed_at(server):
        client = globus_sdk.NativeAppAuthClient(client_id)
        client.oauth2_start_flow(requested_scopes=scopes)
        browser = Browser(server.ca_file)
        location = browser.authorize(client.oauth2_get_authorize_url(), username, password)
        tokens = client.oauth2_exchange_code_for_tokens(browser.code_from_page(location))
        return dict(tokens.by_resource_server)


def user_auth_token(server: LiveServer, user: User, scopes: str) -> str:
    """The user's access token for auth.globus.org (a native-app login through the pages)."""
    tokens = native_login(server, user.username, user.password, scopes.split())
    return str(tokens["auth.globus.org"]["access_token"])


def auth_client_for(server: LiveServer, user: User, scopes: str) -> globus_sdk.AuthClient:
    """An AuthClient on the user's own token."""
    token = user_auth_token(server, user, scopes)
    return globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))


def globus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `globus` command (globus-cli 3.43) in a shell environment."""
    return subprocess.run([GLOBUS, *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)


def cli_login(server: LiveServer, user: User, env: dict[str, str], *args: str) -> str:
    """`globus login --no-local-server [args]` with ``user`` at the keyboard; its output."""
    return cli_with_login(server, user, env, "login", "--no-local-server", *args)


def cli_with_login(server: LiveServer, user: User, env: dict[str, str], *args: str) -> str:
    """A `globus` command that asks the user to log in (``login``, ``session consent``,
    with ``--no-local-server``), with ``user`` at the keyboard; its output."""
    process = subprocess.Popen([GLOBUS, *args],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        printed = answer_login(server, process, user)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, f"{printed}{out}\n{err}"
    return printed + out
