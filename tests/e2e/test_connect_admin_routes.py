"""The Manager API routes `globus-connect-server` needs beyond the SDK's methods: nodes, the
endpoint's owner, advertised owner and subscription, and a collection's check, advertised
owner, owner, subscription-admin flag and batch delete, through `GCSClient`'s own HTTP
methods against a live server of their own (they move the endpoint's owner around)."""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
from globus_sdk import (
    GCSAPIError,
    GCSClient,
    GuestCollectionDocument,
    MappedCollectionDocument,
    StorageGatewayDocument,
    UserCredentialDocument,
)

from tests.conftest import User, _new_user
from tests.e2e.helpers import TRANSFER_ALL, native_login, pointed_at
from tests.live import LiveServer, start_server

POSIX = "145812c8-decc-41f1-83cf-bb2a85a2a70b"


@dataclass
class Site:
    server: LiveServer
    endpoint_id: str
    owner: User
    bob: User

    def clients(self, user: User) -> tuple[GCSClient, globus_sdk.TransferClient]:
        scope = str(GCSClient.get_gcs_endpoint_scopes(self.endpoint_id).manage_collections)
        tokens = native_login(self.server, user.username, user.password, [scope, TRANSFER_ALL])
        with pointed_at(self.server):
            return (GCSClient(self.server.manager_url, authorizer=globus_sdk.AccessTokenAuthorizer(
                        tokens[self.endpoint_id]["access_token"])),
                    globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(
                        tokens["transfer.api.globus.org"]["access_token"])))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    server = start_server(tmp_path_factory.mktemp("gcs-admin-routes") / "data")
    try:
        owner = _new_user(server, "owner")
        with pointed_at(server):
            endpoint_id = GCSClient(server.manager_url).get_gcs_info()["endpoint_id"]
        yield Site(server, endpoint_id, owner, _new_user(server, "bob"))
    finally:
        server.stop()


@pytest.fixture(scope="module")
def owner(site: Site) -> tuple[GCSClient, globus_sdk.TransferClient]:
    return site.clients(site.owner)


def refused(status: int, code: str, call: Any, *args: Any, **kwargs: Any) -> GCSAPIError:
    with pytest.raises(GCSAPIError) as caught:
        call(*args, **kwargs)
    assert (caught.value.http_status, caught.value.code) == (status, code), \
        caught.value.raw_text
    return caught.value


def test_nodes(site: Site, owner: tuple[GCSClient, Any]) -> None:
    client, _ = owner
    listed = client.get("nodes")
    assert listed["DATA_TYPE"] == "result#1.0.0" and listed["has_next_page"] is False
    [first] = listed["data"]  # the all-in-one's own node
    assert first["DATA_TYPE"] == "node#1.3.0" and first["status"] == "active"
    assert "manager_url" not in first

    made = client.post("nodes", data={"DATA_TYPE": "node#1.0.0", "status": "active",
                                      "ip_addresses": ["192.0.2.7"],
                                      "incoming_port_range": [50000, 50100]})
    assert made.http_status == 200
    node = made["data"][0]
    node_id = node["id"]
    assert node["ip_addresses"] == ["192.0.2.7"]
    assert client.get(f"nodes/{node_id}")["data"][0]["incoming_port_range"] == [50000, 50100]
    quiet = client.patch(f"nodes/{node_id}", data={"DATA_TYPE": "node#1.3.0",
                                                   "status": "inactive"})
    assert quiet["data"] == [] and node_id in quiet["message"]
    echoed = client.patch(f"nodes/{node_id}", data={"DATA_TYPE": "node#1.3.0",
                                                    "data_interface": "192.0.2.8"},
                          query_params={"include": "node"})
    assert echoed["data"][0]["status"] == "inactive"
    assert echoed["data"][0]["data_interface"] == "192.0.2.8"
    replaced = client.put(f"nodes/{node_id}", data={
        "DATA_TYPE": "node#1.3.0", "status": "active", "ip_addresses": ["192.0.2.9"]},
        query_params={"include": "node"})["data"][0]
    assert replaced["ip_addresses"] == ["192.0.2.9"] and replaced["data_interface"] is None

    bad = refused(400, "bad_request", client.post, "nodes", data={
        "DATA_TYPE": "node#1.0.0", "status": "active", "ip_addresses": ["not an address"]})
    assert {error["property"] for error in bad.detail["errors"]} == {"ip_addresses"}
    refused(400, "bad_request", client.patch, f"nodes/{node_id}", data={
        "DATA_TYPE": "node#1.0.0", "incoming_port_range": [60000, 50000]})
    bob, _ = site.clients(site.bob)
    refused(403, "permission_denied", bob.get, "nodes")
    refused(403, "permission_denied", bob.delete, f"nodes/{node_id}")
    assert client.delete(f"nodes/{node_id}")["code"] == "success"
    refused(404, "not_found", client.get, f"nodes/{node_id}")
    refused(404, "not_found", client.get, "nodes/not-a-uuid")


