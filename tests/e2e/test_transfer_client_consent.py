"""A client identity (client credentials, the SDK's `ClientApp`) reaches a mapped
collection's data through Transfer only when its token asked for the collection's
``data_access`` under Transfer's scope, as a user must consent to it: without it Transfer
answers ``ConsentRequired``, exactly as for a user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import globus_sdk
import pytest
from globus_sdk import (
    GCSClient,
    GlobusAppConfig,
    MappedCollectionDocument,
    StorageGatewayDocument,
    TransferClient,
)

from tests.conftest import EndpointSite
from tests.e2e.test_connect_guest import ACCOUNT
from tests.e2e.test_connect_manager_api import POSIX
from tests.e2e.test_transfer_file_ops import dependency

CLIENTS = "clients.auth.globus.org"


@pytest.fixture(scope="module")
def robots_collection(site: EndpointSite, owner: GCSClient,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A mapped collection (not high assurance: data_access needed) whose gateway lets
    client identities in, mapped to the server's account; its root on disk."""
    root = tmp_path_factory.mktemp("robots")
    (root / "report.csv").write_text("a,b\n")
    gateway = owner.create_storage_gateway(StorageGatewayDocument(
        display_name="robots' storage", connector_id=POSIX, root=str(root),
        allowed_domains=[CLIENTS],
        identity_mappings=[{"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": [{
            "source": "{username}", "match": "(.*)@" + CLIENTS.replace(".", "\\."),
            "output": ACCOUNT}]}],
        additional_fields={"restrict_paths": {"DATA_TYPE": "path_restrictions#1.0.0",
                                              "read_write": ["/"]}}))
    collection = str(owner.create_collection(MappedCollectionDocument(
        display_name="robots' data", storage_gateway_id=gateway["id"],
        collection_base_path="/", public=True))["id"])
    try:
        yield collection, root
    finally:
        owner.update_collection(collection, MappedCollectionDocument(delete_protected=False))
        owner.delete_collection(collection)
        owner.delete_storage_gateway(gateway["id"])


def client_transfer(created: dict[str, str], collection: str, *,
                    data_access: bool) -> TransferClient:
    app = globus_sdk.ClientApp("robot", client_id=created["id"],
                               client_secret=created["secret"],
                               config=GlobusAppConfig(token_storage="memory"))
    client = TransferClient(app=app)
    if data_access:
        client.add_app_data_access_scope(collection)
    return client


def test_a_client_needs_the_data_access_scope_as_a_user_does(
        site: EndpointSite, robots_collection: tuple[str, Path]) -> None:
    collection, root = robots_collection
    created = site.server.create_client("robot", "client_identity")
    plain = client_transfer(created, collection, data_access=False)
    with pytest.raises(globus_sdk.TransferAPIError) as refused:
        plain.operation_ls(collection)
    assert (refused.value.http_status, refused.value.code) == (403, "ConsentRequired")
    assert refused.value.raw_json["required_scopes"] == [dependency(collection)]
    with pytest.raises(globus_sdk.TransferAPIError) as refused:
        plain.operation_mkdir(collection, "/made-without-consent")
    assert refused.value.code == "ConsentRequired"
    assert not (root / "made-without-consent").exists()

    # Asked for in its token's request: the client's data_access is as a user's consent.
    consented = client_transfer(created, collection, data_access=True)
    listed = {item["name"] for item in consented.operation_ls(collection, path="/")}
    assert listed == {"report.csv", f"{created['id']}@{CLIENTS}"}  # and its own folder
    consented.operation_mkdir(collection, "/made-by-the-robot")
    assert (root / "made-by-the-robot").is_dir()
