"""Seed 003, the SDK tutorial, step by step against a live server (globus-sdk 4.x)."""

from __future__ import annotations

import globus_sdk
import pytest

from tests.browser import Browser, parse_form, query_of
from tests.conftest import User
from tests.live import LiveServer

TUTORIAL_CLIENT_ID = "61338d24-54d5-408f-a10d-66c06b59f6d2"
# The 3.x default, which 4.x makes callers spell out.
SEED_SCOPES = "openid profile email urn:globus:auth:scope:transfer.api.globus.org:all"


def login(client: globus_sdk.NativeAppAuthClient, browser: Browser, user: User) -> str:
    location = browser.authorize(client.oauth2_get_authorize_url(), user.username, user.password)
    assert query_of(location)["state"] == "_default"
    return browser.code_from_page(location)


def test_first_steps_login_gives_auth_and_transfer_tokens(
    sdk_env: LiveServer, browser: Browser, user: User
) -> None:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    client.oauth2_start_flow(requested_scopes=SEED_SCOPES)
    authorize_url = client.oauth2_get_authorize_url()
    assert authorize_url.startswith(sdk_env.base_url + "v2/oauth2/authorize?")

    code = login(client, browser, user)
    token_response = client.oauth2_exchange_code_for_tokens(code)

    by_rs = token_response.by_resource_server
    assert set(by_rs) == {"auth.globus.org", "transfer.api.globus.org"}
    assert by_rs["auth.globus.org"]["scope"].split() == ["openid", "profile", "email"]
    assert by_rs["transfer.api.globus.org"]["scope"] == (
        "urn:globus:auth:scope:transfer.api.globus.org:all"
    )
    assert by_rs["auth.globus.org"]["refresh_token"] is None
    assert by_rs["transfer.api.globus.org"]["expires_at_seconds"] > 0

    auth_token = by_rs["auth.globus.org"]["access_token"]
    auth_client = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(auth_token))
    info = auth_client.userinfo()
    assert info["sub"] == user.id
    assert info["preferred_username"] == user.username
    assert info["email"] == user.username.split("@")[0] + "@example.org"

    decoded = token_response.decode_id_token()
    assert decoded["sub"] == user.id
    assert decoded["aud"] == TUTORIAL_CLIENT_ID


def test_login_page_has_labelled_fields_and_remembers_the_session(
    sdk_env: LiveServer, browser: Browser, user: User
) -> None:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    client.oauth2_start_flow(requested_scopes="openid profile")
    page = browser.open(client.oauth2_get_authorize_url())
    assert page.status_code == 200
    assert 'for="username">Username</label>' in page.text
    assert 'for="password">Password</label>' in page.text
    login(client, browser, user)

    # Same browser, same scopes: no login and no consent page the second time.
    again = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    again.oauth2_start_flow(requested_scopes="openid profile")
    response = browser.open(again.oauth2_get_authorize_url())
    assert response.status_code == 303 or response.status_code == 302
    code = query_of(response.headers["Location"])["code"]
    assert again.oauth2_exchange_code_for_tokens(code).by_resource_server["auth.globus.org"]


def test_consent_page_names_client_and_scopes(
    sdk_env: LiveServer, browser: Browser, user: User
) -> None:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    client.oauth2_start_flow(requested_scopes=SEED_SCOPES)
    location = browser.authorize(client.oauth2_get_authorize_url(), user.username, user.password)
    assert "Globus SDK Tutorial" in browser.last_page
    assert "Manage data using Globus Transfer" in browser.last_page
    assert "Allow" in browser.last_page
    assert "code" in query_of(location)


def test_deny_returns_access_denied(sdk_env: LiveServer, browser: Browser, user: User) -> None:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    client.oauth2_start_flow(requested_scopes=SEED_SCOPES)
    location = browser.authorize(
        client.oauth2_get_authorize_url(), user.username, user.password, decision="deny"
    )
    params = query_of(location)
    assert params["error"] == "access_denied"
    assert "code" not in params


def test_refresh_tokens_and_refresh_token_authorizer(
    short_lived_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = short_lived_server
    for key, value in server.sdk_environment().items():
        monkeypatch.setenv(key, value)
    from tests.conftest import _new_user

    user = _new_user(server, "refresher")
    browser = Browser(server.ca_file)
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    client.oauth2_start_flow(requested_scopes=SEED_SCOPES, refresh_tokens=True)
    token_response = client.oauth2_exchange_code_for_tokens(login(client, browser, user))
    auth_data = token_response.by_resource_server["auth.globus.org"]
    assert auth_data["refresh_token"]
    assert token_response.by_resource_server["transfer.api.globus.org"]["refresh_token"]

    refreshed: list[globus_sdk.OAuthTokenResponse] = []
    # Claim the stale token is good for an hour, so the SDK sends it, gets a
    # 401, refreshes and retries: the path a real expiry takes.
    import time

    time.sleep(3.5)
    authorizer = globus_sdk.RefreshTokenAuthorizer(
        auth_data["refresh_token"], client, access_token=auth_data["access_token"],
        expires_at=int(time.time()) + 3600, on_refresh=refreshed.append,
    )
    info = globus_sdk.AuthClient(authorizer=authorizer).userinfo()
    assert info["sub"] == user.id
    assert len(refreshed) == 1
    new_data = refreshed[0].by_resource_server["auth.globus.org"]
    assert new_data["access_token"] != auth_data["access_token"]
    assert new_data["refresh_token"] == auth_data["refresh_token"]
    assert refreshed[0]["other_tokens"] == []


def test_browser_logout_ends_the_session(
    sdk_env: LiveServer, browser: Browser, user: User
) -> None:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    client.oauth2_start_flow(requested_scopes="openid")
    login(client, browser, user)
    session_cookie = browser.http.cookies.get("isthmus_session")
    assert session_cookie
    page = browser.open(sdk_env.base_url + "v2/web/logout")
    assert user.username in page.text
    done = browser.submit(page.url, parse_form(page.text))
    assert "You are logged out" in done.text
    # Even a browser that kept the old cookie gets the login page again.
    browser.http.cookies.set("isthmus_session", session_cookie, domain="127.0.0.1")
    again = browser.open(client.oauth2_get_authorize_url())
    assert 'name="password"' in again.text