def test_endpoint_owner_advertised_owner_and_subscription(
    site: Site, owner: tuple[GCSClient, globus_sdk.TransferClient],
) -> None:
    client, transfer = owner
    assert transfer.get_endpoint(site.endpoint_id)["owner_string"] == site.owner.username
    bob_gcs, _ = site.clients(site.bob)
    refused(403, "permission_denied", bob_gcs.put, "endpoint/owner",
            data={"DATA_TYPE": "endpoint_owner#1.0.0", "identity_id": site.bob.id})
    refused(422, "unprocessable_entity", client.put, "endpoint/owner",
            data={"DATA_TYPE": "endpoint_owner#1.0.0", "identity_id": str(uuid.uuid4())})
    refused(400, "bad_request", client.put, "endpoint/owner",
            data={"DATA_TYPE": "endpoint_owner#1.0.0"})

    # Advertising another person is refused; one's own identity, or the client, is not.
    refused(403, "permission_denied", client.put, "endpoint/owner_string",
            data={"DATA_TYPE": "owner_string#1.0.0", "identity_id": site.bob.id})
    client.delete("endpoint/owner_string")
    assert transfer.get_endpoint(site.endpoint_id)["owner_string"] == \
        f"{site.endpoint_id}@clients.auth.globus.org"
    client.put("endpoint/owner_string",
               data={"DATA_TYPE": "owner_string#1.0.0", "identity_id": site.owner.id})
    assert transfer.get_endpoint(site.endpoint_id)["owner_string"] == site.owner.username

    # The owner role moves, and the advertised person with it; the old owner stays admin.
    moved = client.put("endpoint/owner",
                       data={"DATA_TYPE": "endpoint_owner#1.0.0", "identity_id": site.bob.id})
    assert site.bob.username in moved["message"]
    roles = {(role["role"], role["principal"]) for role in client.get_role_list(
        include="all_roles")}
    assert ("owner", f"urn:globus:auth:identity:{site.bob.id}") in roles
    assert ("owner", f"urn:globus:auth:identity:{site.owner.id}") not in roles
    assert ("administrator", f"urn:globus:auth:identity:{site.owner.id}") in roles
    assert transfer.get_endpoint(site.endpoint_id)["owner_string"] == site.bob.username
    bob_gcs.put("endpoint/owner",
                data={"DATA_TYPE": "endpoint_owner#1.0.0", "identity_id": site.owner.id})
    assert transfer.get_endpoint(site.endpoint_id)["owner_string"] == site.owner.username
    # Bob stays an administrator, in a role that can go now that he no longer owns it.
    [bob_admin] = [role for role in client.get_role_list(include="all_roles")
                   if role["principal"] == f"urn:globus:auth:identity:{site.bob.id}"]
    assert bob_admin["role"] == "administrator"
    client.delete_role(bob_admin["id"])

    subscription = str(uuid.uuid4())
    client.put("endpoint/subscription_id", data={
        "DATA_TYPE": "endpoint_subscription#1.0.0", "subscription_id": subscription})
    assert client.get_endpoint()["subscription_id"] == subscription
    assert transfer.get_endpoint(site.endpoint_id)["subscription_id"] == subscription
    client.put("endpoint/subscription_id", data={
        "DATA_TYPE": "endpoint_subscription#1.0.0", "subscription_id": None})
    assert client.get_endpoint()["subscription_id"] is None
    refused(400, "bad_request", client.put, "endpoint/subscription_id", data={
        "DATA_TYPE": "endpoint_subscription#1.0.0", "subscription_id": "someday"})
    refused(400, "bad_request", client.put, "endpoint/subscription_id",
            data={"DATA_TYPE": "endpoint_subscription#1.0.0"})


