"""The OAuth2 flows the seeds and the SDK 4.x application objects use, on a live server."""

from __future__ import annotations

import time
import uuid

import globus_sdk
import pytest
from globus_sdk import GlobusAppConfig

from tests.browser import Browser, query_of
from tests.conftest import User, _new_user
from tests.e2e.helpers import (
    SEED_SCOPES,
    TRANSFER_ALL,
    TUTORIAL_CLIENT_ID,
    pointed_at,
    scripted_login_flow,
)
from tests.live import LiveServer

WEB_REDIRECT = "https://app.example.org/callback"


def confidential(server: LiveServer, client_type: str = "confidential_client",
                 *redirects: str) -> globus_sdk.ConfidentialAppAuthClient:
    created = server.create_client(f"app-{uuid.uuid4().hex[:6]}", client_type, *redirects)
    return globus_sdk.ConfidentialAppAuthClient(created["id"], created["secret"])


def web_login(
    client: globus_sdk.ConfidentialAppAuthClient, browser: Browser, user: User,
    scopes: str = SEED_SCOPES, refresh_tokens: bool = False,
) -> globus_sdk.OAuthTokenResponse:
    client.oauth2_start_flow(WEB_REDIRECT, requested_scopes=scopes,
                             refresh_tokens=refresh_tokens)
    location = browser.authorize(client.oauth2_get_authorize_url(), user.username,
                                 user.password)
    assert location.startswith(WEB_REDIRECT + "?")
    return client.oauth2_exchange_code_for_tokens(query_of(location)["code"])


def test_client_credentials_seed_002(sdk_env: LiveServer) -> None:
    client = confidential(sdk_env)
    token_response = client.oauth2_client_credentials_tokens(requested_scopes=SEED_SCOPES)
    globus_auth_data = token_response.by_resource_server["auth.globus.org"]
    globus_transfer_data = token_response.by_resource_server["transfer.api.globus.org"]
    assert globus_transfer_data["scope"] == TRANSFER_ALL
    assert globus_auth_data["refresh_token"] is None

    auth = globus_sdk.AuthClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(globus_auth_data["access_token"])
    )
    info = auth.userinfo()
    assert info["sub"] == client.client_id
    assert info["preferred_username"] == f"{client.client_id}@clients.auth.globus.org"

    # One scope in, one token out: what ClientCredentialsAuthorizer insists on.
    only_transfer = client.oauth2_client_credentials_tokens(requested_scopes=TRANSFER_ALL)
    assert list(only_transfer.by_resource_server) == ["transfer.api.globus.org"]


def test_client_credentials_authorizer_renews_after_expiry(
    short_lived_server: LiveServer,
) -> None:
    with pointed_at(short_lived_server):
        client = confidential(short_lived_server)
        renewals: list[globus_sdk.OAuthTokenResponse] = []
        authorizer = globus_sdk.ClientCredentialsAuthorizer(
            client, "openid profile email", on_refresh=renewals.append
        )
        auth = globus_sdk.AuthClient(authorizer=authorizer)
        assert auth.userinfo()["sub"] == client.client_id
        first = authorizer.access_token
        time.sleep(3.5)
        assert auth.userinfo()["sub"] == client.client_id
        assert authorizer.access_token != first
        assert len(renewals) >= 2


def test_confidential_web_app_authorization_code_flow(
    sdk_env: LiveServer, browser: Browser, user: User
) -> None:
    client = confidential(sdk_env, "confidential_client", WEB_REDIRECT)
    tokens = web_login(client, browser, user, refresh_tokens=True)
    assert set(tokens.by_resource_server) == {"auth.globus.org", "transfer.api.globus.org"}
    assert all(data["refresh_token"] for data in tokens.by_resource_server.values())
    assert tokens.decode_id_token()["sub"] == user.id
    refreshed = client.oauth2_refresh_token(
        tokens.by_resource_server["transfer.api.globus.org"]["refresh_token"]
    )
    assert list(refreshed.by_resource_server) == ["transfer.api.globus.org"]


def test_introspection_before_and_after_revocation(
    sdk_env: LiveServer, browser: Browser, user: User
) -> None:
    client = confidential(sdk_env, "confidential_client", WEB_REDIRECT)
    tokens = web_login(client, browser, user, refresh_tokens=True)
    auth_data = tokens.by_resource_server["auth.globus.org"]
    logged_in_at = time.time()

    info = client.oauth2_token_introspect(
        auth_data["access_token"], include="identity_set,session_info"
    )
    assert info["active"] is True
    assert info["sub"] == user.id
    assert info["username"] == user.username
    assert info["client_id"] == client.client_id
    assert set(info["scope"].split()) == {"openid", "profile", "email"}
    assert info["identity_set"] == [user.id]
    auth_time = info["session_info"]["authentications"][user.id]["auth_time"]
    assert abs(auth_time - logged_in_at) < 60

    refresh = auth_data["refresh_token"]
    assert client.oauth2_token_introspect(refresh)["active"] is True

    client.oauth2_revoke_token(auth_data["access_token"])
    assert client.oauth2_token_introspect(auth_data["access_token"]).data == {"active": False}
    client.oauth2_revoke_token(refresh)
    assert client.oauth2_token_introspect(refresh)["active"] is False

    # Another client learns nothing about tokens that are not its own or for it.
    stranger = confidential(sdk_env)
    transfer_token = tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
    assert client.oauth2_token_introspect(transfer_token)["active"] is True
    assert stranger.oauth2_token_introspect(transfer_token)["active"] is False


