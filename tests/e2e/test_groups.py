"""The Groups v2 API through the real GroupsClient, GroupsManager and BatchMembershipActions,
the real `globus group ...` commands, and Auth projects administered by a group."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
import requests

from tests.browser import Browser
from tests.conftest import User, _new_user
from tests.e2e.helpers import TUTORIAL_CLIENT_ID
from tests.e2e.test_globus_cli import globus, login
from tests.live import LiveServer

GROUPS_ALL = "urn:globus:auth:scope:groups.api.globus.org:all"
GROUPS_VIEW = "urn:globus:auth:scope:groups.api.globus.org:view_my_groups_and_memberships"
MANAGE_PROJECTS = "urn:globus:auth:scope:auth.globus.org:manage_projects"


def tokens_for(server: LiveServer, user: User, scopes: str) -> dict[str, dict[str, Any]]:
    """A user's tokens, by resource server, after logging in and consenting in a browser."""
    login_client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    login_client.oauth2_start_flow(requested_scopes=scopes)
    browser = Browser(server.ca_file)
    location = browser.authorize(login_client.oauth2_get_authorize_url(), user.username,
                                 user.password)
    response = login_client.oauth2_exchange_code_for_tokens(browser.code_from_page(location))
    by_server: dict[str, dict[str, Any]] = response.by_resource_server
    return by_server


def groups_client(server: LiveServer, user: User,
                  scopes: str = GROUPS_ALL) -> globus_sdk.GroupsClient:
    token = tokens_for(server, user, scopes)["groups.api.globus.org"]["access_token"]
    return globus_sdk.GroupsClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))


def refused(call: Any, *args: Any, **kwargs: Any) -> globus_sdk.GroupsAPIError:
    with pytest.raises(globus_sdk.GroupsAPIError) as raised:
        call(*args, **kwargs)
    return raised.value


@pytest.fixture
def member(server: LiveServer) -> User:
    return _new_user(server, "bob")


@pytest.fixture
def outsider(server: LiveServer) -> User:
    return _new_user(server, "carol")