def test_collection_administration(
    site: Site, owner: tuple[GCSClient, globus_sdk.TransferClient], tmp_path: Path,
) -> None:
    client, transfer = owner
    present = tmp_path / "present"
    present.mkdir()
    gateway_id = client.create_storage_gateway(StorageGatewayDocument(
        display_name="checked", connector_id=POSIX, root=str(tmp_path),
        allowed_domains=["isthmus.local"]))["id"]
    good = client.create_collection(MappedCollectionDocument(
        display_name="good", storage_gateway_id=gateway_id, collection_base_path="/present",
        delete_protected=False))["id"]
    gone = client.create_collection(MappedCollectionDocument(
        display_name="gone", storage_gateway_id=gateway_id, collection_base_path="/absent",
        delete_protected=False))["id"]
    per_user = client.create_collection(MappedCollectionDocument(
        display_name="homes", storage_gateway_id=gateway_id,
        collection_base_path="/present/$USER", delete_protected=False))["id"]

    results = {item["id"]: item for item in client.get("collections/check")["data"]}
    assert {good, gone, per_user} <= set(results)
    assert results[good] == {"DATA_TYPE": "check_result#1.0.0", "id": good,
                             "message": "No problems found", "error": False}
    assert results[gone]["error"] is True
    assert str(tmp_path / "absent") in results[gone]["message"]
    assert results[per_user]["error"] is False
    [one] = client.get(f"collections/{gone}/check")["data"]
    assert one["id"] == gone and one["error"] is True
    bob_gcs, _ = site.clients(site.bob)
    refused(404, "not_found", bob_gcs.get, f"collections/{uuid.uuid4()}/check")
    assert bob_gcs.get("collections/check")["data"] == []  # bob administers none

    # The advertised owner lives in Transfer only, and survives a PUT of the fetched document.
    client.put(f"collections/{good}/owner_string",
               data={"DATA_TYPE": "owner_string#1.0.0", "identity_id": site.owner.id})
    assert transfer.get_endpoint(good)["owner_string"] == site.owner.username
    fetched = client.get_collection(good)
    assert "owner_string" not in fetched.data
    client.put(f"collections/{good}", data=fetched.data)
    assert transfer.get_endpoint(good)["owner_string"] == site.owner.username
    client.delete(f"collections/{good}/owner_string")
    assert transfer.get_endpoint(good)["owner_string"] == \
        f"{site.endpoint_id}@clients.auth.globus.org"

    client.put(f"collections/{good}/subscription_admin_verified", data={
        "DATA_TYPE": "subscription_admin_verified#1.0.0",
        "subscription_admin_verified": True})
    assert client.get_collection(good)["subscription_admin_verified"] is True
    assert transfer.get_endpoint(good)["subscription_admin_verified"] is True
    refused(400, "bad_request", client.put, f"collections/{good}/subscription_admin_verified",
            data={"DATA_TYPE": "subscription_admin_verified#1.0.0",
                  "subscription_admin_verified": "yes"})

    moved = client.put(f"collections/{good}/owner", data={
        "DATA_TYPE": "collection_owner#1.0.0", "identity_id": site.bob.id})
    assert site.bob.username in moved["message"]
    assert client.get_collection(good)["identity_id"] == site.bob.id
    assert bob_gcs.get_collection(good)["root_path"] == str(present)  # bob administers it
    refused(422, "unprocessable_entity", client.put, f"collections/{good}/owner", data={
        "DATA_TYPE": "collection_owner#1.0.0", "identity_id": site.endpoint_id})

    mapped = refused(403, "permission_denied", client.post, "collections/batch_delete",
                     data={"DATA_TYPE": "batch#1.0.0", "ids": [gone]})
    assert mapped.detail == {"DATA_TYPE": "batch#1.0.0", "ids": [gone]}
    nothing = client.post("collections/batch_delete",
                          data={"DATA_TYPE": "batch#1.0.0", "ids": [str(uuid.uuid4())]})
    assert nothing.http_status == 202 and nothing["data"] == [
        {"DATA_TYPE": "batch#1.0.0", "ids": []}]
    refused(400, "bad_request", client.post, "collections/batch_delete",
            data={"DATA_TYPE": "batch#1.0.0", "ids": ["not-a-uuid"]})
    for collection_id in (good, gone, per_user):
        client.delete_collection(collection_id)
    client.delete_storage_gateway(gateway_id)


def test_batch_delete_takes_guest_collections_with_their_access_rules(
    site: Site, owner: tuple[GCSClient, globus_sdk.TransferClient],
) -> None:
    client, _ = owner
    bob_gcs, bob_transfer = site.clients(site.bob)
    files = next(item for item in client.get_collection_list()
                 if item["display_name"].endswith(" files"))
    credential = bob_gcs.create_user_credential(UserCredentialDocument(
        storage_gateway_id=files["storage_gateway_id"], identity_id=site.bob.id,
        username=getpass.getuser()))["id"]
    guests = [bob_gcs.create_collection(GuestCollectionDocument(
        display_name=f"bob's share {number}", mapped_collection_id=files["id"],
        user_credential_id=credential, collection_base_path=f"/~/share{number}"))["id"]
        for number in (1, 2)]
    rule = {"DATA_TYPE": "access", "principal_type": "identity", "principal": site.owner.id,
            "path": "/", "permissions": "r"}
    bob_transfer.add_endpoint_acl_rule(guests[0], rule)
    # A mapped collection in the batch refuses all of it; nothing goes.
    refused(403, "permission_denied", bob_gcs.post, "collections/batch_delete",
            data={"DATA_TYPE": "batch#1.0.0", "ids": [guests[0], files["id"]]})
    assert bob_gcs.get_collection(guests[0])["id"] == guests[0]

    deleted = bob_gcs.post("collections/batch_delete", data={
        "DATA_TYPE": "batch#1.0.0", "ids": [*guests, str(uuid.uuid4())]})
    assert deleted.http_status == 202
    assert deleted["data"] == [{"DATA_TYPE": "batch#1.0.0", "ids": guests}]
    for guest in guests:
        refused(404, "not_found", bob_gcs.get_collection, guest)
    with pytest.raises(globus_sdk.TransferAPIError) as gone:
        bob_transfer.endpoint_acl_list(guests[0])
    assert gone.value.http_status == 404
    bob_gcs.delete_user_credential(credential)
