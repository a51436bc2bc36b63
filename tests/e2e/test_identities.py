"""Identity lookups through the SDK: get_identities, provisioning, IdentityMap, providers."""

from __future__ import annotations

import math
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


def identity_requests(server: LiveServer, since: int) -> list[list[str]]:
    """The access log's /v2/api/identities lines after the first `since` lines, split."""
    lines = server.access_log_lines()[since:]
    return [line.split() for line in lines if line.split()[3] == "/v2/api/identities"]


def test_identity_map_resolves_many_in_its_own_batches(sdk_env: LiveServer, user: User) -> None:
    auth = client_token_auth(sdk_env)
    prefix = uuid.uuid4().hex[:6]
    names = [f"member{prefix}{number}@isthmus.local" for number in range(500)]
    provisioned = {}
    for start in range(0, len(names), 100):  # the API takes at most 1,000 per call
        for identity in auth.get_identities(usernames=names[start:start + 100],
                                            provision=True)["identities"]:
            provisioned[identity["username"]] = identity["id"]
    assert len(provisioned) == 500

    # Half looked up by id, half by username: IdentityMap batches each kind by 100,
    # and the server sees exactly one request per batch.
    by_id = [provisioned[name] for name in names[:250]]
    by_name = [*names[250:], user.username]
    since = len(sdk_env.access_log_lines())
    identity_map = globus_sdk.IdentityMap(auth, [*by_id, *by_name])
    for name in names[:250]:
        assert identity_map[provisioned[name]]["username"] == name
    for name in names[250:]:
        assert identity_map[name]["id"] == provisioned[name]
    assert identity_map[user.username]["id"] == user.id
    logged = identity_requests(sdk_env, since)
    assert len(logged) == math.ceil(len(by_id) / 100) + math.ceil(len(by_name) / 100) == 6
    assert all(fields[2] == "GET" and fields[4] == "200" for fields in logged)
    # The query string (ids, usernames) stays out of the log.
    assert not any(prefix in line or "?" in line for line in sdk_env.access_log_lines())

    # A batch size of its own is respected too: 500 ids in batches of 64.
    since = len(sdk_env.access_log_lines())
    small_batches = globus_sdk.IdentityMap(auth, list(provisioned.values()), id_batch_size=64)
    assert {small_batches[value]["id"] for value in provisioned.values()} == set(
        provisioned.values())
    assert len(identity_requests(sdk_env, since)) == math.ceil(500 / 64) == 8


def test_identity_providers(sdk_env: LiveServer) -> None:
    auth = client_token_auth(sdk_env)
    local = auth.get_identity_providers(domains=["isthmus.local"])["identity_providers"]
    assert [idp["short_name"] for idp in local] == ["local"]
    assert local[0]["domains"] == ["isthmus.local"]
    again = auth.get_identity_providers(ids=[local[0]["id"]])["identity_providers"]
    assert again == local
