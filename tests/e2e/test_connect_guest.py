"""Guest collections, user credentials, sharing policies and access rules, end to end.

A user registers their POSIX user credential and shares a folder of the server's files
collection as a guest collection (`GCSClient`), grants another identity read access
through Transfer's access rules (`TransferClient`, globus-cli), and what each identity
may then do is decided by `connect.access.resolve_guest` on the live server's own rows
(the data plane's entry point). Sharing is refused where the policies forbid it.
"""

from __future__ import annotations

import getpass
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from globus_sdk import (
    GCSAPIError,
    GCSClient,
    GCSRoleDocument,
    GuestCollectionDocument,
    MappedCollectionDocument,
    POSIXCollectionPolicies,
    StorageGatewayDocument,
    TransferAPIError,
    TransferClient,
    UserCredentialDocument,
)

from isthmus.core.config import Settings
from isthmus.core.errors import APIError
from isthmus.deployment import Deployment, open_services
from tests.conftest import EndpointSite, User, _new_user, shell_environment
from tests.e2e.helpers import cli_login, globus, pointed_at
from tests.e2e.test_connect_manager_api import POSIX, expect_error, gcs_client
from tests.e2e.test_transfer_registry import transfer_client

ACCOUNT = getpass.getuser()  # the account the server runs as, which its users map to


@pytest.fixture(scope="module")
def site(endpoint_site: EndpointSite) -> Iterator[EndpointSite]:
    with pointed_at(endpoint_site.server):
        yield endpoint_site


@pytest.fixture(scope="module")
def ann(site: EndpointSite) -> User:
    return _new_user(site.server, "ann")


@pytest.fixture(scope="module")
def bob(site: EndpointSite) -> User:
    return _new_user(site.server, "bob")


@pytest.fixture(scope="module")
def carl(site: EndpointSite) -> User:
    return _new_user(site.server, "carl")


@pytest.fixture(scope="module")
def ann_gcs(site: EndpointSite, ann: User) -> GCSClient:
    return gcs_client(site, ann)


@pytest.fixture(scope="module")
def owner_gcs(site: EndpointSite) -> GCSClient:
    return gcs_client(site, site.owner)


@pytest.fixture(scope="module")
def ann_tc(site: EndpointSite, ann: User) -> TransferClient:
    return transfer_client(site, ann)


@pytest.fixture(scope="module")
def bob_tc(site: EndpointSite, bob: User) -> TransferClient:
    return transfer_client(site, bob)


@pytest.fixture(scope="module")
def carl_tc(site: EndpointSite, carl: User) -> TransferClient:
    return transfer_client(site, carl)


@pytest.fixture(scope="module")
def files_gateway(site: EndpointSite, ann_gcs: GCSClient) -> str:
    """The storage gateway of the server's "<host> files" collection."""
    return str(ann_gcs.get_collection(site.collection_id)["storage_gateway_id"])


@pytest.fixture(scope="module")
def ann_credential(ann_gcs: GCSClient, ann: User, files_gateway: str) -> dict[str, Any]:
    created = ann_gcs.create_user_credential(UserCredentialDocument(
        storage_gateway_id=files_gateway, identity_id=ann.id, username=ACCOUNT,
        display_name="ann on the files gateway"))
    assert created.http_status == 201
    assert created.full_data["message"] == f"Created User Credential {created['id']}"
    return dict(created.data)


@pytest.fixture(scope="module")
def made(owner_gcs: GCSClient) -> Iterator[list[str]]:
    """Collections this module makes, deleted afterwards (the server is shared): the
    endpoint's owner administers them all."""
    collection_ids: list[str] = []
    yield collection_ids
    for collection_id in reversed(collection_ids):
        try:
            owner_gcs.delete_collection(collection_id)
        except GCSAPIError as error:
            assert error.http_status == 404, error.text


@pytest.fixture(scope="module")
def guest(site: EndpointSite, ann_gcs: GCSClient, ann_credential: dict[str, Any],
          made: list[str]) -> str:
    created = ann_gcs.create_collection(GuestCollectionDocument(
        display_name="ann's results", mapped_collection_id=site.collection_id,
        user_credential_id=ann_credential["id"], collection_base_path="/~/results",
        description="simulation results"))
    assert created.http_status == 201
    made.append(str(created["id"]))
    return str(created["id"])


