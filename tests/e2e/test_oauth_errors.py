"""Every failure the Auth contract lists, as the official SDK sees it (spec §5, §11 items 32-34).

Where the SDK can make the request, it does, and the test catches `globus_sdk.AuthAPIError`;
what the SDK cannot send (duplicated parameters, broken bodies and headers, browser
forms) goes out through `requests`. Every JSON error must carry the Globus Auth shape:
``errors[0]`` with status/code/id/title/detail, plus ``error``/``error_description``.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import globus_sdk
import pytest
import requests

from tests.browser import Browser, Form, parse_form, query_of
from tests.conftest import User, _new_user
from tests.e2e.helpers import TRANSFER_ALL, TUTORIAL_CLIENT_ID, pointed_at
from tests.live import LiveServer, start_server

WEB_REDIRECT = "https://app.example.org/callback"
OTHER_REDIRECT = "https://app.example.org/other-callback"
TOKEN = "v2/oauth2/token"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# A well-formed id no server of the run has issued (a fixed one: see the parametrize below).
UNKNOWN_ID = "5f0c2a8e-3d4b-4c1a-9e7f-6b2d8a1c0e93"


# --- what every error must look like -----------------------------------------------------


def assert_error_body(body: Any, status: int, code: str, error: str) -> None:
    assert isinstance(body, dict), body
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str) and body["error_description"]
    assert isinstance(body["errors"], list) and len(body["errors"]) == 1, body
    entry = body["errors"][0]
    assert entry["status"] == str(status), body
    assert entry["code"] == code, body
    uuid.UUID(entry["id"])
    assert isinstance(entry["title"], str) and entry["title"]
    assert isinstance(entry["detail"], str) and entry["detail"]


def assert_sdk_error(
    caught: pytest.ExceptionInfo[globus_sdk.AuthAPIError], status: int, code: str, error: str
) -> globus_sdk.AuthAPIError:
    err = caught.value
    assert err.http_status == status
    assert err.content_type is not None
    assert err.content_type.split(";")[0].strip() == "application/json"
    assert err.code == code
    assert err.raw_json is not None
    assert_error_body(err.raw_json, status, code, error)
    # The SDK's own reading of the body: the sub-error's id and detail.
    assert err.request_id == err.raw_json["errors"][0]["id"]
    assert err.message == err.raw_json["errors"][0]["detail"]
    return err


def assert_raw_error(response: requests.Response, status: int, code: str, error: str) -> Any:
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].split(";")[0].strip() == "application/json"
    body = response.json()
    assert_error_body(body, status, code, error)
    return body


def assert_error_page(response: requests.Response, text: str, status: int = 400) -> None:
    """What a person's browser gets when a page cannot go on: HTML, never JSON or a redirect."""
    assert response.status_code == status, response.text[:500]
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert text in response.text


# --- fixtures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    id: str
    secret: str | None


@pytest.fixture(scope="module")
def web_app(server: LiveServer) -> Registered:
    """A confidential web app with two registered redirect URIs."""
    created = server.create_client(
        f"web-{uuid.uuid4().hex[:6]}", "confidential_client", WEB_REDIRECT, OTHER_REDIRECT
    )
    return Registered(created["id"], created["secret"])


@pytest.fixture(scope="module")
def other_native(server: LiveServer) -> Registered:
    created = server.create_client(f"native-{uuid.uuid4().hex[:6]}", "public_installed_client")
    return Registered(created["id"], None)


@pytest.fixture
def http(server: LiveServer) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.verify = server.ca_file
        session.trust_env = False
        yield session


