"""Pieces several end-to-end modules share: SDK environments and scripted logins."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import globus_sdk
from globus_sdk.login_flows import CommandLineLoginFlowManager

from tests.browser import Browser
from tests.conftest import User, answer_login
from tests.live import LiveServer

GLOBUS = str(Path(sys.executable).with_name("globus"))

TUTORIAL_CLIENT_ID = "61338d24-54d5-408f-a10d-66c06b59f6d2"
TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"
# The 3.x default, which 4.x makes callers spell out.
SEED_SCOPES = f"openid profile email {TRANSFER_ALL}"


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


def native_login(server: LiveServer, username: str, password: str,
                 scopes: list[str]) -> dict[str, dict[str, Any]]:
    """Tokens by resource server, from the tutorial client's login as a person does it."""
    with pointed_at(server):
        client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
        client.oauth2_start_flow(requested_scopes=scopes)
        browser = Browser(server.ca_file)
        location = browser.authorize(client.oauth2_get_authorize_url(), username, password)
        tokens = client.oauth2_exchange_code_for_tokens(browser.code_from_page(location))
        return dict(tokens.by_resource_server)


def globus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `globus` command (globus-cli 3.43) in a shell environment."""
    return subprocess.run([GLOBUS, *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)


def cli_login(server: LiveServer, user: User, env: dict[str, str], *args: str) -> str:
    """`globus login --no-local-server [args]` with ``user`` at the keyboard; its output."""
    process = subprocess.Popen([GLOBUS, "login", "--no-local-server", *args],
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