Decide = Callable[[str, "User | None", str], str]


@pytest.fixture(scope="module")
def decide(site: EndpointSite) -> Iterator[Decide]:
    """What an identity (None: anonymous) may do at a guest path, as the data plane asks it:
    `connect.access.resolve_guest` through the server's own deployment and database."""
    data_dir = site.server.data_dir
    deployment: Deployment = open_services(Settings.load(
        data_dir, database_url=f"sqlite:///{data_dir / 'isthmus.db'}"))

    def permissions(guest_id: str, who: User | None, path: str) -> str:
        identities = [uuid.UUID(who.id)] if who else []
        return deployment.connect.resolve_guest(uuid.UUID(guest_id), identities,
                                                path).permissions

    yield permissions
    deployment.auth.engine.dispose()


def transfer_error(status: int, code: str, call: Any, *args: Any) -> TransferAPIError:
    with pytest.raises(TransferAPIError) as caught:
        call(*args)
    error = caught.value
    assert (error.http_status, error.code) == (status, code), error.text
    assert isinstance(error.request_id, str) and error.message
    return error


def rule(principal_type: str, principal: str, path: str, permissions: str,
         **extra: str) -> dict[str, str]:
    return {"DATA_TYPE": "access", "principal_type": principal_type, "principal": principal,
            "path": path, "permissions": permissions, **extra}


# --- user credentials ----------------------------------------------------------------------


def test_a_user_registers_the_account_their_identity_maps_to(
    site: EndpointSite, ann: User, bob: User, ann_gcs: GCSClient, files_gateway: str,
    ann_credential: dict[str, Any],
) -> None:
    assert ann_credential["DATA_TYPE"] == "user_credential#1.0.0"
    assert ann_credential["identity_id"] == ann.id
    assert ann_credential["username"] == ACCOUNT
    assert ann_credential["connector_id"] == POSIX
    assert ann_credential["storage_gateway_id"] == files_gateway
    assert ann_credential["home_directory"] == f"/{ann.username}"
    assert ann_credential["invalid"] is False
    credential_id = ann_credential["id"]

    assert [item["id"] for item in ann_gcs.get_user_credential_list(
        storage_gateway=files_gateway)] == [credential_id]
    assert list(ann_gcs.get_user_credential_list(storage_gateway=str(uuid.uuid4()))) == []
    renamed = ann_gcs.update_user_credential(credential_id, UserCredentialDocument(
        display_name="mine"))
    assert renamed["display_name"] == "mine"
    assert ann_gcs.get_user_credential(credential_id)["display_name"] == "mine"

    # One credential per identity, account and gateway; the account is the mapping's.
    expect_error(409, "exists", ann_gcs.create_user_credential,
                 UserCredentialDocument(storage_gateway_id=files_gateway))
    wrong = expect_error(422, "unprocessable_entity", ann_gcs.create_user_credential,
                         UserCredentialDocument(storage_gateway_id=files_gateway,
                                                username="someone-else"))
    assert ACCOUNT in wrong.message and "someone-else" in wrong.message
    stranger = expect_error(403, "permission_denied", ann_gcs.create_user_credential,
                            UserCredentialDocument(storage_gateway_id=files_gateway,
                                                   identity_id=bob.id))
    assert stranger.detail == {"DATA_TYPE": "id_not_in_identity_set#1.0.0", "id": bob.id}
    bad = expect_error(400, "bad_request", ann_gcs.create_user_credential, {
        "DATA_TYPE": "user_credential#1.0.0", "storage_gateway_id": files_gateway,
        "policies": {"DATA_TYPE": "posix_user_credential_policies#1.0.0", "x": 1}})
    assert bad.detail["errors"][0]["property"] == "policies"
    missing = expect_error(422, "unprocessable_entity", ann_gcs.create_user_credential,
                           UserCredentialDocument(storage_gateway_id=str(uuid.uuid4())))
    assert missing.detail_data_type == "storage_gateway_not_found#1.0.0"
    expect_error(400, "bad_request", ann_gcs.create_user_credential,
                 {"DATA_TYPE": "user_credential#2.0.0", "storage_gateway_id": files_gateway})

    # Others' credentials do not show; unknown ones are 404.
    bob_gcs = gcs_client(site, bob)
    assert list(bob_gcs.get_user_credential_list()) == []
    expect_error(404, "not_found", bob_gcs.get_user_credential, credential_id)
    expect_error(404, "not_found", bob_gcs.delete_user_credential, credential_id)
    expect_error(404, "not_found", ann_gcs.get_user_credential, str(uuid.uuid4()))
    own = bob_gcs.create_user_credential(UserCredentialDocument(
        storage_gateway_id=files_gateway))
    assert own["username"] == ACCOUNT and own["home_directory"] == f"/{bob.username}"
    deleted = bob_gcs.delete_user_credential(own["id"])
    assert deleted["message"] == f"Deleted User Credential {own['id']}"
    expect_error(404, "not_found", bob_gcs.get_user_credential, own["id"])