@pytest.fixture(scope="module")
def short_code_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Authorization codes live one second."""
    live = start_server(tmp_path_factory.mktemp("isthmus-codes") / "data",
                        ISTHMUS_AUTHORIZATION_CODE_LIFETIME="1")
    yield live
    live.stop()


def confidential(
    app: Registered, secret: str | None = None
) -> globus_sdk.ConfidentialAppAuthClient:
    return globus_sdk.ConfidentialAppAuthClient(app.id, secret or app.secret or "")


def native_code(
    browser: Browser, user: User, client: globus_sdk.NativeAppAuthClient,
    scopes: str = "openid profile", *, refresh_tokens: bool = False, verifier: str | None = None,
) -> str:
    if verifier is None:
        client.oauth2_start_flow(requested_scopes=scopes, refresh_tokens=refresh_tokens)
    else:
        client.oauth2_start_flow(requested_scopes=scopes, refresh_tokens=refresh_tokens,
                                 verifier=verifier)
    location = browser.authorize(client.oauth2_get_authorize_url(), user.username, user.password)
    assert "code" in query_of(location), location
    return browser.code_from_page(location)


def native_tokens(
    browser: Browser, user: User, scopes: str = "openid profile"
) -> tuple[globus_sdk.NativeAppAuthClient, dict[str, Any]]:
    """A tutorial-client login with refresh tokens: the client and its auth.globus.org token."""
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    code = native_code(browser, user, client, scopes, refresh_tokens=True)
    data = client.oauth2_exchange_code_for_tokens(code).by_resource_server["auth.globus.org"]
    assert data["refresh_token"]
    return client, data


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# --- client authentication ---------------------------------------------------------------


def test_wrong_client_secret_is_401_unauthorized(sdk_env: LiveServer, web_app: Registered) -> None:
    client = confidential(web_app, secret="not-" + (web_app.secret or ""))
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        client.oauth2_client_credentials_tokens(requested_scopes="openid")
    err = assert_sdk_error(caught, 401, "UNAUTHORIZED", "invalid_client")
    assert err.message == "Basic auth failed"
    assert err.headers["WWW-Authenticate"].startswith("Basic")


# Parameters are fixed strings: pytest-xdist needs every worker to collect the same test ids.
@pytest.mark.parametrize("client_id", [UNKNOWN_ID, "not-a-client-id"])
def test_unknown_client_is_401_unauthorized(sdk_env: LiveServer, client_id: str) -> None:
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        globus_sdk.ConfidentialAppAuthClient(client_id, "secret").oauth2_client_credentials_tokens(
            requested_scopes="openid"
        )
    assert_sdk_error(caught, 401, "UNAUTHORIZED", "invalid_client")

    # A native app names itself in the body; an unknown one is no better.
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        globus_sdk.NativeAppAuthClient(client_id).oauth2_refresh_token("some-refresh-token")
    assert_sdk_error(caught, 401, "UNAUTHORIZED", "invalid_client")


def test_confidential_client_without_its_secret_is_401(
    sdk_env: LiveServer, web_app: Registered
) -> None:
    # A confidential client's id in the body, as a native app would send it.
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        globus_sdk.NativeAppAuthClient(web_app.id).oauth2_refresh_token("some-refresh-token")
    assert_sdk_error(caught, 401, "UNAUTHORIZED", "invalid_client")


def test_no_client_authentication_is_401(http: requests.Session, server: LiveServer) -> None:
    response = http.post(server.base_url + TOKEN,
                         data={"grant_type": "client_credentials", "scope": "openid"})
    assert_raw_error(response, 401, "UNAUTHORIZED", "invalid_client")


@pytest.mark.parametrize("header", [
    "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:not-utf-8").decode(),
    "Basic",
    "Bearer some-access-token",
    "Digest username=x",
])
def test_malformed_basic_header_is_401(
    http: requests.Session, server: LiveServer, web_app: Registered, header: str
) -> None:
    response = http.post(server.base_url + TOKEN,
                         data={"grant_type": "client_credentials", "scope": "openid"},
                         headers={"Authorization": header})
    assert_raw_error(response, 401, "UNAUTHORIZED", "invalid_client")


# --- authorization codes -----------------------------------------------------------------


def test_reused_authorization_code_is_invalid_grant_and_revokes_its_tokens(
    sdk_env: LiveServer, browser: Browser, user: User
) -> None:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    code = native_code(browser, user, client, refresh_tokens=True)
    first = client.oauth2_exchange_code_for_tokens(code).by_resource_server["auth.globus.org"]
    auth = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(
        first["access_token"]))
    assert auth.userinfo()["preferred_username"] == user.username
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        client.oauth2_exchange_code_for_tokens(code)
    err = assert_sdk_error(caught, 400, "INVALID_GRANT", "invalid_grant")
    assert "already been used" in (err.message or "")

    # The replay may be an attacker's: the first exchange's tokens are revoked (RFC 6749 4.1.2).
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        auth.userinfo()
    assert caught.value.http_status == 401
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        client.oauth2_refresh_token(first["refresh_token"])
    assert_sdk_error(caught, 400, "INVALID_GRANT", "invalid_grant")


def test_unknown_or_foreign_code_is_invalid_grant(
    sdk_env: LiveServer, browser: Browser, user: User, web_app: Registered
) -> None:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    code = native_code(browser, user, client)
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        client.oauth2_exchange_code_for_tokens("not-a-code-" + secrets.token_urlsafe(8))
    assert_sdk_error(caught, 400, "INVALID_GRANT", "invalid_grant")

    # The tutorial client's code, presented by another client with its own credentials.
    thief = confidential(web_app)
    thief.oauth2_start_flow(WEB_REDIRECT, requested_scopes="openid")
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        thief.oauth2_exchange_code_for_tokens(code)
    assert_sdk_error(caught, 400, "INVALID_GRANT", "invalid_grant")
    # ... which did not burn it for its rightful owner.
    assert client.oauth2_exchange_code_for_tokens(code)["access_token"]


def test_expired_authorization_code_is_invalid_grant(short_code_server: LiveServer) -> None:
    server = short_code_server
    user = _new_user(server, "late")
    browser = Browser(server.ca_file)
    with pointed_at(server):
        client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
        code = native_code(browser, user, client)
        time.sleep(1.5)
        with pytest.raises(globus_sdk.AuthAPIError) as caught:
            client.oauth2_exchange_code_for_tokens(code)
    err = assert_sdk_error(caught, 400, "INVALID_GRANT", "invalid_grant")
    assert "expired" in (err.message or "")


def test_pkce_verifier_mismatch_is_invalid_grant(
    sdk_env: LiveServer, browser: Browser, user: User, http: requests.Session
) -> None:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    code = native_code(browser, user, client, verifier=secrets.token_urlsafe(32))
    redirect_uri = sdk_env.base_url + "v2/web/auth-code"

    impostor = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    impostor.oauth2_start_flow(requested_scopes="openid profile",
                               verifier=secrets.token_urlsafe(32))
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        impostor.oauth2_exchange_code_for_tokens(code)
    err = assert_sdk_error(caught, 400, "INVALID_GRANT", "invalid_grant")
    assert "code_verifier" in (err.message or "")

    # A verifier the SDK would refuse to make: too short for RFC 7636.
    short = http.post(sdk_env.base_url + TOKEN, data={
        "client_id": TUTORIAL_CLIENT_ID, "grant_type": "authorization_code", "code": code,
        "code_verifier": "short", "redirect_uri": redirect_uri,
    })
    assert_raw_error(short, 400, "INVALID_GRANT", "invalid_grant")

    # No verifier at all, for a code that was issued with a challenge.
    missing = http.post(sdk_env.base_url + TOKEN, data={
        "client_id": TUTORIAL_CLIENT_ID, "grant_type": "authorization_code", "code": code,
        "redirect_uri": redirect_uri,
    })
    body = assert_raw_error(missing, 400, "INVALID_REQUEST", "invalid_request")
    assert "code_verifier" in body["error_description"]


def test_redirect_uri_mismatch_at_the_token_endpoint_is_invalid_grant(
    sdk_env: LiveServer, browser: Browser, user: User, web_app: Registered,
    http: requests.Session,
) -> None:
    client = confidential(web_app)
    client.oauth2_start_flow(WEB_REDIRECT, requested_scopes="openid")
    location = browser.authorize(client.oauth2_get_authorize_url(), user.username, user.password)
    assert location.startswith(WEB_REDIRECT + "?")
    code = query_of(location)["code"]

    # Also registered for this client, but not the one the code was issued for.
    client.oauth2_start_flow(OTHER_REDIRECT, requested_scopes="openid")
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        client.oauth2_exchange_code_for_tokens(code)
    err = assert_sdk_error(caught, 400, "INVALID_GRANT", "invalid_grant")
    assert "redirect_uri" in (err.message or "")

    missing = http.post(sdk_env.base_url + TOKEN,
                        data={"grant_type": "authorization_code", "code": code},
                        auth=(web_app.id, web_app.secret or ""))
    assert_raw_error(missing, 400, "INVALID_REQUEST", "invalid_request")

    # The failures did not consume the code.
    client.oauth2_start_flow(WEB_REDIRECT, requested_scopes="openid")
    assert client.oauth2_exchange_code_for_tokens(code)["access_token"]


# --- the authorize endpoint --------------------------------------------------------------


def test_unregistered_redirect_uri_at_authorize_shows_a_page_and_never_redirects(
    sdk_env: LiveServer, browser: Browser, web_app: Registered
) -> None:
    cases = [
        (web_app.id, "https://evil.example.org/callback"),
        (web_app.id, WEB_REDIRECT + "/more"),
        (web_app.id, "http://127.0.0.1:8765"),  # loopback is for native apps only
        (TUTORIAL_CLIENT_ID, "https://evil.example.org/v2/web/auth-code"),
        (TUTORIAL_CLIENT_ID, "http://127.0.0.1.evil.example.org:8765"),
        (TUTORIAL_CLIENT_ID, "http://127.0.0.1:8765/#fragment"),
        (TUTORIAL_CLIENT_ID, "http://127.0.0.1:8765/\x00"),
        (TUTORIAL_CLIENT_ID, ""),
    ]
    for client_id, redirect_uri in cases:
        query = {"client_id": client_id, "redirect_uri": redirect_uri, "scope": "openid",
                 "state": "s", "response_type": "code", "code_challenge": "a" * 43,
                 "code_challenge_method": "S256"}
        response = browser.open(sdk_env.base_url + "v2/oauth2/authorize?" + urlencode(query))
        assert_error_page(response, "redirect_uri is not registered")


def test_unknown_client_at_authorize_shows_a_page(sdk_env: LiveServer, browser: Browser) -> None:
    client = globus_sdk.NativeAppAuthClient(str(uuid.uuid4()))
    client.oauth2_start_flow(requested_scopes="openid")
    assert_error_page(browser.open(client.oauth2_get_authorize_url()), "Unknown client_id")


BAD_SCOPES = [
    pytest.param("urn:example:no-such-scope", "Unknown scope", id="unknown"),
    pytest.param(f"{TRANSFER_ALL}[openid]", "may not be requested as a dependency",
                 id="unregistered-dependency"),
    pytest.param("openid[", "Malformed", id="unbalanced-open"),
    pytest.param("openid]", "Malformed", id="unbalanced-close"),
    pytest.param(f"{TRANSFER_ALL}[[openid]]", "Malformed", id="empty-name"),
    pytest.param("*openid", "Malformed", id="optional-root"),
    pytest.param(f"{TRANSFER_ALL}[openid]*", "Malformed", id="misplaced-star"),
    pytest.param("open\x01id", "Malformed", id="control-character"),
    pytest.param(" ", "No scopes", id="blank"),
]


@pytest.mark.parametrize(("scope", "detail"), BAD_SCOPES)
def test_scope_the_client_may_not_request_at_the_token_endpoint(
    sdk_env: LiveServer, web_app: Registered, scope: str, detail: str
) -> None:
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        confidential(web_app).oauth2_client_credentials_tokens(requested_scopes=scope)
    err = assert_sdk_error(caught, 400, "INVALID_SCOPE", "invalid_scope")
    assert detail in (err.message or "")


@pytest.mark.parametrize(("scope", "detail"), BAD_SCOPES)
def test_scope_the_client_may_not_request_at_authorize_is_redirected_as_invalid_scope(
    sdk_env: LiveServer, browser: Browser, scope: str, detail: str
) -> None:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    client.oauth2_start_flow(requested_scopes=scope, state="keep-me")
    response = browser.open(client.oauth2_get_authorize_url())
    assert response.status_code in (302, 303), response.text[:500]
    location = response.headers["Location"]
    assert location.startswith(sdk_env.base_url + "v2/web/auth-code?")
    params = query_of(location)
    assert params["error"] == "invalid_scope"
    assert detail in params["error_description"]
    assert params["state"] == "keep-me"
    assert "code" not in params


# --- refresh tokens and bearer tokens ----------------------------------------------------


def test_refresh_token_of_another_client_is_invalid_grant(
    sdk_env: LiveServer, browser: Browser, user: User, web_app: Registered,
    other_native: Registered,
) -> None:
    owner, data = native_tokens(browser, user)
    refresh_token = data["refresh_token"]
    for thief in (globus_sdk.NativeAppAuthClient(other_native.id), confidential(web_app)):
        with pytest.raises(globus_sdk.AuthAPIError) as caught:
            thief.oauth2_refresh_token(refresh_token)
        assert_sdk_error(caught, 400, "INVALID_GRANT", "invalid_grant")
    # The attempts did not harm it for its owner.
    assert owner.oauth2_refresh_token(refresh_token)["access_token"]


def test_revoked_refresh_token_is_invalid_grant(
    sdk_env: LiveServer, browser: Browser, user: User
) -> None:
    client, data = native_tokens(browser, user)
    client.oauth2_revoke_token(data["refresh_token"])
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        client.oauth2_refresh_token(data["refresh_token"])
    assert_sdk_error(caught, 400, "INVALID_GRANT", "invalid_grant")
    # The access token it minted went with it.
    auth = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(data["access_token"]))
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        auth.userinfo()
    assert_sdk_error(caught, 401, "UNAUTHORIZED", "unauthorized")


def test_garbage_refresh_token_is_invalid_grant(sdk_env: LiveServer) -> None:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        client.oauth2_refresh_token("x" * 600)
    assert_sdk_error(caught, 400, "INVALID_GRANT", "invalid_grant")


def test_revoked_access_token_on_userinfo_is_401(
    sdk_env: LiveServer, web_app: Registered
) -> None:
    client = confidential(web_app)
    token = client.oauth2_client_credentials_tokens(requested_scopes="openid").by_resource_server[
        "auth.globus.org"]["access_token"]
    auth = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))
    assert auth.userinfo()["sub"] == web_app.id
    client.oauth2_revoke_token(token)
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        auth.userinfo()
    err = assert_sdk_error(caught, 401, "UNAUTHORIZED", "unauthorized")
    assert err.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_access_token_on_userinfo_is_401(short_lived_server: LiveServer) -> None:
    server = short_lived_server
    created = server.create_client(f"short-{uuid.uuid4().hex[:6]}", "confidential_client")
    with pointed_at(server):
        client = globus_sdk.ConfidentialAppAuthClient(created["id"], created["secret"])
        token = client.oauth2_client_credentials_tokens(
            requested_scopes="openid").by_resource_server["auth.globus.org"]["access_token"]
        auth = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))
        assert auth.userinfo()["sub"] == created["id"]
        time.sleep(3.5)
        with pytest.raises(globus_sdk.AuthAPIError) as caught:
            auth.userinfo()
    assert_sdk_error(caught, 401, "UNAUTHORIZED", "unauthorized")


@pytest.mark.parametrize("token", ["garbage", "x" * 2000, "\u00e9t\u00e9", "Bearer Bearer"])
def test_garbage_bearer_token_on_userinfo_is_401(sdk_env: LiveServer, token: str) -> None:
    auth = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        auth.userinfo()
    assert_sdk_error(caught, 401, "UNAUTHORIZED", "unauthorized")


def test_token_for_another_resource_server_on_userinfo_is_401(
    sdk_env: LiveServer, web_app: Registered
) -> None:
    tokens = confidential(web_app).oauth2_client_credentials_tokens(requested_scopes=TRANSFER_ALL)
    transfer = tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
    auth = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(transfer))
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        auth.userinfo()
    assert_sdk_error(caught, 401, "UNAUTHORIZED", "unauthorized")


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer garbage", "bearer  x "])
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "v2/oauth2/userinfo"),
    ("POST", "v2/oauth2/userinfo"),
    ("GET", "v2/api/identities?usernames=someone@isthmus.local"),
    ("GET", f"v2/api/identities/{UNKNOWN_ID}/consents"),
])
def test_every_bearer_route_answers_401_without_a_live_token(
    http: requests.Session, server: LiveServer, method: str, path: str,
    authorization: str | None,
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = http.request(method, server.base_url + path, headers=headers)
    assert_raw_error(response, 401, "UNAUTHORIZED", "unauthorized")


def test_renewing_authorizers_recover_from_a_dead_access_token(
    sdk_env: LiveServer, browser: Browser, user: User, web_app: Registered
) -> None:
    """The 401 is what makes the SDK fetch a new token and retry (spec §5.2)."""
    client, data = native_tokens(browser, user)
    refreshed: list[Any] = []
    authorizer = globus_sdk.RefreshTokenAuthorizer(
        data["refresh_token"], client, access_token="dead-" + secrets.token_urlsafe(8),
        expires_at=int(time.time()) + 3600, on_refresh=refreshed.append,
    )
    assert globus_sdk.AuthClient(authorizer=authorizer).userinfo()["sub"] == user.id
    assert len(refreshed) == 1

    renewed: list[Any] = []
    credentials = globus_sdk.ClientCredentialsAuthorizer(
        confidential(web_app), "openid", access_token="dead-" + secrets.token_urlsafe(8),
        expires_at=int(time.time()) + 3600, on_refresh=renewed.append,
    )
    assert globus_sdk.AuthClient(authorizer=credentials).userinfo()["sub"] == web_app.id
    assert len(renewed) == 1


# --- grants and parameters ---------------------------------------------------------------


def test_public_client_may_not_use_client_credentials(sdk_env: LiveServer) -> None:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        client.oauth2_token({"grant_type": "client_credentials", "scope": "openid",
                             "client_id": TUTORIAL_CLIENT_ID})
    assert_sdk_error(caught, 400, "UNAUTHORIZED_CLIENT", "unauthorized_client")


@pytest.mark.parametrize("grant_type", [
    "password", "implicit", "urn:ietf:params:oauth:grant-type:device_code", "AUTHORIZATION_CODE",
])
def test_unsupported_grant_type(sdk_env: LiveServer, web_app: Registered, grant_type: str) -> None:
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        confidential(web_app).oauth2_token({"grant_type": grant_type, "username": "u",
                                            "password": "p"})
    assert_sdk_error(caught, 400, "UNSUPPORTED_GRANT_TYPE", "unsupported_grant_type")


@pytest.mark.parametrize(("form", "missing"), [
    ({}, "grant_type"),
    ({"grant_type": ""}, "grant_type"),
    ({"grant_type": "authorization_code"}, "code"),
    ({"grant_type": "authorization_code", "code": "c"}, "redirect_uri"),
    ({"grant_type": "refresh_token"}, "refresh_token"),
    ({"grant_type": "client_credentials"}, "scope"),
    ({"grant_type": "urn:globus:auth:grant_type:dependent_token"}, "token"),
])
def test_missing_token_endpoint_parameters(
    sdk_env: LiveServer, web_app: Registered, form: dict[str, str], missing: str
) -> None:
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        confidential(web_app).oauth2_token(form)
    err = assert_sdk_error(caught, 400, "INVALID_REQUEST", "invalid_request")
    assert err.message == f"Missing required parameter: {missing}"


@pytest.mark.parametrize("path", [
    "v2/oauth2/token/introspect", "v2/oauth2/token/revoke", "v2/oauth2/token/validate",
])
def test_missing_token_parameter_on_the_token_management_endpoints(
    http: requests.Session, server: LiveServer, web_app: Registered, path: str
) -> None:
    response = http.post(server.base_url + path, data={"include": "identity_set"},
                         auth=(web_app.id, web_app.secret or ""))
    body = assert_raw_error(response, 400, "INVALID_REQUEST", "invalid_request")
    assert body["error_description"] == "Missing required parameter: token"


def test_introspection_needs_a_confidential_client(
    sdk_env: LiveServer, http: requests.Session
) -> None:
    response = http.post(sdk_env.base_url + "v2/oauth2/token/introspect",
                         data={"token": "anything", "client_id": TUTORIAL_CLIENT_ID})
    assert_raw_error(response, 401, "UNAUTHORIZED", "invalid_client")


@pytest.mark.parametrize(("path", "body"), [
    (TOKEN, "grant_type=client_credentials&scope=openid&scope=profile"),
    (TOKEN, "grant_type=client_credentials&grant_type=client_credentials&scope=openid"),
    ("v2/oauth2/token/introspect", "token=a&token=b"),
    ("v2/oauth2/token/revoke", "token=a&token=a"),
])
def test_duplicated_form_parameters_are_refused(
    http: requests.Session, server: LiveServer, web_app: Registered, path: str, body: str
) -> None:
    response = http.post(server.base_url + path, data=body, headers=FORM,
                         auth=(web_app.id, web_app.secret or ""))
    payload = assert_raw_error(response, 400, "BAD_REQUEST", "invalid_request")
    assert "more than once" in payload["error_description"]


def test_json_body_to_the_token_endpoint_is_refused(
    sdk_env: LiveServer, web_app: Registered, http: requests.Session
) -> None:
    # The SDK can be told to send JSON; the token endpoint takes forms only (RFC 6749 3.2).
    with pytest.raises(globus_sdk.AuthAPIError) as caught:
        confidential(web_app).post(
            "/v2/oauth2/token", data={"grant_type": "client_credentials", "scope": "openid"},
            encoding="json",
        )
    err = assert_sdk_error(caught, 400, "BAD_REQUEST", "invalid_request")
    assert "x-www-form-urlencoded" in (err.message or "")

    # A form body mislabelled as something else is no better.
    response = http.post(sdk_env.base_url + TOKEN,
                         data="grant_type=client_credentials&scope=openid",
                         headers={"Content-Type": "text/plain"},
                         auth=(web_app.id, web_app.secret or ""))
    assert_raw_error(response, 400, "BAD_REQUEST", "invalid_request")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_huge_body_is_413(
    http: requests.Session, server: LiveServer, web_app: Registered, chunked: bool
) -> None:
    body = b"grant_type=client_credentials&scope=" + b"a" * (100 * 1024)
    data: Any = body
    if chunked:
        data = (body[i:i + 8192] for i in range(0, len(body), 8192))
    response = http.post(server.base_url + TOKEN, data=data, headers=FORM,
                         auth=(web_app.id, web_app.secret or ""))
    assert_raw_error(response, 413, "PAYLOAD_TOO_LARGE", "payload_too_large")


@pytest.mark.parametrize("body", [
    b"grant_type=client_credentials&scope=\xff\xfeopenid",
    b"grant_type=client_credentials&scope=%ff%feopenid",
    b"grant_type=client_credentials&scope=open%00id",
], ids=["raw-bytes", "percent-escaped", "nul"])
def test_non_utf8_or_nul_form_bodies_are_400(
    http: requests.Session, server: LiveServer, web_app: Registered, body: bytes
) -> None:
    response = http.post(server.base_url + TOKEN, data=body, headers=FORM,
                         auth=(web_app.id, web_app.secret or ""))
    assert_raw_error(response, 400, "BAD_REQUEST", "invalid_request")


# --- the login form ----------------------------------------------------------------------


def _login_form(browser: Browser) -> tuple[str, Form]:
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    client.oauth2_start_flow(requested_scopes="openid")
    authorize_url = client.oauth2_get_authorize_url()
    page = browser.open(authorize_url)
    assert page.status_code == 200
    form = parse_form(page.text)
    assert form.fields["csrf_token"]
    assert browser.http.cookies["isthmus_csrf"] == form.fields["csrf_token"]
    return authorize_url, form


@pytest.mark.parametrize("attack", ["no-cookie", "no-token", "wrong-token", "empty-both"])
def test_login_form_without_csrf_is_403_and_makes_no_session(
    sdk_env: LiveServer, browser: Browser, user: User, attack: str
) -> None:
    authorize_url, form = _login_form(browser)
    data = {**form.fields, "username": user.username, "password": user.password}
    poster = browser.http
    if attack == "no-cookie":  # a cross-site page replays a token it somehow learned
        poster = requests.Session()
        poster.verify = sdk_env.ca_file
        poster.trust_env = False
    elif attack == "no-token":
        del data["csrf_token"]
    elif attack == "wrong-token":
        data["csrf_token"] = secrets.token_urlsafe(32)
    else:
        browser.http.cookies.set("isthmus_csrf", "", path="/")
        data["csrf_token"] = ""
    response = poster.post(sdk_env.base_url + "v2/web/login", data=data, allow_redirects=False,
                           timeout=30)
    assert response.status_code == 403, response.text[:500]
    assert "isthmus_session" not in response.headers.get("Set-Cookie", "")
    assert "Location" not in response.headers
    assert_error_page(response, "The form has expired", 403)
    assert "isthmus_session" not in poster.cookies

    # Nobody is logged in: the authorize page still asks for a password.
    again = browser.open(authorize_url)
    assert again.status_code == 200
    assert "password" in parse_form(again.text).fields


def test_consent_form_without_csrf_is_403(
    sdk_env: LiveServer, browser: Browser, user: User
) -> None:
    authorize_url, login_form = _login_form(browser)
    consent = browser.submit(authorize_url, login_form, username=user.username,
                             password=user.password)
    assert consent.status_code == 200
    form = parse_form(consent.text)
    assert "decision" in form.buttons.values()
    data = {**form.fields, "decision": "allow"}
    del data["csrf_token"]
    response = browser.http.post(sdk_env.base_url + "v2/web/consent", data=data,
                                 allow_redirects=False, timeout=30)
    assert_error_page(response, "The form has expired", 403)
    assert "Location" not in response.headers


def test_login_with_wrong_password_is_a_401_page_without_a_session(
    sdk_env: LiveServer, browser: Browser, user: User
) -> None:
    authorize_url, form = _login_form(browser)
    response = browser.submit(authorize_url, form, username=user.username,
                              password="wrong-" + user.password)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Invalid username or password" in response.text
    assert "isthmus_session" not in browser.http.cookies

