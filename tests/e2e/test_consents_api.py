"""AuthClient.get_consents: a client sees the consents rooted at itself with any Auth token;
all of a user's consents need view_consents; nobody sees another user's."""

from __future__ import annotations

import globus_sdk
import pytest

from tests.conftest import User, _new_user
from tests.e2e.helpers import native_login, pointed_at
from tests.live import LiveServer

TRANSFER = "urn:globus:auth:scope:transfer.api.globus.org:all"
VIEW_CONSENTS = "urn:globus:auth:scope:auth.globus.org:view_consents"


def _auth_client(tokens: dict[str, dict[str, str]]) -> globus_sdk.AuthClient:
    token = tokens["auth.globus.org"]["access_token"]
    return globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))


def test_consents_of_this_client_and_all_with_view_consents(
    sdk_env: LiveServer, user: User
) -> None:
    server = sdk_env
    other_app = server.create_client("consents other app", "public_installed_client",
                                     "http://localhost/callback")["id"]
    # Two apps the user consented to: the tutorial client, and another native app.
    tutorial = native_login(server, user.username, user.password, ["openid", TRANSFER])
    native_login(server, user.username, user.password, ["openid", "email"], client_id=other_app)

    with pointed_at(server):
        auth = _auth_client(tutorial)
        mine = auth.get_consents(user.id)
        forest = mine.to_forest()
        scopes = {node.scope_name for tree in forest.trees for node in tree.nodes}
        assert TRANSFER in scopes and "openid" in scopes
        assert {consent["client"] for consent in mine["consents"]} == {
            "61338d24-54d5-408f-a10d-66c06b59f6d2"}

        with pytest.raises(globus_sdk.AuthAPIError) as refused:
            auth.get_consents(user.id, all=True)
        assert refused.value.http_status == 403

        viewer = _auth_client(native_login(
            server, user.username, user.password, ["openid", VIEW_CONSENTS]))
        everything = viewer.get_consents(user.id, all=True)
        clients = {consent["client"] for consent in everything["consents"]}
        assert {"61338d24-54d5-408f-a10d-66c06b59f6d2", other_app} <= clients


def test_nobody_sees_another_users_consents(sdk_env: LiveServer, user: User) -> None:
    server = sdk_env
    stranger = _new_user(server, "mallory")
    with pointed_at(server):
        snoop = _auth_client(native_login(
            server, stranger.username, stranger.password, ["openid", VIEW_CONSENTS]))
        for show_all in (False, True):
            with pytest.raises(globus_sdk.AuthAPIError) as refused:
                snoop.get_consents(user.id, all=show_all)
            assert refused.value.http_status == 403
