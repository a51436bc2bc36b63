"""The server's Globus Connect Server endpoint through the official `GCSClient` (SDK 4.9).

The endpoint's address is the one Transfer advertises (`gcs_manager_url`), which
`GCSClient` turns into `https://<host>:<port>/api/`; tokens are the endpoint's
`manage_collections` scope, consented on Auth's pages as a person would.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
import requests
from globus_sdk import (
    EndpointDocument,
    GCSAPIError,
    GCSClient,
    GCSRoleDocument,
    GuestCollectionDocument,
    MappedCollectionDocument,
    POSIXCollectionPolicies,
    POSIXStoragePolicies,
    StorageGatewayDocument,
)

from tests.conftest import EndpointSite, User, _new_user, shell_environment
from tests.e2e.helpers import TRANSFER_ALL, cli_login, globus, native_login

POSIX = "145812c8-decc-41f1-83cf-bb2a85a2a70b"
S3 = "7643e831-5f6c-4b47-a07f-8ee90f401d23"
ACTIVESCALE = "7251f6c8-93c9-11eb-95ba-12704e0d6a4d"
BOX = "7c100eae-40fe-11e9-95a3-9cb6d0d9fd63"


def client_ids(site: EndpointSite) -> set[str]:
    return {row["id"] for row in site.server.run_json("client", "list")["clients"]}


def manage_collections(endpoint_id: str) -> str:
    return str(GCSClient.get_gcs_endpoint_scopes(endpoint_id).manage_collections)


def gcs_client(site: EndpointSite, user: User) -> GCSClient:
    tokens = native_login(site.server, user.username, user.password,
                          [manage_collections(site.endpoint_id)])
    token = tokens[site.endpoint_id]["access_token"]
    return GCSClient(site.server.manager_url,
                     authorizer=globus_sdk.AccessTokenAuthorizer(token))


@pytest.fixture(scope="module")
def bob(site: EndpointSite) -> User:
    return _new_user(site.server, "bob")


@pytest.fixture(scope="module")
def bob_gcs(site: EndpointSite, bob: User) -> GCSClient:
    return gcs_client(site, bob)


def posix_gateway(name: str, **fields: Any) -> StorageGatewayDocument:
    return StorageGatewayDocument(
        display_name=name, connector_id=POSIX, root="/", allowed_domains=["example.org"],
        identity_mappings=[{"DATA_TYPE": "expression_identity_mapping#1.0.0",
                            "mappings": [{"source": "{username}", "match": "(.*)@example.org",
                                          "output": "{0}"}]}],
        policies=POSIXStoragePolicies(groups_allow=["staff"]), users_deny=["root"],
        require_mfa=False, **fields,
    )


def expect_error(status: int, code: str, call: Any, *args: Any, **kwargs: Any) -> GCSAPIError:
    with pytest.raises(GCSAPIError) as caught:
        call(*args, **kwargs)
    error = caught.value
    assert (error.http_status, error.code) == (status, code), error.text
    assert isinstance(error.message, str) and error.message
    return error


def test_info_names_the_endpoint_client_without_a_token(site: EndpointSite) -> None:
    client = GCSClient(site.server.manager_url)  # no authorizer at all
    assert client.base_url == site.server.base_url + "api/"
    assert client.endpoint_client_id == site.endpoint_id
    info = client.get_gcs_info()
    assert info["DATA_TYPE"].startswith("info#")
    assert info["endpoint_id"] == site.endpoint_id
    connectors = [item for item in info.full_data["data"]
                  if item["DATA_TYPE"].startswith("connector#")]
    assert [(item["id"], item["display_name"]) for item in connectors] == [
        (POSIX, "POSIX"), (S3, "S3"), (ACTIVESCALE, "ActiveScale"),
        ("afe5e740-c8ed-4433-a2e0-d65747275517", "WebDAV")]
    # The default scope the SDK derives is the one Auth issues tokens for.
    assert [str(scope) for scope in client.default_scope_requirements] == [
        manage_collections(site.endpoint_id)]


def test_owner_reads_and_updates_the_endpoint(site: EndpointSite, owner: GCSClient) -> None:
    endpoint = owner.get_endpoint()
    assert endpoint["DATA_TYPE"].startswith("endpoint#1.")
    assert endpoint["id"] == site.endpoint_id
    assert endpoint["gcs_manager_url"] == site.server.manager_url
    assert endpoint["public"] is True

    updated = owner.update_endpoint(
        EndpointDocument(description="Lab data", keywords=["lab", "posix"],
                         contact_email="data@example.org"), include="endpoint")
    assert updated["description"] == "Lab data"
    assert updated["keywords"] == ["lab", "posix"]
    # Without include=endpoint the Manager answers with an empty data list and a message.
    quiet = owner.update_endpoint(EndpointDocument(organization="Lab"))
    assert quiet.full_data["data"] == [] and site.endpoint_id in quiet.full_data["message"]
    # SDK 4 sends None as null: a PATCH null clears the field; absent ones stay.
    cleared = owner.update_endpoint(EndpointDocument(contact_email=None), include="endpoint")
    assert cleared["contact_email"] is None
    assert cleared["description"] == "Lab data" and cleared["organization"] == "Lab"
    bad = expect_error(400, "bad_request", owner.update_endpoint,
                       EndpointDocument(network_use="enormous"))
    assert bad.detail_data_type == "invalid_input#1.0.0"
    assert [item["property"] for item in bad.detail["errors"]] == ["network_use"]


def test_first_start_made_a_posix_gateway_and_the_files_collection(
    site: EndpointSite, owner: GCSClient,
) -> None:
    gateways = list(owner.get_storage_gateway_list())
    default = next(gateway for gateway in gateways if gateway["root"].endswith("/files"))
    assert default["DATA_TYPE"].startswith("storage_gateway#1.")
    assert default["connector_id"] == POSIX
    assert Path(default["root"]) == site.server.data_dir / "files"
    assert Path(default["root"]).is_dir()

    collection = owner.get_collection(site.collection_id)
    assert collection["DATA_TYPE"].startswith("collection#1.")
    assert collection["display_name"] == site.collection_name
    assert site.collection_name.endswith(" files")
    assert collection["collection_type"] == "mapped"
    assert collection["storage_gateway_id"] == default["id"]
    assert collection["public"] is True
    # The first user created owns the endpoint and the collection.
    assert collection["identity_id"] == site.owner.id
    assert collection["root_path"] == default["root"]
    assert collection["https_url"].startswith(site.server.base_url)
    roles = list(owner.get_role_list())
    assert {(role["role"], role["principal"]) for role in roles} == {
        ("owner", f"urn:globus:auth:identity:{site.owner.id}"),
        ("administrator", f"urn:globus:auth:identity:{site.owner.id}"),
    }


def test_storage_gateway_lifecycle(owner: GCSClient) -> None:
    created = owner.create_storage_gateway(posix_gateway("project storage"))
    assert created.http_status == 201
    assert created["DATA_TYPE"].startswith("storage_gateway#1.")
    assert created["connector_id"] == POSIX
    assert created["policies"] == {"DATA_TYPE": "posix_storage_policies#1.0.0",
                                   "groups_allow": ["staff"]}
    gateway_id = created["id"]

    public_view = owner.get_storage_gateway(gateway_id)
    assert public_view["display_name"] == "project storage"
    # Private policies only when asked for (and to endpoint administrators).
    assert "users_deny" not in public_view
    assert "groups_allow" not in public_view["policies"]
    private_view = owner.get_storage_gateway(gateway_id, include="private_policies")
    assert private_view["users_deny"] == ["root"]
    assert private_view["policies"]["groups_allow"] == ["staff"]

    renamed = owner.update_storage_gateway(gateway_id,
                                           StorageGatewayDocument(display_name="renamed"))
    assert renamed["code"] == "success"
    assert owner.get_storage_gateway(gateway_id)["display_name"] == "renamed"
    expect_error(400, "bad_request", owner.update_storage_gateway, gateway_id,
                 StorageGatewayDocument(connector_id=S3))

    deleted = owner.delete_storage_gateway(gateway_id)
    assert deleted["code"] == "success"
    expect_error(404, "not_found", owner.get_storage_gateway, gateway_id)
    expect_error(404, "not_found", owner.delete_storage_gateway, gateway_id)


def test_a_connector_this_server_lacks_is_refused_by_name(owner: GCSClient) -> None:
    document = StorageGatewayDocument(display_name="box", connector_id=BOX,
                                      allowed_domains=["example.org"])
    error = expect_error(422, "unprocessable_entity", owner.create_storage_gateway, document)
    assert BOX in error.message and "POSIX" in error.message and POSIX in error.message
    assert S3 in error.message


def test_collection_lifecycle(site: EndpointSite, owner: GCSClient) -> None:
    gateway_id = owner.create_storage_gateway(posix_gateway("for collections"))["id"]
    document = MappedCollectionDocument(
        display_name="Project X", storage_gateway_id=gateway_id,
        collection_base_path="/projects/x", user_message="m" * 70,
        policies=POSIXCollectionPolicies(sharing_groups_allow=["g1"]), contact_email=None,
    )
    assert document["DATA_TYPE"] == "collection#1.7.0"  # what SDK 4.9 deduces
    created = owner.create_collection(document)
    assert created.http_status == 201
    collection_id = created["id"]
    assert created["DATA_TYPE"].startswith("collection#1.")
    assert created["collection_type"] == "mapped"
    assert created["delete_protected"] is True  # the default since GCS 5.4.69
    assert created["identity_id"] == site.owner.id
    assert created["user_message"] == "m" * 70
    assert created["policies"]["sharing_groups_allow"] == ["g1"]

    fetched = owner.get_collection(collection_id)
    assert fetched["display_name"] == "Project X"
    assert fetched["root_path"] == "/projects/x"
    # The creator administers the collection: that role is on the list.
    roles = list(owner.get_role_list(collection_id=collection_id))
    assert [(role["role"], role["collection"]) for role in roles] == [
        ("administrator", collection_id)]

    updated = owner.update_collection(collection_id, MappedCollectionDocument(
        description="Simulation outputs", keywords=["x"]))
    assert updated["description"] == "Simulation outputs"
    assert updated["display_name"] == "Project X"
    # Where the collection lies is fixed at creation.
    expect_error(400, "bad_request", owner.update_collection, collection_id,
                 MappedCollectionDocument(collection_base_path="/elsewhere"))

    # A collection is an Auth resource server of its own, with the SDK's scopes.
    https_scope = str(GCSClient.get_gcs_collection_scopes(collection_id).https)
    tokens = native_login(site.server, site.owner.username, site.owner.password,
                          [https_scope])
    assert tokens[collection_id]["scope"] == https_scope
    assert collection_id in client_ids(site)

    protected = expect_error(409, "conflict", owner.delete_collection, collection_id)
    assert "delete_protected" in protected.message
    owner.update_collection(collection_id, MappedCollectionDocument(delete_protected=False))
    assert owner.delete_collection(collection_id)["code"] == "success"
    expect_error(404, "not_found", owner.get_collection, collection_id)
    expect_error(404, "not_found", owner.get_role_list, collection_id=collection_id)
    assert collection_id not in client_ids(site)  # its Auth client went with it
    owner.delete_storage_gateway(gateway_id)


def test_guest_collections_need_a_credential_of_ones_own(
    site: EndpointSite, owner: GCSClient,
) -> None:
    """(Guest collections themselves: test_connect_guest.)"""
    guest = GuestCollectionDocument(
        display_name="share", mapped_collection_id=site.collection_id,
        user_credential_id=str(uuid.uuid4()), collection_base_path="/shared", public=True)
    refused = expect_error(403, "permission_denied", owner.create_collection, guest)
    assert refused.detail_data_type == "invalid_credential#1.0.0"
    assert refused.detail["user_credential_id"] == guest["user_credential_id"]
    # A mapped collection's field is no guest collection's.
    wrong = expect_error(400, "bad_request", owner.create_collection,
                         {**guest, "allow_guest_collections": True})
    assert wrong.detail["errors"][0]["property"] == "allow_guest_collections"


def test_put_replaces_whole_documents_and_takes_fetched_ones_back(
    site: EndpointSite, owner: GCSClient,
) -> None:
    """A script may GET a document, change a field and PUT it back: the read-only fields
    it carries are accepted as they are; PUT replaces what it leaves out."""
    gateway_id = owner.create_storage_gateway(posix_gateway("for PUT"))["id"]
    collection_id = owner.create_collection(MappedCollectionDocument(
        display_name="put me", storage_gateway_id=gateway_id, collection_base_path="/p",
        description="first", keywords=["a"], delete_protected=False))["id"]

    fetched = dict(owner.get_collection(collection_id).data)
    fetched["display_name"] = "put back"
    answer = owner.put(f"collections/{collection_id}", data=fetched)
    assert answer.http_status == 200
    (replaced,) = answer["data"]
    assert (replaced["display_name"], replaced["description"]) == ("put back", "first")
    assert replaced["https_url"] == fetched["https_url"]

    minimal = {"DATA_TYPE": "collection#1.0.0", "collection_type": "mapped",
               "display_name": "minimal"}
    (bare,) = owner.put(f"collections/{collection_id}", data=minimal)["data"]
    assert (bare["description"], bare["keywords"]) == (None, [])
    assert bare["root_path"] == "/p"  # where it lies was set at creation and stays
    assert bare["delete_protected"] is True  # back to the default
    changed_id = {**fetched, "id": str(uuid.uuid4())}
    error = expect_error(400, "bad_request", owner.put, f"collections/{collection_id}",
                         data=changed_id)
    assert error.detail["errors"][0]["property"] == "id"

    gateway = dict(owner.get_storage_gateway(gateway_id, include="private_policies").data)
    gateway["users_deny"] = ["root", "daemon"]
    (put_gateway,) = owner.put(f"storage_gateways/{gateway_id}", data=gateway)["data"]
    assert put_gateway["users_deny"] == ["root", "daemon"]

    endpoint = dict(owner.get_endpoint().data)
    endpoint["info_link"] = "https://example.org/lab"
    answer = owner.put("endpoint", data=endpoint, query_params={"include": "endpoint"})
    assert answer["data"][0]["info_link"] == "https://example.org/lab"
    assert answer["data"][0]["display_name"] == endpoint["display_name"]

    owner.update_collection(collection_id, MappedCollectionDocument(delete_protected=False))
    owner.delete_collection(collection_id)
    owner.delete_storage_gateway(gateway_id)


def test_collection_list_filters_and_pages(site: EndpointSite, owner: GCSClient) -> None:
    gateway_id = owner.create_storage_gateway(posix_gateway("paged"))["id"]
    made = [owner.create_collection(MappedCollectionDocument(
        display_name=f"paged {n}", storage_gateway_id=gateway_id, delete_protected=False,
    ))["id"] for n in range(3)]

    pages = list(owner.paginated.get_collection_list(
        page_size=1, query_params={"storage_gateway_id": gateway_id}).pages())
    assert len(pages) == 3
    assert [page["has_next_page"] for page in pages] == [True, True, False]
    assert [item["id"] for page in pages for item in page] == made
    everything = [item["id"] for item in owner.paginated.get_collection_list(
        page_size=2, filter="mapped_collections,created_by_me").items()]
    assert set(made) | {site.collection_id} <= set(everything)
    assert len(everything) == len(set(everything))
    assert list(owner.get_collection_list(filter="guest_collections")) == []
    expect_error(400, "bad_request", owner.get_collection_list, filter="mine_only")
    expect_error(400, "bad_request", owner.get_collection_list, page_size=0)
    expect_error(400, "bad_request", owner.get_collection_list, marker="not-a-marker")
    for collection_id in made:
        owner.delete_collection(collection_id)
    owner.delete_storage_gateway(gateway_id)


def test_roles(site: EndpointSite, owner: GCSClient, bob: User, bob_gcs: GCSClient) -> None:
    principal = f"urn:globus:auth:identity:{bob.id}"
    assert list(bob_gcs.get_role_list()) == []
    created = owner.create_role(GCSRoleDocument(principal=principal, role="activity_monitor"))
    assert created.http_status == 200
    assert created["DATA_TYPE"] == "role#1.0.0"
    assert (created["principal"], created["role"], created["collection"]) == (
        principal, "activity_monitor", None)
    role_id = created["id"]

    assert owner.get_role(role_id)["id"] == role_id
    assert bob_gcs.get_role(role_id)["role"] == "activity_monitor"  # one's own role
    assert [role["id"] for role in bob_gcs.get_role_list()] == [role_id]
    everyone = {role["role"] for role in owner.get_role_list(include="all_roles")}
    assert {"owner", "administrator", "activity_monitor"} <= everyone
    # Without include=all_roles a caller sees only their own roles.
    assert role_id not in {role["id"] for role in owner.get_role_list()}

    expect_error(409, "exists", owner.create_role,
                 GCSRoleDocument(principal=principal, role="activity_monitor"))
    bad = expect_error(400, "bad_request", owner.create_role,
                       GCSRoleDocument(principal="bob@example.org", role="administrator"))
    assert bad.detail["errors"][0]["property"] == "principal"
    expect_error(400, "bad_request", owner.create_role,
                 GCSRoleDocument(principal=principal, role="access_manager"))
    assert owner.delete_role(role_id)["code"] == "success"
    expect_error(404, "not_found", owner.get_role, role_id)

    owner_role = next(role for role in owner.get_role_list(include="all_roles")
                      if role["role"] == "owner")
    expect_error(409, "conflict", owner.delete_role, owner_role["id"])


def test_a_caller_without_a_role(
    site: EndpointSite, owner: GCSClient, bob: User, bob_gcs: GCSClient,
) -> None:
    # A public endpoint's public collections are there for everyone to see...
    assert bob_gcs.get_endpoint()["id"] == site.endpoint_id
    listed = {item["id"] for item in bob_gcs.get_collection_list()}
    assert site.collection_id in listed
    assert bob_gcs.get_collection(site.collection_id).get("root_path") is None
    # ...but not a private one, whose existence does not show.
    gateway_id = owner.create_storage_gateway(posix_gateway("private"))["id"]
    private_id = owner.create_collection(MappedCollectionDocument(
        display_name="private", storage_gateway_id=gateway_id, delete_protected=False))["id"]
    assert private_id not in {item["id"] for item in bob_gcs.get_collection_list()}
    expect_error(404, "not_found", bob_gcs.get_collection, private_id)

    for call, args in (
        (bob_gcs.create_storage_gateway, (posix_gateway("bob's"),)),
        (bob_gcs.update_endpoint, (EndpointDocument(display_name="mine now"),)),
        (bob_gcs.delete_storage_gateway, (gateway_id,)),
        (bob_gcs.update_collection, (site.collection_id,
                                     MappedCollectionDocument(display_name="mine"))),
        (bob_gcs.create_role, (GCSRoleDocument(
            principal=f"urn:globus:auth:identity:{bob.id}", role="administrator"),)),
    ):
        error = expect_error(403, "permission_denied", call, *args)
        assert error.detail_data_type == "missing_required_role#1.0.0"
        assert "administrator" in {item["role"] for item in error.detail["roles"]}
    expect_error(403, "permission_denied", bob_gcs.get_role_list, include="all_roles")

    # A collection role lets bob manage that collection, and only that one.
    owner.create_role(GCSRoleDocument(collection=private_id, role="administrator",
                                      principal=f"urn:globus:auth:identity:{bob.id}"))
    assert bob_gcs.update_collection(private_id, MappedCollectionDocument(
        description="bob's now"))["description"] == "bob's now"
    expect_error(403, "permission_denied", bob_gcs.delete_collection, private_id)
    owner.delete_collection(private_id)
    owner.delete_storage_gateway(gateway_id)


def test_unknown_ids_and_tokens(site: EndpointSite, owner: GCSClient, bob: User) -> None:
    missing = str(uuid.uuid4())
    expect_error(404, "not_found", owner.get_collection, missing)
    expect_error(404, "not_found", owner.get_storage_gateway, "not-a-uuid")
    expect_error(404, "not_found", owner.delete_role, missing)

    anonymous = GCSClient(site.server.manager_url)
    error = expect_error(401, "not_authorized", anonymous.get_collection_list)
    assert error.detail["required_scopes"] == [manage_collections(site.endpoint_id)]
    # A token for another service is no token for the endpoint.
    transfer_token = native_login(site.server, bob.username, bob.password,
                                  [TRANSFER_ALL])["transfer.api.globus.org"]["access_token"]
    wrong = GCSClient(site.server.manager_url,
                      authorizer=globus_sdk.AccessTokenAuthorizer(transfer_token))
    expect_error(401, "not_authorized", wrong.get_endpoint)


def test_malformed_bodies_get_the_gcs_envelope(site: EndpointSite, owner: GCSClient) -> None:
    wrong_type = {"DATA_TYPE": "collection#1.0.0", "collection_type": "mapped",
                  "display_name": 5, "storage_gateway_id": str(uuid.uuid4())}
    error = expect_error(400, "bad_request", owner.create_collection, wrong_type)
    assert error.detail["errors"][0]["property"] == "display_name"
    assert "display_name" in error.message
    unknown = expect_error(400, "bad_request", owner.create_collection,
                           {**wrong_type, "display_name": "x", "colour": "blue"})
    assert unknown.detail["errors"][0]["property"] == "colour"
    version = expect_error(400, "bad_request", owner.create_collection,
                           {**wrong_type, "DATA_TYPE": "collection#9.0.0", "display_name": "x"})
    assert "collection#9.0.0" in version.message

    # Not JSON at all: the same envelope, with a JSON content type the SDK can parse.
    token = owner.authorizer.get_authorization_header()  # type: ignore[union-attr]
    answer = requests.post(site.server.base_url + "api/collections", data=b"{not json",
                           headers={"Authorization": token,
                                    "Content-Type": "application/json"},
                           verify=site.server.ca_file, timeout=30)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["DATA_TYPE"].startswith("result#") and body["code"] == "bad_request"
    assert body["http_response_code"] == 400 and body["data"] == []
    nowhere = requests.get(site.server.base_url + "api/no_such_route",
                           verify=site.server.ca_file, timeout=30)
    assert nowhere.status_code == 404 and nowhere.json()["code"] == "not_found"


def test_globus_cli_gcs_commands(
    site: EndpointSite, owner: GCSClient, tmp_path: Path,
) -> None:
    """`globus login --gcs`, then the CLI's GCS commands, which find the Manager API
    through Transfer's `gcs_manager_url` and `owner_id`."""
    env = shell_environment(site.server, tmp_path / "home")
    before = globus(env, "gcs", "collection", "list", site.endpoint_id)
    assert before.returncode != 0
    cli_login(site.server, site.owner, env, "--gcs", site.endpoint_id)

    listed = globus(env, "gcs", "collection", "list", site.endpoint_id, "-F", "json")
    assert listed.returncode == 0, listed.stderr
    assert site.collection_id in {item["id"] for item in json.loads(listed.stdout)["DATA"]}
    table = globus(env, "gcs", "collection", "list", site.endpoint_id)
    assert site.collection_name in table.stdout and "mapped" in table.stdout

    endpoint = globus(env, "gcs", "endpoint", "show", site.endpoint_id)
    assert endpoint.returncode == 0, endpoint.stderr
    assert owner.get_endpoint()["display_name"] in endpoint.stdout

    gateways = globus(env, "gcs", "storage-gateway", "list", site.endpoint_id)
    assert gateways.returncode == 0, gateways.stderr
    assert "POSIX" in gateways.stdout

    shown = globus(env, "collection", "show", site.collection_id)
    assert shown.returncode == 0, shown.stderr
    # "Owner" is the collection's identity_id, which the CLI looks up in Auth.
    assert site.collection_name in shown.stdout and site.owner.username in shown.stdout
    assert site.collection_id in shown.stdout