def test_dependent_token_grant(sdk_env: LiveServer, browser: Browser, user: User) -> None:
    service = sdk_env.create_client("compute service", "resource_server")
    scope = sdk_env.run_json(
        "scope", "create", service["id"], "compute", "--name", "Run computations",
        "--description", "Run computations on your data", "--dependent-scope", TRANSFER_ALL,
    )
    app = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    app.oauth2_start_flow(requested_scopes=scope["scope_string"])
    location = browser.authorize(app.oauth2_get_authorize_url(), user.username, user.password)
    assert "Run computations" in browser.last_page
    assert "Manage data using Globus Transfer" in browser.last_page  # the dependency
    tokens = app.oauth2_exchange_code_for_tokens(browser.code_from_page(location))
    service_token = tokens.by_resource_server[service["id"]]["access_token"]

    resource_server = globus_sdk.ConfidentialAppAuthClient(service["id"], service["secret"])
    dependent = resource_server.oauth2_get_dependent_tokens(service_token, refresh_tokens=True)
    transfer = dependent.by_resource_server["transfer.api.globus.org"]
    assert transfer["scope"] == TRANSFER_ALL
    assert transfer["refresh_token"]
    introspected = resource_server.oauth2_token_introspect(transfer["access_token"])
    assert introspected["sub"] == user.id
    assert introspected["client_id"] == service["id"]
    # The service renews it for work that outlives the user's request.
    renewed = resource_server.oauth2_refresh_token(transfer["refresh_token"])
    assert renewed.by_resource_server["transfer.api.globus.org"]["scope"] == TRANSFER_ALL
    assert resource_server.oauth2_token_introspect(
        renewed.by_resource_server["transfer.api.globus.org"]["access_token"])["active"]

    # Only the resource server the token is for may exchange it.
    other = confidential(sdk_env)
    with pytest.raises(globus_sdk.AuthAPIError) as refused:
        other.oauth2_get_dependent_tokens(service_token)
    assert refused.value.http_status == 400


def transfer_header(app: globus_sdk.GlobusApp) -> str:
    """The header the app's TransferClient would send (Transfer's routes come later)."""
    header = app.get_authorizer("transfer.api.globus.org").get_authorization_header()
    assert header is not None
    return header


def test_user_app_with_refresh_tokens_across_expiry(short_lived_server: LiveServer) -> None:
    server = short_lived_server
    user = _new_user(server, "appuser")
    collection = str(uuid.uuid4())
    flow = scripted_login_flow(Browser(server.ca_file), user.username, user.password)
    with pointed_at(server):
        app = globus_sdk.UserApp(
            "isthmus tests", client_id=TUTORIAL_CLIENT_ID,
            config=GlobusAppConfig(token_storage="memory", login_flow_manager=flow,
                                   request_refresh_tokens=True),
        )
        auth = globus_sdk.AuthClient(app=app)
        globus_sdk.TransferClient(app=app).add_app_data_access_scope(collection)
        assert auth.userinfo()["sub"] == user.id
        assert flow.logins == 1
        # The data_access dependency is checked through the consents API.
        header = transfer_header(app)
        assert header.startswith("Bearer ")
        time.sleep(3.5)
        assert auth.userinfo()["sub"] == user.id
        assert transfer_header(app) != header
        assert flow.logins == 1  # renewed by refresh, not by logging in again


def test_client_app_across_expiry(short_lived_server: LiveServer) -> None:
    server = short_lived_server
    created = server.create_client("robot", "client_identity")
    with pointed_at(server):
        app = globus_sdk.ClientApp(
            "robot", client_id=created["id"], client_secret=created["secret"],
            config=GlobusAppConfig(token_storage="memory"),
        )
        auth = globus_sdk.AuthClient(app=app)
        globus_sdk.TransferClient(app=app)
        assert auth.userinfo()["sub"] == created["id"]
        header = transfer_header(app)
        time.sleep(3.5)
        assert auth.userinfo()["sub"] == created["id"]
        assert transfer_header(app) != header


def test_client_credentials_with_a_collection_data_access_dependency(
    sdk_env: LiveServer,
) -> None:
    collection = str(uuid.uuid4())  # collections may register long after the scopes did
    client = confidential(sdk_env)
    scope = f"{TRANSFER_ALL}[*https://auth.globus.org/scopes/{collection}/data_access]"
    tokens = client.oauth2_client_credentials_tokens(requested_scopes=scope)
    assert tokens.by_resource_server["transfer.api.globus.org"]["scope"] == TRANSFER_ALL
    with pytest.raises(globus_sdk.AuthAPIError) as refused:
        client.oauth2_client_credentials_tokens(
            requested_scopes=f"openid[https://auth.globus.org/scopes/{collection}/data_access]"
        )
    assert refused.value.http_status == 400
    assert refused.value.raw_json is not None
    assert refused.value.raw_json["error"] == "invalid_scope"