def test_groups_and_memberships_through_the_sdk(
    sdk_env: LiveServer, user: User, member: User, outsider: User
) -> None:
    admin = groups_client(sdk_env, user)
    bob = groups_client(sdk_env, member)
    carol = groups_client(sdk_env, outsider)
    admin_groups = globus_sdk.GroupsManager(admin)
    bob_groups = globus_sdk.GroupsManager(bob)

    created = admin_groups.create_group("Lab", "The lab's people")
    group_id = created["id"]
    assert uuid.UUID(group_id)
    assert created["name"] == "Lab" and created["description"] == "The lab's people"
    assert created["parent_id"] is None and created["group_type"] == "regular"
    assert created["enforce_session"] is False and created["session_limit"] == 28800
    assert created["policies"] == {
        "is_high_assurance": False, "authentication_assurance_timeout": 28800,
        "group_visibility": "private", "group_members_visibility": "managers",
        "join_requests": False, "signup_fields": [],
    }
    [mine] = created["my_memberships"]
    assert (mine["identity_id"], mine["username"], mine["role"], mine["status"]) == (
        user.id, user.username, "admin", "active")

    listed = admin.get_my_groups()
    assert [group["id"] for group in listed] == [group_id]
    assert [m["role"] for m in listed[0]["my_memberships"]] == ["admin"]
    assert list(bob.get_my_groups()) == []
    # A private group looks missing to whoever has no membership in it.
    assert refused(bob.get_group, group_id).http_status == 404
    assert refused(carol.get_group, group_id).http_status == 404

    invited = admin.batch_membership_action(
        group_id, globus_sdk.BatchMembershipActions().invite_members([member.id]))
    assert "errors" not in invited
    assert invited["invite"][0]["status"] == "invited"
    assert invited["invite"][0]["username"] == member.username
    assert invited["invite"][0]["invite_time"]
    # An invitee sees the group and the invitation, and lists it under "invited".
    seen = bob.get_group(group_id, include="my_memberships")
    assert [m["status"] for m in seen["my_memberships"]] == ["invited"]
    assert [g["id"] for g in bob.get_my_groups(statuses="invited")] == [group_id]
    assert list(bob.get_my_groups()) == []
    accepted = bob_groups.accept_invite(group_id, member.id)
    assert accepted["accept"][0]["status"] == "active"
    assert [g["id"] for g in bob.get_my_groups(statuses=["active", "invited"])] == [group_id]

    # A plain member may not manage members: the whole batch is refused.
    error = refused(bob_groups.add_member, group_id, outsider.id)
    assert error.http_status == 403 and error.code == "FORBIDDEN"
    assert "managers and admins" in (error.message or "")
    # Members see only themselves while the member list is for managers...
    bob_view = bob.get_group(group_id, include=["memberships", "allowed_actions"])
    assert [m["identity_id"] for m in bob_view["memberships"]] == [member.id]
    assert bob_view["allowed_actions"]["leave"] is True
    assert bob_view["allowed_actions"]["add"] is False
    admin_view = admin.get_group(group_id, include="memberships")
    assert {m["username"]: m["role"] for m in admin_view["memberships"]} == {
        user.username: "admin", member.username: "member"}
    # ... and everyone once the policy opens it to members.
    policies = admin_groups.set_group_policies(
        group_id, is_high_assurance=False, group_visibility="private",
        group_members_visibility="members", join_requests=False, signup_fields=["department"])
    assert policies["group_members_visibility"] == "members"
    assert policies["signup_fields"] == ["department"]
    assert admin.get_group_policies(group_id).data == policies.data
    assert len(bob.get_group(group_id, include="memberships")["memberships"]) == 2
    assert refused(bob.set_group_policies, group_id, {"join_requests": True}).http_status == 403

    # Promoted to manager, Bob adds Carol, but cannot make anyone an admin.
    promoted = admin_groups.change_role(group_id, member.id, "manager")
    assert promoted["change_role"][0]["role"] == "manager"
    added = bob.batch_membership_action(
        group_id, globus_sdk.BatchMembershipActions().add_members([outsider.id]))
    assert added["add"][0]["status"] == "active" and added["add"][0]["role"] == "member"
    assert [g["id"] for g in carol.get_my_groups()] == [group_id]
    too_high = bob_groups.add_member(group_id, str(uuid.uuid4()), role="admin")
    assert too_high["add"] == []
    assert too_high["errors"]["add"][0]["code"] == "FORBIDDEN"
    assert refused(bob_groups.change_role, group_id, outsider.id, "manager").http_status == 403

    # Items succeed or fail alone; an unknown identity is an error entry, not a failure.
    nobody = str(uuid.uuid4())
    mixed = admin.batch_membership_action(group_id, {
        "add": [{"identity_id": outsider.id}, {"identity_id": nobody}],
        "remove": [{"identity_id": nobody}],
    })
    assert mixed["add"] == [] and mixed["remove"] == []
    assert {(e["identity_id"], e["code"]) for e in mixed["errors"]["add"]} == {
        (outsider.id, "ALREADY_ACTIVE"), (nobody, "IDENTITY_NOT_FOUND")}
    assert mixed["errors"]["remove"][0]["detail"] == "Identity has no membership in group."

    removed = bob_groups.remove_member(group_id, outsider.id)
    assert removed["remove"][0]["status"] == "removed"
    assert list(carol.get_my_groups()) == []
    assert refused(carol.get_group, group_id).http_status == 404

    # The last admin can neither leave nor be demoted; a second admin frees the first.
    stuck = admin_groups.leave(group_id, user.id)
    assert stuck["leave"] == [] and stuck["errors"]["leave"][0]["code"] == "LAST_ADMIN"
    demoted = admin_groups.change_role(group_id, user.id, "member")
    assert demoted["errors"]["change_role"][0]["code"] == "LAST_ADMIN"
    # Nobody acts on another person's identity with the self-service actions.
    not_mine = bob_groups.leave(group_id, user.id)
    assert not_mine["errors"]["leave"][0]["code"] == "FORBIDDEN"

    left = bob_groups.leave(group_id, member.id)
    assert left["leave"][0]["status"] == "left"
    assert list(bob.get_my_groups()) == []
    assert [g["id"] for g in bob.get_my_groups(statuses="left")] == [group_id]

    renamed = admin.update_group(group_id, {"name": "Lab 2", "description": "Renamed"})
    assert renamed["name"] == "Lab 2" and renamed["description"] == "Renamed"
    assert admin.get_group(group_id)["name"] == "Lab 2"

    deleted = admin.delete_group(group_id)
    assert deleted["id"] == group_id and deleted["name"] == "Lab 2"
    assert refused(admin.get_group, group_id).http_status == 404
    assert list(admin.get_my_groups()) == []