# --- guest collections ----------------------------------------------------------------------


def test_the_guest_collection_is_published_like_a_collection(
    site: EndpointSite, ann: User, bob: User, ann_gcs: GCSClient, ann_tc: TransferClient,
    guest: str, ann_credential: dict[str, Any],
) -> None:
    document = ann_gcs.get_collection(guest)
    assert document["DATA_TYPE"].startswith("collection#1.")
    assert document["collection_type"] == "guest"
    assert document["mapped_collection_id"] == site.collection_id
    assert document["identity_id"] == ann.id
    assert document["user_credential_id"] == ann_credential["id"]
    # ~ was the sharer's home folder; the root path is only for the mapped collection's admins.
    assert document["collection_base_path"] == f"/{ann.username}/results"
    assert document.get("root_path") is None
    roles = list(ann_gcs.get_role_list(collection_id=guest))
    assert [(role["role"], role["principal"]) for role in roles] == [
        ("administrator", f"urn:globus:auth:identity:{ann.id}")]
    assert guest in {row["id"] for row in site.server.run_json("client", "list")["clients"]}
    assert guest in {item["id"] for item in ann_gcs.get_collection_list(
        filter="guest_collections,created_by_me")}

    entry = ann_tc.get_endpoint(guest)
    assert entry["entity_type"] == "GCSv5_guest_collection"
    assert entry["host_endpoint_id"] == site.collection_id
    assert entry["owner_id"] == site.endpoint_id
    assert entry["display_name"] == "ann's results"
    assert entry["https_server"] == f"{site.server.manager_url}/data/{guest}"
    assert entry["acl_available"] is True and entry["acl_editable"] is True
    assert "administrator" in entry["my_effective_roles"]
    mine = ann_tc.endpoint_search(filter_scope="shared-by-me")
    assert guest in {item["id"] for item in mine}

    # Its owner changes it (Transfer follows); whose it is and what it acts with stay.
    renamed = ann_gcs.update_collection(guest, GuestCollectionDocument(
        display_name="ann's results v2"))
    assert renamed["display_name"] == "ann's results v2"
    assert ann_tc.get_endpoint(guest)["display_name"] == "ann's results v2"
    ann_gcs.update_collection(guest, GuestCollectionDocument(display_name="ann's results"))
    for change, field in ((GuestCollectionDocument(user_credential_id=None),
                           "user_credential_id"),
                          (GuestCollectionDocument(identity_id=bob.id), "identity_id"),
                          (GuestCollectionDocument(collection_base_path="/elsewhere"),
                           "collection_base_path")):
        refused = expect_error(400, "bad_request", ann_gcs.update_collection, guest, change)
        assert refused.detail["errors"][0]["property"] == field
    # A private guest collection is nobody else's business.
    bob_tc = transfer_client(site, bob)
    transfer_error(404, "EndpointNotFound", bob_tc.get_endpoint, guest)


