"""Pieces several end-to-end modules share: SDK environments and scripted logins."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import globus_sdk
from globus_sdk.login_flows import CommandLineLoginFlowManager

from tests.browser import Browser
from tests.conftest import User
from tests.live import LiveServer

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


def user_auth_token(server: LiveServer, user: User, scopes: str) -> str:
    """The user's access token for auth.globus.org (a native-app login through the pages)."""
    with pointed_at(server):
        login = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
        login.oauth2_start_flow(requested_scopes=scopes)
        browser = Browser(server.ca_file)
        location = browser.authorize(login.oauth2_get_authorize_url(), user.username,
                                     user.password)
        tokens = login.oauth2_exchange_code_for_tokens(browser.code_from_page(location))
    return str(tokens.by_resource_server["auth.globus.org"]["access_token"])


def auth_client_for(server: LiveServer, user: User, scopes: str) -> globus_sdk.AuthClient:
    """An AuthClient on the user's own token."""
    token = user_auth_token(server, user, scopes)
    return globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))