def test_join_requests_subgroups_and_visibility(
    sdk_env: LiveServer, user: User, member: User, outsider: User
) -> None:
    admin = groups_client(sdk_env, user)
    bob = globus_sdk.GroupsManager(groups_client(sdk_env, member))
    carol = globus_sdk.GroupsManager(groups_client(sdk_env, outsider))
    group_id = admin.create_group({"name": "Open lab", "description": None})["id"]
    assert admin.get_group(group_id)["description"] == ""

    # Private, without join requests: an outsider can neither see nor ask.
    assert refused(bob.request_join, group_id, member.id).http_status == 404
    admin.set_group_policies(group_id, {"group_visibility": "authenticated",
                                        "join_requests": True})
    # Visible to anyone signed in, though the member list stays closed.
    seen = bob.client.get_group(group_id, include="memberships,my_memberships")
    assert seen["my_memberships"] == [] and seen["memberships"] == []
    joined = bob.join(group_id, member.id)
    assert joined["join"] == [] and joined["errors"]["join"][0]["code"] == "JOIN_NOT_ALLOWED"
    asked = bob.request_join(group_id, member.id)
    assert asked["request_join"][0]["status"] == "pending"
    carol.request_join(group_id, outsider.id)
    applicants = admin.get_group(group_id, include="memberships")["memberships"]
    assert {m["username"]: m["status"] for m in applicants} == {
        user.username: "active", member.username: "pending", outsider.username: "pending"}
    decided = admin.batch_membership_action(
        group_id,
        globus_sdk.BatchMembershipActions().approve_pending([member.id])
        .reject_join_requests([outsider.id]),
    )
    assert decided["approve"][0]["status"] == "active"
    assert decided["reject"][0]["status"] == "rejected"
    again = admin.batch_membership_action(
        group_id, globus_sdk.BatchMembershipActions().approve_pending([outsider.id]))
    assert again["errors"]["approve"][0]["code"] == "NOT_PENDING"

    # An invitation can be declined, and re-invited and accepted with `join`.
    admin.batch_membership_action(
        group_id, globus_sdk.BatchMembershipActions().invite_members([outsider.id]))
    assert carol.decline_invite(group_id, outsider.id)["decline"][0]["status"] == "declined"
    admin.batch_membership_action(
        group_id,
        globus_sdk.BatchMembershipActions().invite_members([outsider.id], role="manager"))
    joined = carol.join(group_id, outsider.id)
    assert (joined["join"][0]["status"], joined["join"][0]["role"]) == ("active", "manager")

    # Subgroups are made by admins of the parent, and hold the parent until deleted.
    child = admin.create_group({"name": "Sub", "parent_id": group_id})
    assert child["parent_id"] == group_id
    assert admin.get_group(group_id, include="child_ids")["child_ids"] == [child["id"]]
    error = refused(carol.client.create_group, {"name": "Mine", "parent_id": group_id})
    assert error.http_status == 403
    assert refused(admin.delete_group, group_id).http_status == 409
    admin.delete_group(child["id"])
    admin.delete_group(group_id)