def test_a_folder_shared_with_one_identity_is_theirs_to_read_only(
    site: EndpointSite, ann: User, bob: User, carl: User, ann_tc: TransferClient,
    bob_tc: TransferClient, carl_tc: TransferClient, guest: str, decide: Decide,
) -> None:
    created = ann_tc.add_endpoint_acl_rule(guest, rule("identity", bob.id, "/shared", "r"))
    assert created.http_status == 201
    assert created["code"] == "Created"
    assert created["DATA_TYPE"] == "access_create_result"
    rule_id = created["access_id"]

    listed = ann_tc.endpoint_acl_list(guest)
    assert listed["DATA_TYPE"] == "access_list" and listed["endpoint"] == guest
    by_id = {item["id"]: item for item in listed}
    assert by_id[rule_id]["path"] == "/shared/"  # folders end in "/"
    assert (by_id[rule_id]["principal_type"], by_id[rule_id]["principal"],
            by_id[rule_id]["permissions"]) == ("identity", bob.id, "r")
    # Administrators (the guest's owner, the endpoint's owner) show as implicit rules.
    implicit = {(item["role_type"], item["principal_type"], item["principal"], item["path"],
                 item["permissions"]) for item in listed if item["id"] is None}
    assert implicit == {("administrator", "identity", who, "/", "rw")
                        for who in (ann.id, site.owner.id)}
    fetched = ann_tc.get_endpoint_acl_rule(guest, rule_id)
    assert fetched["DATA_TYPE"] == "access" and fetched["id"] == rule_id
    assert fetched["create_time"].endswith("+00:00")

    # What each may do: bob reads the shared folder and writes nothing; carl gets nothing.
    assert decide(guest, bob, "/shared/data.csv") == "r"
    assert decide(guest, bob, "/shared") == "r"
    assert decide(guest, bob, "/elsewhere") == ""
    assert decide(guest, bob, "/") == ""
    assert decide(guest, carl, "/shared/data.csv") == ""
    assert decide(guest, None, "/shared/data.csv") == ""
    assert decide(guest, ann, "/anything") == "rw"
    # Bob now finds the collection in Transfer; carl still does not.
    seen_by_bob = bob_tc.get_endpoint(guest)
    assert seen_by_bob["entity_type"] == "GCSv5_guest_collection"
    assert seen_by_bob["acl_editable"] is False and seen_by_bob["my_effective_roles"] == []
    assert guest in {item["id"] for item in bob_tc.endpoint_search(
        filter_scope="shared-with-me")}
    transfer_error(404, "EndpointNotFound", carl_tc.get_endpoint, guest)

    updated = ann_tc.update_endpoint_acl_rule(guest, rule_id, {"DATA_TYPE": "access",
                                                               "permissions": "rw"})
    assert updated["code"] == "Updated" and rule_id in updated["message"]
    assert decide(guest, bob, "/shared/data.csv") == "rw"
    ann_tc.update_endpoint_acl_rule(guest, rule_id, {"permissions": "r"})
    assert decide(guest, bob, "/shared/data.csv") == "r"

    deleted = ann_tc.delete_endpoint_acl_rule(guest, rule_id)
    assert deleted["code"] == "Deleted"
    assert decide(guest, bob, "/shared/data.csv") == ""
    transfer_error(404, "AccessRuleNotFound", ann_tc.get_endpoint_acl_rule, guest, rule_id)
    transfer_error(404, "EndpointNotFound", bob_tc.get_endpoint, guest)


