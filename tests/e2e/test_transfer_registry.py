"""Transfer's registry of endpoints and collections, through `TransferClient` and globus-cli.

Connect publishes its endpoint and collections; `get_endpoint` and
`endpoint_search` show them with the fields the SDK and the CLI read, each
caller seeing only what is public or theirs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import globus_sdk
import pytest
from globus_sdk import (
    GCSClient,
    GCSRoleDocument,
    MappedCollectionDocument,
    StorageGatewayDocument,
    TransferAPIError,
    TransferClient,
)

from tests.conftest import EndpointSite, User, _new_user, shell_environment
from tests.e2e.helpers import TRANSFER_ALL, cli_login, globus, native_login, pointed_at

POSIX = "145812c8-decc-41f1-83cf-bb2a85a2a70b"
# Keys globus-cli indexes directly (a KeyError otherwise) and those its displays read.
CLI_KEYS = {"is_globus_connect", "display_name", "canonical_name", "id", "owner_string",
            "description", "shareable", "keywords", "info_link", "contact_email",
            "organization", "department", "contact_info", "public", "default_directory",
            "force_encryption", "subscription_id", "local_user_info_available",
            "gcp_connected", "gcp_paused", "tlsftp_server", "gcs_manager_url", "entity_type",
            "high_assurance", "owner_id", "host_endpoint_id", "non_functional", "gcs_version",
            "https_server", "my_effective_roles", "DATA"}


def transfer_client(site: EndpointSite, user: User) -> TransferClient:
    token = native_login(site.server, user.username, user.password,
                         [TRANSFER_ALL])["transfer.api.globus.org"]["access_token"]
    return TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))


@pytest.fixture(scope="module")
def site(endpoint_site: EndpointSite) -> Iterator[EndpointSite]:
    with pointed_at(endpoint_site.server):
        yield endpoint_site


@pytest.fixture(scope="module")
def owner_tc(site: EndpointSite) -> TransferClient:
    return transfer_client(site, site.owner)


@pytest.fixture(scope="module")
def owner_gcs(site: EndpointSite) -> GCSClient:
    scope = str(GCSClient.get_gcs_endpoint_scopes(site.endpoint_id).manage_collections)
    token = native_login(site.server, site.owner.username, site.owner.password,
                         [scope])[site.endpoint_id]["access_token"]
    return GCSClient(site.server.manager_url, authorizer=globus_sdk.AccessTokenAuthorizer(token))


@pytest.fixture(scope="module")
def bob(site: EndpointSite) -> User:
    return _new_user(site.server, "bobby")


@pytest.fixture(scope="module")
def bob_tc(site: EndpointSite, bob: User) -> TransferClient:
    return transfer_client(site, bob)


@pytest.fixture(scope="module")
def gateway_id(owner_gcs: GCSClient) -> str:
    return str(owner_gcs.create_storage_gateway(StorageGatewayDocument(
        display_name="registry tests", connector_id=POSIX, root="/",
        allowed_domains=["example.org"]))["id"])


def new_collection(gcs: GCSClient, gateway_id: str, name: str, **fields: Any) -> str:
    return str(gcs.create_collection(MappedCollectionDocument(
        display_name=name, storage_gateway_id=gateway_id, delete_protected=False,
        **fields))["id"])


def ids(response: Any) -> list[str]:
    return [item["id"] for item in response]


def expect_error(status: int, code: str, call: Any, *args: Any, **kwargs: Any) -> TransferAPIError:
    with pytest.raises(TransferAPIError) as caught:
        call(*args, **kwargs)
    assert (caught.value.http_status, caught.value.code) == (status, code), caught.value.raw_text
    assert caught.value.request_id
    return caught.value


def test_the_endpoint_document(site: EndpointSite, owner_tc: TransferClient) -> None:
    endpoint = owner_tc.get_endpoint(site.endpoint_id)
    assert set(endpoint.data) >= CLI_KEYS
    assert endpoint["DATA_TYPE"] == "endpoint"
    assert endpoint["id"] == site.endpoint_id
    assert endpoint["entity_type"] == "GCSv5_endpoint"
    assert endpoint["non_functional"] is True
    assert endpoint["is_globus_connect"] is False
    assert endpoint["owner_id"] == site.endpoint_id
    assert endpoint["owner_string"] == site.owner.username
    assert endpoint["gcs_manager_url"] == site.server.manager_url
    assert endpoint["gcs_version"].startswith("5.4.")
    assert endpoint["my_effective_roles"] == ["administrator", "owner"]
    # What Transfer advertises is an address GCSClient can use as given.
    assert GCSClient(endpoint["gcs_manager_url"]).endpoint_client_id == site.endpoint_id


def test_the_collection_document(
    site: EndpointSite, owner_tc: TransferClient, bob_tc: TransferClient,
) -> None:
    collection = owner_tc.get_endpoint(site.collection_id)
    assert set(collection.data) >= CLI_KEYS
    assert collection["entity_type"] == "GCSv5_mapped_collection"
    assert collection["display_name"] == site.collection_name
    assert collection["owner_id"] == site.endpoint_id
    assert collection["owner_string"] == f"{site.endpoint_id}@clients.auth.globus.org"
    assert collection["non_functional"] is False
    assert collection["non_functional_endpoint_id"] == site.endpoint_id
    assert collection["host_endpoint_id"] is None
    assert collection["high_assurance"] is False
    assert collection["https_server"].startswith(site.server.base_url)
    assert collection["gcs_manager_url"] == site.server.manager_url
    assert collection["canonical_name"] == f"{site.endpoint_id}#{site.collection_id}"
    assert collection["my_effective_roles"] == ["administrator"]
    # Another user sees the public collection, holding no role on it.
    assert bob_tc.get_endpoint(site.collection_id)["my_effective_roles"] == []


def test_my_endpoints_as_the_seeds_search(
    site: EndpointSite, owner_tc: TransferClient, bob_tc: TransferClient,
) -> None:
    mine = owner_tc.endpoint_search(filter_scope="my-endpoints")
    assert mine["DATA_TYPE"] == "endpoint_list"
    assert mine["has_next_page"] is False
    assert {site.endpoint_id, site.collection_id} <= set(ids(mine))
    assert ids(bob_tc.endpoint_search(filter_scope="my-endpoints")) == []
    administered = ids(owner_tc.endpoint_search(filter_scope="administered-by-me"))
    assert {site.endpoint_id, site.collection_id} <= set(administered)
    assert ids(bob_tc.endpoint_search(filter_scope="administered-by-me")) == []


def test_full_text_search_finds_the_files_collection(
    site: EndpointSite, bob_tc: TransferClient,
) -> None:
    for text in (site.collection_name, site.collection_name.upper(), "files"):
        found = ids(bob_tc.endpoint_search(text))
        assert site.collection_id in found, text
    assert ids(bob_tc.endpoint_search(f"{site.collection_name} nosuchword")) == []
    only_collections = bob_tc.endpoint_search(site.collection_name,
                                              filter_entity_type="GCSv5_mapped_collection")
    assert {item["entity_type"] for item in only_collections} == {"GCSv5_mapped_collection"}
    endpoints = ids(bob_tc.endpoint_search("Isthmus", filter_non_functional=True))
    assert endpoints == [site.endpoint_id]
    by_owner = ids(bob_tc.endpoint_search(filter_scope="all", filter_fulltext="files",
                                          filter_owner_id=site.endpoint_id))
    assert site.collection_id in by_owner
    assert ids(bob_tc.endpoint_search("files", filter_owner_id=str(uuid.uuid4()))) == []


def test_search_pages_with_limit_and_offset(
    owner_gcs: GCSClient, owner_tc: TransferClient, gateway_id: str,
) -> None:
    made = [new_collection(owner_gcs, gateway_id, f"pagination probe {n}", public=True)
            for n in range(3)]
    first = owner_tc.endpoint_search("pagination probe", limit=2)
    assert (first["has_next_page"], first["offset"], first["limit"]) == (True, 0, 2)
    second = owner_tc.endpoint_search("pagination probe", limit=2, offset=2)
    assert second["has_next_page"] is False
    assert ids(first) + ids(second) == made  # ordered by name
    # The SDK's paginator reads has_next_page and advances by len(DATA).
    assert [item["id"] for item in owner_tc.paginated.endpoint_search(
        "pagination probe").items()] == made
    for collection_id in made:
        owner_gcs.delete_collection(collection_id)


def test_private_collections_and_roles(
    site: EndpointSite, owner_gcs: GCSClient, owner_tc: TransferClient, bob: User,
    bob_tc: TransferClient, gateway_id: str,
) -> None:
    private_id = new_collection(owner_gcs, gateway_id, "hidden treasure")
    assert owner_tc.get_endpoint(private_id)["public"] is False
    assert private_id in ids(owner_tc.endpoint_search("hidden treasure"))
    # Not found, rather than forbidden: a private collection's existence does not leak.
    expect_error(404, "EndpointNotFound", bob_tc.get_endpoint, private_id)
    assert ids(bob_tc.endpoint_search("hidden treasure")) == []

    owner_gcs.create_role(GCSRoleDocument(collection=private_id, role="activity_manager",
                                          principal=f"urn:globus:auth:identity:{bob.id}"))
    assert bob_tc.get_endpoint(private_id)["my_effective_roles"] == ["activity_manager"]
    assert ids(bob_tc.endpoint_search("hidden treasure")) == [private_id]
    assert ids(bob_tc.endpoint_search(filter_scope="administered-by-me")) == []

    owner_gcs.delete_collection(private_id)
    expect_error(404, "EndpointDeleted", owner_tc.get_endpoint, private_id)
    assert ids(owner_tc.endpoint_search("hidden treasure")) == []


def test_scopes_without_tasks_or_guests_are_empty(site: EndpointSite,
                                                   bob_tc: TransferClient) -> None:
    # A user of its own: other modules run tasks on the session's site as its owner.
    newcomer_tc = transfer_client(site, _new_user(site.server, "newcomer"))
    for scope in ("recently-used", "in-use", "shared-by-me", "shared-with-me",
                  "my-gcp-endpoints"):
        assert ids(newcomer_tc.endpoint_search(filter_scope=scope)) == [], scope
    everything_usable = ids(bob_tc.endpoint_search(filter_scope="hide-no-permissions"))
    assert everything_usable and all(
        bob_tc.get_endpoint(item)["entity_type"] != "GCSv5_endpoint"
        for item in everything_usable)


def test_errors_in_transfer_format(
    site: EndpointSite, owner_tc: TransferClient, owner_gcs: GCSClient,
) -> None:
    missing = str(uuid.uuid4())
    error = expect_error(404, "EndpointNotFound", owner_tc.get_endpoint, missing)
    assert error.message == f"No such endpoint '{missing}'"
    expect_error(404, "EndpointNotFound", owner_tc.get_endpoint, "not-an-id")
    expect_error(400, "ClientError.BadRequest", owner_tc.endpoint_search,
                 filter_scope="everything")
    expect_error(400, "ClientError.BadRequest", owner_tc.endpoint_search, filter_scope="all")
    expect_error(400, "ClientError.BadRequest", owner_tc.endpoint_search, "x", limit=101)
    expect_error(400, "ClientError.BadRequest", owner_tc.endpoint_search, "x",
                 filter_entity_type="GCSv6_endpoint")
    expect_error(400, "ClientError.BadRequest", owner_tc.endpoint_search,
                 filter_scope="my-endpoints", filter_owner_id=site.endpoint_id)

    anonymous = TransferClient()
    expect_error(401, "ClientError.AuthenticationFailed", anonymous.get_endpoint,
                 site.endpoint_id)
    # A token for the endpoint's Manager API is no Transfer token.
    gcs_token = owner_gcs.authorizer.get_authorization_header()  # type: ignore[union-attr]
    wrong = TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(
        gcs_token.removeprefix("Bearer ")))
    expect_error(401, "AuthenticationFailed", wrong.endpoint_search, "files")


# --- globus-cli 3.43 ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_env(site: EndpointSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = shell_environment(site.server, tmp_path_factory.mktemp("cli") / "home")
    cli_login(site.server, site.owner, env)
    return env


def test_globus_endpoint_search_and_show(site: EndpointSite, cli_env: dict[str, str]) -> None:
    search = globus(cli_env, "endpoint", "search", site.collection_name)
    assert search.returncode == 0, search.stderr
    assert site.collection_id in search.stdout and site.collection_name in search.stdout
    mine = globus(cli_env, "endpoint", "search", "--filter-scope", "my-endpoints",
                  "-F", "json")
    assert mine.returncode == 0, mine.stderr
    assert site.endpoint_id in mine.stdout

    show = globus(cli_env, "endpoint", "show", site.endpoint_id)
    assert show.returncode == 0, show.stderr
    assert site.owner.username in show.stdout
    assert "127.0.0.1" in show.stdout  # the Domain column, from gcs_manager_url
    # A collection id is refused by design, pointing at the collection commands.
    wrong = globus(cli_env, "endpoint", "show", site.collection_id)
    assert wrong.returncode == 3, wrong.stdout + wrong.stderr
    assert "collection show" in wrong.stderr