def test_bad_requests_get_groups_errors(
    sdk_env: LiveServer, user: User, member: User
) -> None:
    tokens = tokens_for(sdk_env, user, f"openid {GROUPS_ALL}")
    admin = globus_sdk.GroupsClient(authorizer=globus_sdk.AccessTokenAuthorizer(
        tokens["groups.api.globus.org"]["access_token"]))
    group_id = admin.create_group({"name": "Errors"})["id"]

    missing = refused(admin.get_group, uuid.uuid4())
    assert (missing.http_status, missing.code) == (404, "NOT_FOUND")
    assert "not found" in (missing.message or "")
    assert refused(admin.get_group, "not-a-uuid").http_status == 422
    assert refused(admin.delete_group, "not-a-uuid").http_status == 422
    for body in ({"name": 5}, {"name": "  "}, {"description": "x"}, {"name": "x", "parent_id": 7},
                 {"name": "x", "subscription_admin_verified_id": str(uuid.uuid4())}):
        error = refused(admin.create_group, body)
        assert error.http_status == 422, body
        assert error.message, body
    for actions in ({"add": "everyone"}, {"add": [{"identity_id": "nope"}]}, {"explode": []},
                    {"change_role": [{"identity_id": member.id}]},
                    {"add": [{"identity_id": member.id, "role": "owner"}]}, {}):
        assert refused(admin.batch_membership_action, group_id, actions).http_status == 422
    for policies in ({"group_visibility": "everyone"}, {"join_requests": "yes"},
                     {"signup_fields": ["shoe_size"]}, {"authentication_assurance_timeout": -1},
                     {"is_high_assurance": True}):
        assert refused(admin.set_group_policies, group_id, policies).http_status == 422
    assert refused(admin.get_my_groups, statuses="happy").http_status == 422
    assert refused(admin.get_group_by_subscription_id, uuid.uuid4()).http_status == 404
    assert refused(admin.get_group_by_subscription_id, "x").http_status == 422
    assert refused(admin.set_subscription_admin_verified, group_id,
                   uuid.uuid4()).http_status == 422
    verified = admin.set_subscription_admin_verified(group_id, None)
    assert verified.data == {"group_id": group_id, "subscription_admin_verified_id": None}
    assert refused(admin.get_group, group_id, include="secrets").http_status == 422

    url = sdk_env.base_url + f"groups/v2/groups/{group_id}"
    bearer = {"Authorization": f"Bearer {tokens['groups.api.globus.org']['access_token']}"}
    not_json = requests.put(url, data=b"{nope", headers=bearer, verify=sdk_env.ca_file,
                            timeout=30)
    assert not_json.status_code == 400 and not_json.json()["code"] == "BAD_REQUEST"
    a_list = requests.post(url, json=[1], headers=bearer, verify=sdk_env.ca_file, timeout=30)
    assert a_list.status_code == 400
    assert set(a_list.json()) == {"code", "detail"}
    wrong_method = requests.patch(url, json={}, headers=bearer, verify=sdk_env.ca_file,
                                  timeout=30)
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "METHOD_NOT_ALLOWED"

    # No token, a dead one, or one for another service.
    anonymous = requests.get(url, verify=sdk_env.ca_file, timeout=30)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "UNAUTHORIZED"
    forged = requests.get(url, headers={"Authorization": "Bearer forged"},
                          verify=sdk_env.ca_file, timeout=30)
    assert forged.status_code == 401
    auth_token = tokens["auth.globus.org"]["access_token"]
    wrong_service = globus_sdk.GroupsClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(auth_token))
    error = refused(wrong_service.get_my_groups)
    assert (error.http_status, error.code) == (403, "FORBIDDEN")

    # A view-only token reads but never writes.
    viewer = groups_client(sdk_env, user, GROUPS_VIEW)
    assert [g["id"] for g in viewer.get_my_groups()] == [group_id]
    assert viewer.get_group(group_id, include="allowed_actions")["allowed_actions"][
        "delete_group"] is False
    for call, args in ((viewer.create_group, ({"name": "No"},)),
                       (viewer.update_group, (group_id, {"name": "No"})),
                       (viewer.delete_group, (group_id,)),
                       (viewer.set_group_policies, (group_id, {"join_requests": True})),
                       (viewer.batch_membership_action, (group_id, {"leave": [
                           {"identity_id": user.id}]}))):
        assert refused(call, *args).http_status == 403
    assert admin.get_group(group_id)["name"] == "Errors"