def test_only_the_owner_and_access_managers_manage_rules(
    site: EndpointSite, ann: User, bob: User, carl: User, ann_gcs: GCSClient,
    ann_tc: TransferClient, bob_tc: TransferClient, carl_tc: TransferClient, guest: str,
    decide: Decide,
) -> None:
    shared = ann_tc.add_endpoint_acl_rule(guest, rule("identity", bob.id, "/b/", "r"))
    # A reader is no manager.
    denied = transfer_error(403, "PermissionDenied", bob_tc.add_endpoint_acl_rule, guest,
                            rule("identity", bob.id, "/", "rw"))
    assert "access_manager" in denied.message
    transfer_error(403, "PermissionDenied", bob_tc.endpoint_acl_list, guest)
    transfer_error(403, "PermissionDenied", bob_tc.delete_endpoint_acl_rule, guest,
                   shared["access_id"])
    # Someone the collection is hidden from learns nothing of it.
    transfer_error(404, "EndpointNotFound", carl_tc.endpoint_acl_list, guest)
    transfer_error(404, "EndpointNotFound", carl_tc.add_endpoint_acl_rule, guest,
                   rule("identity", carl.id, "/", "rw"))

    # The owner makes carl an access manager through the GCS roles API.
    role = ann_gcs.create_role(GCSRoleDocument(collection=guest, role="access_manager",
                                               principal=f"urn:globus:auth:identity:{carl.id}"))
    added = carl_tc.add_endpoint_acl_rule(guest, rule("all_authenticated_users", "", "/all",
                                                      "r"))
    assert decide(guest, bob, "/all/x") == "r"
    assert decide(guest, carl, "/b/x") == "rw"  # a manager's implicit rw on /
    managers = {(item["role_type"], item["principal"]) for item in carl_tc.endpoint_acl_list(
        guest) if item["role_type"]}
    assert ("access_manager", carl.id) in managers
    carl_tc.delete_endpoint_acl_rule(guest, added["access_id"])
    ann_gcs.delete_role(role["id"])
    transfer_error(404, "EndpointNotFound", carl_tc.endpoint_acl_list, guest)
    # The endpoint's owner administers every collection of it, guests included.
    owner_tc = transfer_client(site, site.owner)
    assert shared["access_id"] in {item["id"] for item in owner_tc.endpoint_acl_list(guest)}
    owner_tc.delete_endpoint_acl_rule(guest, shared["access_id"])


