"""The Auth management API (projects, policies, clients, credentials, scopes) via AuthClient."""

from __future__ import annotations

import uuid

import globus_sdk
import pytest
from globus_sdk.scopes import AuthScopes

from tests.conftest import User, _new_user
from tests.e2e.helpers import MANAGE, TRANSFER_ALL, auth_client_for
from tests.live import LiveServer


@pytest.fixture
def admin(sdk_env: LiveServer, user: User) -> globus_sdk.AuthClient:
    return auth_client_for(sdk_env, user, f"openid profile email {MANAGE}")


def status_of(call: object) -> int:
    assert callable(call)
    with pytest.raises(globus_sdk.AuthAPIError) as error:
        call()
    return int(error.value.http_status)


def test_projects_clients_credentials_and_scopes(
    sdk_env: LiveServer, admin: globus_sdk.AuthClient, user: User
) -> None:
    project = admin.create_project("Lab tools", "lab@example.org", admin_ids=user.id)["project"]
    assert project["admin_ids"] == [user.id]
    assert project["admins"]["identities"][0]["username"] == user.username
    assert admin.get_project(project["id"])["project"]["display_name"] == "Lab tools"
    assert [p["id"] for p in admin.get_projects()] == [project["id"]]
    updated = admin.update_project(project["id"], display_name="Lab tools 2")["project"]
    assert updated["display_name"] == "Lab tools 2"

    client = admin.create_client(
        "Portal", project["id"], public_client=False,
        redirect_uris=["https://portal.example.org/cb"], visibility="private",
        terms_and_conditions="https://portal.example.org/terms",
        privacy_policy="https://portal.example.org/privacy",
        additional_fields={"fqdns": ["portal.example.org"]},
    )["client"]
    assert client["client_type"] == "confidential_client"
    assert client["links"]["terms_and_conditions"] == "https://portal.example.org/terms"
    assert admin.get_client(client_id=client["id"])["client"]["name"] == "Portal"
    assert admin.get_client(fqdn="portal.example.org")["client"]["id"] == client["id"]
    assert [c["id"] for c in admin.get_clients()] == [client["id"]]
    renamed = admin.update_client(client["id"], name="Portal 2")["client"]
    assert renamed["name"] == "Portal 2"

    credential = admin.create_client_credential(client["id"], "ci")["credential"]
    assert credential["secret"]
    listed = list(admin.get_client_credentials(client["id"]))
    assert [c["id"] for c in listed] == [credential["id"]]
    assert listed[0]["secret"] is None
    confidential = globus_sdk.ConfidentialAppAuthClient(client["id"], credential["secret"])
    assert confidential.oauth2_client_credentials_tokens(requested_scopes="openid")

    transfer_scope = next(iter(admin.get_scopes(scope_strings=[TRANSFER_ALL])))
    scope = admin.create_scope(
        client["id"], "Portal access", "Use the portal", "portal_access",
        dependent_scopes=[globus_sdk.DependentScopeSpec(transfer_scope["id"], True, False)],
    )["scope"]
    assert scope["scope_string"] == (
        f"https://auth.globus.org/scopes/{client['id']}/portal_access"
    )
    assert scope["dependent_scopes"] == [
        {"scope": transfer_scope["id"], "optional": True, "requires_refresh_token": False}
    ]
    assert next(iter(admin.get_scopes(ids=[scope["id"]])))["name"] == "Portal access"
    assert admin.update_scope(scope["id"], name="Portal")["scope"]["name"] == "Portal"
    assert status_of(lambda: admin.create_scope(
        client["id"], "Again", "Duplicate suffix", "portal_access")) == 409

    assert status_of(lambda: admin.delete_project(project["id"])) == 409
    assert admin.delete_scope(scope["id"])["scope"]["id"] == scope["id"]
    admin.delete_client_credential(client["id"], credential["id"])
    with pytest.raises(globus_sdk.AuthAPIError) as revoked:
        confidential.oauth2_client_credentials_tokens(requested_scopes="openid")
    assert revoked.value.http_status == 401
    assert admin.delete_client(client["id"])["client"]["id"] == client["id"]
    assert admin.delete_project(project["id"])["project"]["id"] == project["id"]
    assert status_of(lambda: admin.get_project(project["id"])) == 404