def test_a_group_administers_an_auth_project(
    sdk_env: LiveServer, user: User, member: User, outsider: User
) -> None:
    def auth_client(person: User) -> globus_sdk.AuthClient:
        token = tokens_for(sdk_env, person, f"openid {MANAGE_PROJECTS}")["auth.globus.org"]
        return globus_sdk.AuthClient(
            authorizer=globus_sdk.AccessTokenAuthorizer(token["access_token"]))

    admin_groups = globus_sdk.GroupsManager(groups_client(sdk_env, user))
    group_id = admin_groups.create_group("Project admins", "")["id"]
    admin_groups.add_member(group_id, member.id)
    owner = auth_client(user)
    project = owner.create_project("Shared", "lab@example.org", admin_ids=[user.id],
                                   admin_group_ids=[group_id])["project"]
    assert project["admin_group_ids"] == [group_id]

    bob = auth_client(member)
    carol = auth_client(outsider)
    assert [p["id"] for p in bob.get_projects()] == [project["id"]]
    renamed = bob.update_project(project["id"], display_name="Shared by Bob")["project"]
    assert renamed["display_name"] == "Shared by Bob"
    client = bob.create_client("Bob's app", project["id"], public_client=True)["client"]
    assert owner.get_client(client_id=client["id"])["client"]["name"] == "Bob's app"
    assert list(carol.get_projects()) == []
    with pytest.raises(globus_sdk.AuthAPIError) as hidden:
        carol.get_project(project["id"])
    assert hidden.value.http_status == 404

    # Membership is what counts: once removed from the group, Bob is no admin.
    admin_groups.remove_member(group_id, member.id)
    assert list(bob.get_projects()) == []
    with pytest.raises(globus_sdk.AuthAPIError) as gone:
        bob.get_project(project["id"])
    assert gone.value.http_status == 404


# --- the real globus-cli ----------------------------------------------------------------


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def _record(output: str) -> dict[str, str]:
    """A `display.RECORD` print-out ("Field Name: value" lines) as a dict."""
    return {key.strip(): value.strip() for key, _, value in
            (line.partition(":") for line in output.splitlines() if ":" in line)}


