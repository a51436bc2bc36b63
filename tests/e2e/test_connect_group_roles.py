"""Roles granted to a group (``urn:globus:groups:id:<id>``) reach the group's active members,
on the Manager API, in Transfer's ``my_effective_roles`` and on data access, and leave
with them.

A real group made through the Groups API (`GroupsManager`), roles made with
`GCSClient.create_role`; members and non-members call the Manager API with the SDK and
read a guest collection over HTTPS with curl.
"""

from __future__ import annotations

from globus_sdk import (
    GCSClient,
    GCSRoleDocument,
    GroupsManager,
    GuestCollectionDocument,
    MappedCollectionDocument,
    UserCredentialDocument,
)

from tests.conftest import EndpointSite, User, _new_user
from tests.e2e.data_helpers import curl
from tests.e2e.test_connect_guest import ACCOUNT
from tests.e2e.test_connect_guest_https import https_token
from tests.e2e.test_connect_manager_api import expect_error, gcs_client
from tests.e2e.test_groups import groups_client
from tests.e2e.test_transfer_registry import transfer_client


def group_with(site: EndpointSite, admin: User, *members: User) -> tuple[GroupsManager, str]:
    groups = GroupsManager(groups_client(site.server, admin))
    group_id = str(groups.create_group("Curators", "who curates the lab's data")["id"])
    for member in members:
        added = groups.add_member(group_id, member.id)
        assert added["add"][0]["status"] == "active"
    return groups, group_id


def test_a_collection_role_held_by_a_group_is_its_members_role(
    site: EndpointSite, owner: GCSClient, files_gateway: str,
) -> None:
    frank, gina = (_new_user(site.server, name) for name in ("frank", "gina"))
    groups, group_id = group_with(site, site.owner, frank)
    principal = f"urn:globus:groups:id:{group_id}"
    collection = str(owner.create_collection(MappedCollectionDocument(
        display_name="curated", storage_gateway_id=files_gateway,
        collection_base_path="/"))["id"])
    frank_gcs, gina_gcs = gcs_client(site, frank), gcs_client(site, gina)
    described = MappedCollectionDocument(description="curated by the group")
    try:
        # A private collection: to those without a role on it, it is not there.
        expect_error(404, "not_found", frank_gcs.update_collection, collection,
                     described)
        role = owner.create_role(GCSRoleDocument(collection=collection, principal=principal,
                                                 role="administrator"))
        assert role["principal"] == principal
        # Frank administers it now: he edits it and sees (and manages) all its roles.
        assert frank_gcs.update_collection(collection, described)["description"] == \
            "curated by the group"
        assert principal in {item["principal"] for item in frank_gcs.get_role_list(
            collection, include="all_roles")}
        assert [item["id"] for item in frank_gcs.get_role_list(collection)] == [role["id"]]
        # Transfer, which Connect tells of roles, counts the group's for him too.
        entry = transfer_client(site, frank).get_endpoint(collection)
        assert "administrator" in entry["my_effective_roles"]
        expect_error(404, "not_found", gina_gcs.update_collection, collection,
                     described)
        # An endpoint role for the group: members see the endpoint's roles.
        expect_error(403, "permission_denied", gina_gcs.get_role_list, include="all_roles")
        endpoint_role = owner.create_role(GCSRoleDocument(principal=principal,
                                                          role="administrator"))
        groups.add_member(group_id, gina.id)
        assert endpoint_role["id"] in {item["id"] for item in gina_gcs.get_role_list(
            include="all_roles")}
        owner.delete_role(endpoint_role["id"])
        # Out of the group, out of the role.
        groups.remove_member(group_id, frank.id)
        expect_error(404, "not_found", frank_gcs.update_collection, collection,
                     described)
    finally:
        owner.update_collection(collection, MappedCollectionDocument(delete_protected=False))
        owner.delete_collection(collection)


def test_a_group_of_access_managers_reads_a_whole_guest_collection_over_https(
    site: EndpointSite, files_gateway: str,
) -> None:
    hana, ivan, jack = (_new_user(site.server, name) for name in ("hana", "ivan", "jack"))
    _, group_id = group_with(site, hana, ivan)
    hana_gcs = gcs_client(site, hana)
    credential = hana_gcs.create_user_credential(UserCredentialDocument(
        storage_gateway_id=files_gateway, identity_id=hana.id, username=ACCOUNT))
    root = site.server.data_dir / "files" / hana.username / "lab"
    root.mkdir(parents=True)
    (root / "results.csv").write_bytes(b"t,x\n0,1\n")
    guest = str(hana_gcs.create_collection(GuestCollectionDocument(
        display_name="hana's lab", mapped_collection_id=site.collection_id,
        user_credential_id=credential["id"], collection_base_path="/~/lab"))["id"])
    try:
        url = f"{site.server.base_url}data/{guest}/results.csv"
        ivan_token, jack_token = https_token(site, ivan, guest), https_token(site, jack, guest)
        assert curl(site.server, ivan_token, url).status == 403  # no rule names him yet
        hana_gcs.create_role(GCSRoleDocument(collection=guest,
                                             principal=f"urn:globus:groups:id:{group_id}",
                                             role="access_manager"))
        got = curl(site.server, ivan_token, url)
        assert (got.status, got.body) == (200, b"t,x\n0,1\n")
        written = curl(site.server, ivan_token, "-X", "PUT", "--data-binary", "ivan's",
                       f"{site.server.base_url}data/{guest}/ivan.txt")
        assert written.status == 201, written.text
        assert (root / "ivan.txt").read_bytes() == b"ivan's"
        assert curl(site.server, jack_token, url).status == 403
    finally:
        hana_gcs.delete_collection(guest)
