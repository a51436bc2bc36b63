"""Identity lookups through the SDK: get_identities, provisioning, IdentityMap, providers."""

from __future__ import annotations

import uuid

import globus_sdk

from tests.conftest import User
from tests.e2e.helpers import client_token_auth
from tests.live import LiveServer


def test_get_identities_by_usernames_and_ids(sdk_env: LiveServer, user: User) -> None:
    auth = client_token_auth(sdk_env)
    by_name = auth.get_identities(usernames=user.username.upper())["identities"]
    assert [identity["id"] for identity in by_name] == [user.id]
    assert by_name[0]["username"] == user.username
    assert by_name[0]["status"] == "used"
    by_id = auth.get_identities(ids=[user.id, user.id])["identities"]
    assert [identity["username"] for identity in by_id] == [user.username]
    assert auth.get_identities(usernames="nobody@isthmus.local")["identities"] == []


def test_provisioned_identity_is_taken_over_by_the_user(sdk_env: LiveServer) -> None:
    auth = client_token_auth(sdk_env)
    provisioned = auth.get_identities(usernames="newcomer@isthmus.local",
                                      provision=True)["identities"]
    assert len(provisioned) == 1
    assert provisioned[0]["status"] == "unused"
    # Unknown domains are not ours to provision.
    assert auth.get_identities(usernames="x@elsewhere.example", provision=True)[
        "identities"] == []
    created = sdk_env.create_user("newcomer", "pw")
    assert created["id"] == provisioned[0]["id"]
    assert auth.get_identities(ids=created["id"])["identities"][0]["status"] == "used"


def test_identity_map_resolves_many(sdk_env: LiveServer, user: User) -> None:
    auth = client_token_auth(sdk_env)
    prefix = uuid.uuid4().hex[:6]
    names = [f"member{prefix}{number}@isthmus.local" for number in range(250)]
    provisioned = {}
    for start in range(0, len(names), 100):  # the API takes at most 1,000 per call
        for identity in auth.get_identities(usernames=names[start:start + 100],
                                            provision=True)["identities"]:
            provisioned[identity["username"]] = identity["id"]
    assert len(provisioned) == 250
    # Half looked up by id, half by username: IdentityMap batches each kind by 100.
    by_id = [provisioned[name] for name in names[:125]]
    identity_map = globus_sdk.IdentityMap(auth, [*by_id, *names[125:], user.username])
    for name in names[:125]:
        assert identity_map[provisioned[name]]["username"] == name
    for name in names[125:]:
        assert identity_map[name]["id"] == provisioned[name]
    assert identity_map[user.username]["id"] == user.id


def test_identity_providers(sdk_env: LiveServer) -> None:
    auth = client_token_auth(sdk_env)
    local = auth.get_identity_providers(domains=["isthmus.local"])["identity_providers"]
    assert [idp["short_name"] for idp in local] == ["local"]
    assert local[0]["domains"] == ["isthmus.local"]
    again = auth.get_identity_providers(ids=[local[0]["id"]])["identity_providers"]
    assert again == local