def test_globus_group_commands(
    server: LiveServer, user: User, member: User, outsider: User,
    isthmus_env: dict[str, str], answer_login_prompt: Any, tmp_path: Path,
) -> None:
    admin_env = isthmus_env
    bob_home = tmp_path / "bob-home"
    bob_home.mkdir()
    bob_env = {**isthmus_env, "HOME": str(bob_home)}
    login(admin_env, user, answer_login_prompt)
    login(bob_env, member, answer_login_prompt)

    created = _ok(globus(admin_env, "group", "create", "CLI Lab", "--description", "Via CLI"))
    found = re.fullmatch(r"Group (\S+) created successfully", created.strip())
    assert found, created
    group_id = found.group(1)

    listing = _ok(globus(admin_env, "group", "list"))
    row = next(line for line in listing.splitlines() if group_id in line)
    assert "CLI Lab" in row and "admin" in row and "regular" in row
    shown = _record(_ok(globus(admin_env, "group", "show", group_id)))
    assert shown["Name"] == "CLI Lab" and shown["Description"] == "Via CLI"
    assert shown["Visibility"] == "private" and shown["Roles"] == "admin"
    assert shown["Session Enforcement"] == "not strict"

    added = _record(_ok(globus(admin_env, "group", "member", "add", group_id, member.username)))
    assert added["Added User ID"] == member.id
    assert added["Added User Username"] == member.username
    again = globus(admin_env, "group", "member", "add", group_id, member.id)
    assert again.returncode == 1
    assert "already an active member of the group" in again.stderr
    members = _ok(globus(admin_env, "group", "member", "list", group_id))
    assert re.search(rf"{re.escape(user.username)}\s*\|\s*admin\s*\|\s*active", members)
    assert re.search(rf"{re.escape(member.username)}\s*\|\s*member\s*\|\s*active", members)

    # Bob sees the group as a member, and may not manage its members.
    assert "member" in next(line for line in _ok(globus(bob_env, "group", "list")).splitlines()
                            if group_id in line)
    denied = globus(bob_env, "group", "member", "add", group_id, outsider.username)
    assert denied.returncode != 0
    assert "403" in denied.stderr and "FORBIDDEN" in denied.stderr
    not_admin = globus(bob_env, "group", "update", group_id, "--name", "Bob's lab")
    assert not_admin.returncode != 0 and "403" in not_admin.stderr

    left = _ok(globus(bob_env, "group", "leave", group_id))
    assert left.strip() == f"Left group as {member.id} ({member.username})"
    hidden = globus(bob_env, "group", "show", group_id)
    assert hidden.returncode != 0 and "404" in hidden.stderr
    refused_join = globus(bob_env, "group", "join", group_id)
    assert refused_join.returncode != 0 and "404" in refused_join.stderr

    policies = _ok(globus(admin_env, "group", "set-policies", group_id, "--join-requests",
                          "--visibility", "authenticated", "--signup-fields", "department"))
    assert "Group policies updated successfully" in policies
    shown = _record(_ok(globus(admin_env, "group", "show", group_id)))
    assert shown["Visibility"] == "authenticated"
    assert shown["Join Requests Allowed"] == "True"
    assert shown["Signup Fields"] == "department"
    no_invite = globus(bob_env, "group", "join", group_id)
    assert no_invite.returncode == 1 and "needs an invitation" in no_invite.stderr
    requested = _record(_ok(globus(bob_env, "group", "join", group_id, "--request")))
    assert requested["User ID"] == member.id and requested["Group ID"] == group_id
    approved = _record(_ok(globus(admin_env, "group", "member", "approve", group_id,
                                  member.username)))
    assert approved["Approved User Username"] == member.username

    invited = _record(_ok(globus(admin_env, "group", "member", "invite", group_id,
                                 outsider.username, "--role", "manager")))
    assert invited["Invited User ID"] == outsider.id
    members = _ok(globus(admin_env, "group", "member", "list", group_id))
    assert re.search(rf"{re.escape(outsider.username)}\s*\|\s*manager\s*\|\s*invited", members)

    updated = _ok(globus(admin_env, "group", "update", group_id, "--name", "CLI Lab 2",
                         "--terms-and-conditions", "Be kind"))
    assert "Group updated successfully" in updated
    shown = _record(_ok(globus(admin_env, "group", "show", group_id)))
    assert shown["Name"] == "CLI Lab 2" and shown["Description"] == "Via CLI"
    assert shown["Terms and Conditions"] == "Be kind"
    # Isthmus has no subscriptions: a group can only be un-verified.
    unverified = globus(admin_env, "group", "set-subscription-admin-verified", group_id, "null")
    assert "verification updated successfully" in _ok(unverified)
    no_subscription = str(uuid.uuid4())
    refused_verify = globus(admin_env, "group", "set-subscription-admin-verified", group_id,
                            no_subscription)
    assert refused_verify.returncode != 0 and "SUBSCRIPTION_NOT_FOUND" in refused_verify.stderr
    no_info = globus(admin_env, "group", "get-subscription-info", no_subscription)
    assert no_info.returncode != 0 and "404" in no_info.stderr

    removed = _record(_ok(globus(admin_env, "group", "member", "remove", group_id,
                                 member.username)))
    assert removed["Removed User ID"] == member.id
    last_admin = globus(admin_env, "group", "leave", group_id)
    assert last_admin.returncode == 1 and "last admin" in last_admin.stderr

    _ok(globus(admin_env, "group", "delete", group_id))
    gone = globus(admin_env, "group", "show", group_id)
    assert gone.returncode != 0 and "404" in gone.stderr
    assert group_id not in _ok(globus(admin_env, "group", "list"))