def test_policies(admin: globus_sdk.AuthClient, user: User) -> None:
    project = admin.create_project("Secure", "sec@example.org", admin_ids=[user.id])["project"]
    policy = admin.create_policy(
        project_id=project["id"], display_name="Campus only", description="Campus logins",
        high_assurance=True, authentication_assurance_timeout=3600,
        domain_constraints_include=["isthmus.local"], required_mfa=False,
    )["policy"]
    assert policy["high_assurance"] is True
    assert policy["domain_constraints_include"] == ["isthmus.local"]
    assert admin.get_policy(policy["id"])["policy"]["display_name"] == "Campus only"
    assert [p["id"] for p in admin.get_policies()] == [policy["id"]]
    changed = admin.update_policy(policy["id"], authentication_assurance_timeout=60)["policy"]
    assert changed["authentication_assurance_timeout"] == 60
    assert admin.delete_policy(policy["id"])["policy"]["id"] == policy["id"]
    assert status_of(lambda: admin.get_policy(policy["id"])) == 404


def test_other_users_see_nothing_private_and_scope_is_required(
    sdk_env: LiveServer, admin: globus_sdk.AuthClient, user: User
) -> None:
    project = admin.create_project("Mine", "me@example.org", admin_ids=user.id)["project"]
    private = admin.create_client("Private", project["id"], public_client=False)["client"]
    public = admin.create_client("Shared", project["id"], public_client=True,
                                 visibility="public")["client"]

    stranger_user = _new_user(sdk_env, "stranger")
    stranger = auth_client_for(sdk_env, stranger_user, f"openid {MANAGE}")
    assert status_of(lambda: stranger.get_project(project["id"])) == 404
    assert list(stranger.get_projects()) == []
    assert status_of(lambda: stranger.get_client(client_id=private["id"])) == 404
    assert stranger.get_client(client_id=public["id"])["client"]["name"] == "Shared"
    assert status_of(lambda: stranger.update_client(public["id"], name="Mine now")) == 403
    assert status_of(lambda: stranger.delete_client(private["id"])) == 404
    assert status_of(lambda: stranger.create_client(
        "Sneaky", project["id"], public_client=True)) == 404

    without_scope = auth_client_for(sdk_env, user, str(AuthScopes.openid))
    assert status_of(lambda: without_scope.get_projects()) == 403
    assert status_of(lambda: admin.get_project(str(uuid.uuid4()))) == 404
    assert status_of(lambda: admin.get_project("not-a-uuid")) == 400


def test_child_clients_with_basic_credentials(sdk_env: LiveServer) -> None:
    parent = sdk_env.create_client("parent", "confidential_client")
    confidential = globus_sdk.ConfidentialAppAuthClient(parent["id"], parent["secret"])
    child = confidential.create_child_client(
        "child", public_client=True, redirect_uris=["https://child.example.org/cb"]
    )["client"]
    assert child["parent_client"] == parent["id"]
    assert child["public_client"] is True
    assert child["redirect_uris"] == ["https://child.example.org/cb"]


@pytest.mark.parametrize("timeout", [2**31, 2**70, 0, -5, 1.5, True])
def test_out_of_range_numbers_are_refused_not_stored(
    admin: globus_sdk.AuthClient, user: User, timeout: object
) -> None:
    """An integer past the column's range was a 500 (SQLite: OverflowError, PostgreSQL:
    integer out of range); the API's own check now refuses it."""
    project = admin.create_project("Numbers", "n@example.org", admin_ids=[user.id])["project"]
    assert status_of(lambda: admin.create_policy(
        project_id=project["id"], display_name="Long", description="",
        high_assurance=True, authentication_assurance_timeout=timeout)) == 400
    policy = admin.create_policy(project_id=project["id"], display_name="Short",
                                 description="")["policy"]
    assert status_of(lambda: admin.update_policy(
        policy["id"], authentication_assurance_timeout=timeout)) == 400
    largest = admin.update_policy(policy["id"], authentication_assurance_timeout=2**31 - 1)
    assert largest["policy"]["authentication_assurance_timeout"] == 2**31 - 1


def test_scope_suffix_is_checked_whole(admin: globus_sdk.AuthClient, user: User) -> None:
    """The suffix pattern ended in "$", which also accepts a trailing newline."""
    project = admin.create_project("Suffixes", "s@example.org", admin_ids=[user.id])["project"]
    client = admin.create_client("Suffixes", project["id"], public_client=False)["client"]
    for suffix in ("portal\n", "Portal", "por tal", "x" * 101, ""):
        assert status_of(lambda suffix=suffix: admin.create_scope(
            client["id"], "Portal", "Portal", suffix)) == 400
    assert admin.create_scope(client["id"], "Portal", "Portal", "portal_2")["scope"]