def test_unknown_ids_and_bad_rule_documents(
    site: EndpointSite, bob: User, ann_tc: TransferClient, guest: str,
) -> None:
    transfer_error(404, "AccessRuleNotFound", ann_tc.get_endpoint_acl_rule, guest,
                   str(uuid.uuid4()))
    transfer_error(404, "AccessRuleNotFound", ann_tc.delete_endpoint_acl_rule, guest,
                   "not-a-rule")
    transfer_error(404, "AccessRuleNotFound", ann_tc.update_endpoint_acl_rule, guest,
                   str(uuid.uuid4()), {"permissions": "r"})
    transfer_error(404, "EndpointNotFound", ann_tc.endpoint_acl_list, str(uuid.uuid4()))
    transfer_error(404, "EndpointNotFound", ann_tc.add_endpoint_acl_rule, "not-an-id",
                   rule("identity", bob.id, "/", "r"))
    # Rules are for guest collections only.
    transfer_error(400, "NotSupported", ann_tc.endpoint_acl_list, site.collection_id)

    for document, mentions in (
        (rule("robot", bob.id, "/", "r"), "principal_type"),
        (rule("identity", bob.id, "/", "x"), "permissions"),
        (rule("identity", bob.id, "relative/dir", "r"), "path"),
        (rule("identity", bob.id, "/../up", "r"), "path"),
        (rule("identity", "not-a-uuid", "/", "r"), "principal"),
        (rule("identity", str(uuid.uuid4()), "/", "r"), "no such identity"),
        (rule("anonymous", bob.id, "/", "r"), "principal"),
        (rule("identity", bob.id, "/", "r", expiration_date="2001-01-01T00:00:00"),
         "expiration_date"),
        (rule("identity", bob.id, "/", "r", expiration_date="soon"), "expiration_date"),
        ({**rule("identity", bob.id, "/", "r"), "DATA_TYPE": "endpoint"}, "DATA_TYPE"),
        ({"DATA_TYPE": "access", "principal_type": "identity", "principal": bob.id}, "path"),
    ):
        error = transfer_error(400, "ClientError.BadRequest", ann_tc.add_endpoint_acl_rule,
                               guest, document)
        assert mentions in error.message, (document, error.message)

    first = ann_tc.add_endpoint_acl_rule(guest, rule("identity", bob.id, "/dup/", "r",
                                                     expiration_date="2999-01-01"))
    assert ann_tc.get_endpoint_acl_rule(guest, first["access_id"])["expiration_date"] == (
        "2999-01-01T00:00:00+00:00")
    transfer_error(409, "Exists", ann_tc.add_endpoint_acl_rule, guest,
                   rule("identity", bob.id, "/dup", "rw"))
    unchangeable = transfer_error(400, "ClientError.BadRequest",
                                  ann_tc.update_endpoint_acl_rule, guest, first["access_id"],
                                  {"path": "/elsewhere/"})
    assert "cannot be changed" in unchangeable.message
    ann_tc.delete_endpoint_acl_rule(guest, first["access_id"])

    # Not JSON at all: Transfer's error body all the same.
    token = ann_tc.authorizer.get_authorization_header()  # type: ignore[union-attr]
    answer = requests.post(f"{site.server.base_url}v0.10/endpoint/{guest}/access",
                           data=b"{nope", headers={"Authorization": token,
                                                   "Content-Type": "application/json"},
                           verify=site.server.ca_file, timeout=30)
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "ClientError.BadRequest" and body["resource"].endswith("/access")
    assert isinstance(body["request_id"], str)
    anonymous = requests.get(f"{site.server.base_url}v0.10/endpoint/{guest}/access_list",
                             verify=site.server.ca_file, timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "ClientError.AuthenticationFailed"


# --- sharing restrictions -------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(site: EndpointSite, owner_gcs: GCSClient, files_gateway: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A gateway like the files one over a directory of its own, and a mapped collection on
    it whose users may share only from their own "public" folder."""
    files = owner_gcs.get_storage_gateway(files_gateway, include="private_policies")
    gateway = owner_gcs.create_storage_gateway(StorageGatewayDocument(
        display_name="project storage", connector_id=POSIX,
        root=str(tmp_path_factory.mktemp("project")), allowed_domains=files["allowed_domains"],
        identity_mappings=files["identity_mappings"],
        # (The SDK documents restrict_paths but takes it only as an additional field.)
        additional_fields={"restrict_paths": {"DATA_TYPE": "path_restrictions#1.0.0",
                                              "read_write": ["$HOME"]}}))
    collection = owner_gcs.create_collection(MappedCollectionDocument(
        display_name="project", storage_gateway_id=gateway["id"], public=True,
        allow_guest_collections=True, delete_protected=False,
        sharing_restrict_paths={"DATA_TYPE": "path_restrictions#1.0.0",
                                "read_write": ["$HOME/public"]}))
    yield str(gateway["id"]), str(collection["id"])
    # Its guest collections go with it, and the credentials with the gateway.
    owner_gcs.delete_collection(collection["id"])
    owner_gcs.delete_storage_gateway(gateway["id"])


def test_sharing_is_refused_where_the_policies_forbid_it(
    site: EndpointSite, ann: User, bob: User, ann_gcs: GCSClient, owner_gcs: GCSClient,
    project: tuple[str, str], decide: Decide, ann_tc: TransferClient,
) -> None:
    gateway_id, mapped_id = project
    credential = ann_gcs.create_user_credential(UserCredentialDocument(
        storage_gateway_id=gateway_id))["id"]

    def share(base: str) -> Any:
        return ann_gcs.create_collection(GuestCollectionDocument(
            display_name=f"share of {base}", mapped_collection_id=mapped_id,
            user_credential_id=credential, collection_base_path=base))

    private = expect_error(403, "permission_denied", share, "/~/private")
    assert "may not share" in private.message
    expect_error(403, "permission_denied", share, "/")  # outside ann's home altogether
    escape = expect_error(400, "bad_request", share, "/~/../../etc")
    assert escape.detail["errors"][0]["property"] == "collection_base_path"
    public = share("/~/public/papers")
    assert public.http_status == 201

    # A sharing policy narrows what the account may share, here and at every access.
    created = owner_gcs.post("sharing_policies", data={
        "DATA_TYPE": "sharing_policy#1.0.0", "collection_id": mapped_id, "users": [ACCOUNT],
        "sharing_restrict_paths": {"DATA_TYPE": "path_restrictions#1.0.0",
                                   "none": ["$HOME/public/papers/drafts"]}})
    assert created.http_status == 201
    (policy,) = created["data"]
    assert policy["DATA_TYPE"] == "sharing_policy#1.0.0" and policy["users"] == [ACCOUNT]
    expect_error(403, "permission_denied", share, "/~/public/papers/drafts")
    ann_tc.add_endpoint_acl_rule(public["id"], rule("identity", bob.id, "/", "rw"))
    assert decide(public["id"], bob, "/final.pdf") == "rw"
    assert decide(public["id"], bob, "/drafts/v1.tex") == ""
    listed = owner_gcs.get("sharing_policies", query_params={
        "collection_id": mapped_id, "username": ACCOUNT})
    assert [item["id"] for item in listed["data"]] == [policy["id"]]
    assert owner_gcs.get("sharing_policies", query_params={
        "collection_id": mapped_id, "username": "nobody"})["data"] == []
    assert owner_gcs.get(f"sharing_policies/{policy['id']}")["data"][0] == policy
    # Policies are their collection administrators' business.
    expect_error(403, "permission_denied", ann_gcs.get, "sharing_policies",
                 query_params={"collection_id": mapped_id})
    expect_error(400, "bad_request", owner_gcs.get, "sharing_policies")
    expect_error(404, "not_found", owner_gcs.get, f"sharing_policies/{uuid.uuid4()}")
    bad = expect_error(400, "bad_request", owner_gcs.post, "sharing_policies", data={
        "DATA_TYPE": "sharing_policy#1.0.0", "collection_id": mapped_id,
        "sharing_restrict_paths": {"DATA_TYPE": "path_restrictions#1.0.0", "write": ["/"]}})
    assert bad.detail["errors"][0]["property"] == "sharing_restrict_paths"
    assert owner_gcs.delete(f"sharing_policies/{policy['id']}")["code"] == "success"
    assert decide(public["id"], bob, "/drafts/v1.tex") == "rw"

    # The collection's own sharing settings: who may share, and whether anyone may.
    for settings, detail in (
        (MappedCollectionDocument(sharing_users_deny=[ACCOUNT]), "invalid_user#1.0.0"),
        (MappedCollectionDocument(sharing_users_allow=["someone-else"]), "invalid_user#1.0.0"),
        (MappedCollectionDocument(policies=POSIXCollectionPolicies(
            sharing_groups_deny=[_primary_group()])), "invalid_user#1.0.0"),
        (MappedCollectionDocument(allow_guest_collections=False), None),
    ):
        owner_gcs.update_collection(mapped_id, settings)
        refused = expect_error(403, "permission_denied", share, "/~/public/more")
        assert refused.detail_data_type == detail
        # Existing guest collections are refused at access as well.
        with pytest.raises(APIError) as at_access:
            decide(public["id"], bob, "/final.pdf")
        assert at_access.value.status == 403
        owner_gcs.update_collection(mapped_id, MappedCollectionDocument(
            sharing_users_deny=None, sharing_users_allow=None, policies=None,
            allow_guest_collections=True))
    assert decide(public["id"], bob, "/final.pdf") == "rw"
    # The files collection is not the project's: a credential is for one gateway.
    wrong_gateway = expect_error(403, "permission_denied", ann_gcs.create_collection,
                                 GuestCollectionDocument(
                                     display_name="x", mapped_collection_id=site.collection_id,
                                     user_credential_id=credential,
                                     collection_base_path="/~/x"))
    assert wrong_gateway.detail_data_type == "invalid_credential#1.0.0"
    # No guest collection of a guest collection.
    nested = expect_error(422, "unprocessable_entity", ann_gcs.create_collection,
                          GuestCollectionDocument(display_name="x",
                                                  mapped_collection_id=public["id"],
                                                  user_credential_id=credential))
    assert "mapped collections" in nested.message
    ann_gcs.delete_collection(public["id"])


def _primary_group() -> str:
    import grp
    import os
    return grp.getgrgid(os.getgid()).gr_name


# --- globus-cli --------------------------------------------------------------------------------


def assert_names_not_ids(printed: str, *users: User) -> None:
    for user in users:
        assert user.username in printed and user.id not in printed, (user, printed)


def test_globus_cli_shares_a_folder(
    site: EndpointSite, bob: User, carl: User, files_gateway: str, decide: Decide,
    made: list[str], bob_tc: TransferClient, tmp_path: Path,
) -> None:
    """carl, at a terminal: registers his credential, makes a guest collection and gives
    bob read access to a folder of it, all with globus-cli 3.43."""
    env = shell_environment(site.server, tmp_path / "home")
    cli_login(site.server, carl, env, "--gcs", f"{site.endpoint_id}:{site.collection_id}")

    registered = globus(env, "endpoint", "user-credential", "create", "posix",
                        site.endpoint_id, files_gateway, carl.username, ACCOUNT, "-F", "json")
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["username"] == ACCOUNT
    listed = globus(env, "endpoint", "user-credential", "list", site.endpoint_id)
    assert listed.returncode == 0 and ACCOUNT in listed.stdout, listed.stderr

    created = globus(env, "collection", "create", "guest", site.collection_id, "/~/cli-share",
                     "carl's share", "-F", "json")
    assert created.returncode == 0, created.stdout + created.stderr
    guest_id = json.loads(created.stdout)["id"]
    made.append(guest_id)
    assert json.loads(created.stdout)["collection_base_path"] == f"/{carl.username}/cli-share"

    granted = globus(env, "endpoint", "permission", "create", f"{guest_id}:/for-bob/",
                     "--permissions", "r", "--identity", bob.username)
    assert granted.returncode == 0, granted.stderr
    assert "Access rule created successfully." in granted.stdout
    rule_id = granted.stdout.split("Rule ID:")[1].split()[0]
    shown = globus(env, "endpoint", "permission", "list", guest_id)
    assert shown.returncode == 0, shown.stderr
    assert rule_id in shown.stdout and bob.username in shown.stdout
    assert "/for-bob/" in shown.stdout
    assert_names_not_ids(shown.stdout, carl, bob)  # the creator's own rule too

    # Every identity the CLI prints is resolved through Auth to a username.
    for args, who in ((("collection", "show", guest_id), [carl]),
                      (("collection", "list", site.endpoint_id), [site.owner, carl]),
                      (("endpoint", "show", site.endpoint_id), [site.owner]),
                      (("endpoint", "permission", "show", guest_id, rule_id), [bob]),
                      (("endpoint", "role", "list", guest_id), [carl])):
        printed = globus(env, *args)
        assert printed.returncode == 0, (args, printed.stderr)
        assert_names_not_ids(printed.stdout, *who)
    roles = json.loads(globus(env, "endpoint", "role", "list", guest_id, "-F", "json").stdout)
    mine = next(role for role in roles["DATA"] if role["principal"] == carl.id)
    assert mine["role"] == "administrator"
    one = globus(env, "endpoint", "role", "show", guest_id, mine["id"])
    assert one.returncode == 0, one.stderr
    assert carl.username in one.stdout and "administrator" in one.stdout
    # bob sees the collection (a rule names him) but holds no role on it.
    transfer_error(403, "PermissionDenied", bob_tc.endpoint_role_list, guest_id)
    assert decide(guest_id, bob, "/for-bob/notes.txt") == "r"

    changed = globus(env, "endpoint", "permission", "update", guest_id, rule_id,
                     "--permissions", "rw")
    assert changed.returncode == 0, changed.stderr
    assert decide(guest_id, bob, "/for-bob/notes.txt") == "rw"
    removed = globus(env, "endpoint", "permission", "delete", guest_id, rule_id)
    assert removed.returncode == 0, removed.stderr
    assert decide(guest_id, bob, "/for-bob/notes.txt") == ""
    missing = globus(env, "endpoint", "permission", "show", guest_id, rule_id)
    assert missing.returncode == 1 and "AccessRuleNotFound" in missing.stderr


def test_gcs_errors_for_collections_and_credentials(ann_gcs: GCSClient) -> None:
    """The SDK raises GCSAPIError with the envelope's code for the new routes' mistakes."""
    with pytest.raises(GCSAPIError) as caught:
        ann_gcs.get_user_credential("not-a-uuid")
    assert (caught.value.http_status, caught.value.code) == (404, "not_found")
    expect_error(400, "bad_request", ann_gcs.get_user_credential_list,
                 storage_gateway="nope")
    expect_error(400, "bad_request", ann_gcs.get_user_credential_list,
                 query_params={"include": "everything"})
