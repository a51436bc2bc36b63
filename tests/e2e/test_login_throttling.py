"""Failed passwords lock an account, and a flood from one address locks the address."""

from __future__ import annotations

from pathlib import Path

import globus_sdk

from tests.browser import Browser, parse_form
from tests.conftest import User, _new_user
from tests.e2e.helpers import TUTORIAL_CLIENT_ID, pointed_at
from tests.live import LiveServer, start_server


def attempt(server: LiveServer, username: str, password: str) -> tuple[int, str]:
    """One login through the real form: the status and the page (or redirect) it led to."""
    with pointed_at(server):
        client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
        client.oauth2_start_flow(requested_scopes="openid")
        url = client.oauth2_get_authorize_url()
    browser = Browser(server.ca_file)
    page = browser.open(url)
    response = browser.submit(url, parse_form(page.text), username=username, password=password)
    return response.status_code, response.text


def test_an_account_locks_after_five_failures(server: LiveServer, user: User) -> None:
    for _ in range(5):
        status, page = attempt(server, user.username, "wrong")
        assert status == 401
        assert "Invalid username or password" in page
    status, page = attempt(server, user.username.split("@")[0].upper(), user.password)
    assert status == 429
    assert "Too many failed login attempts" in page
    # Someone else from the same address is not affected.
    other = _new_user(server, "bystander")
    status, _ = attempt(server, other.username, other.password)
    assert status == 200  # the consent page


def test_a_success_clears_the_account_count(server: LiveServer, user: User) -> None:
    for _ in range(4):
        assert attempt(server, user.username, "wrong")[0] == 401
    assert attempt(server, user.username, user.password)[0] == 200
    for _ in range(4):
        assert attempt(server, user.username, "wrong")[0] == 401
    assert attempt(server, user.username, user.password)[0] in (200, 303)


def test_an_address_locks_after_its_limit(tmp_path: Path) -> None:
    live = start_server(tmp_path / "throttled", ISTHMUS_LOGIN_ADDRESS_LIMIT="3",
                        ISTHMUS_LOGIN_ACCOUNT_LIMIT="100")
    try:
        victim = _new_user(live, "victim")
        for name in ("a", "b", "c"):
            assert attempt(live, name, "guess")[0] == 401
        status, page = attempt(live, victim.username, victim.password)
        assert status == 429
        assert "Too many failed login attempts" in page
    finally:
        live.stop()
