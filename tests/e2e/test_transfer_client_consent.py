"""A client identity (client credentials, the SDK's `ClientApp`) reaches a mapped
collection's data through Transfer only when its token asked for the collection's
``data_access`` under Transfer's scope, as a user must consent to it: without it Transfer
answers ``ConsentRequired``, exactly as for a user."""

from __future__ import annotations

import globus_sdk
import pytest
from globus_sdk import GlobusAppConfig, TransferClient

from tests.conftest import EndpointSite
from tests.e2e.test_transfer_file_ops import dependency


def client_transfer(site: EndpointSite, created: dict[str, str], *,
                    data_access: bool) -> TransferClient:
    app = globus_sdk.ClientApp("robot", client_id=created["id"],
                               client_secret=created["secret"],
                               config=GlobusAppConfig(token_storage="memory"))
    client = TransferClient(app=app)
    if data_access:
        client.add_app_data_access_scope(site.collection_id)
    return client


def test_a_client_needs_the_data_access_scope_as_a_user_does(site: EndpointSite) -> None:
    created = site.server.create_client("robot", "client_identity")
    plain = client_transfer(site, created, data_access=False)
    with pytest.raises(globus_sdk.TransferAPIError) as refused:
        plain.operation_ls(site.collection_id)
    assert (refused.value.http_status, refused.value.code) == (403, "ConsentRequired")
    assert refused.value.raw_json["required_scopes"] == [dependency(site.collection_id)]

    # Asked for: past the consent, the collection's own checks decide (this gateway's
    # allowed domains have no room for clients).
    consented = client_transfer(site, created, data_access=True)
    with pytest.raises(globus_sdk.TransferAPIError) as mapped:
        consented.operation_ls(site.collection_id)
    assert (mapped.value.http_status, mapped.value.code) == (403, "EndpointPermissionDenied")
    assert "isthmus.local" in mapped.value.message
