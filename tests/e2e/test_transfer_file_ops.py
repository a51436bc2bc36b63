"""Transfer's file operations (ls, stat, mkdir, rename, symlink) and bookmarks, through the
official SDK and the real globus-cli, on the server's "<host> files" collection (mapped, not
high assurance: data_access consent needed) and on a guest collection of it (access rules).

Where a file lands, or must not, the tests look on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import globus_sdk
import pytest
from globus_sdk import GlobusAppConfig, TransferClient

from tests.browser import Browser
from tests.conftest import EndpointSite, User, _new_user
from tests.e2e.helpers import (
    TRANSFER_ALL,
    TUTORIAL_CLIENT_ID,
    pointed_at,
    scripted_login_flow,
)
from tests.e2e.test_transfer_registry import transfer_client


@pytest.fixture(scope="module")
def site(endpoint_site: EndpointSite) -> Iterator[EndpointSite]:
    with pointed_at(endpoint_site.server):
        yield endpoint_site


def dependency(collection_id: str) -> str:
    return f"{TRANSFER_ALL}[*https://auth.globus.org/scopes/{collection_id}/data_access]"


def home_of(site: EndpointSite, user: User) -> Path:
    """A user's home on "<host> files": a folder of their own at the collection root."""
    return site.server.data_dir / "files" / user.username


def app_transfer_client(site: EndpointSite, user: User, *collections: str) -> TransferClient:
    """The SDK 4.x way: a UserApp whose transfer scope depends on the collections'
    data_access (`add_app_data_access_scope`), the login done by a scripted browser."""
    flow = scripted_login_flow(Browser(site.server.ca_file), user.username, user.password)
    app = globus_sdk.UserApp("isthmus transfer tests", client_id=TUTORIAL_CLIENT_ID,
                             config=GlobusAppConfig(token_storage="memory",
                                                    login_flow_manager=flow))
    client = TransferClient(app=app)
    if collections:
        client.add_app_data_access_scope(collections)
    return client


@pytest.fixture(scope="module")
def alice(site: EndpointSite) -> User:
    return _new_user(site.server, "alice")


@pytest.fixture(scope="module")
def alice_tc(site: EndpointSite, alice: User) -> TransferClient:
    return app_transfer_client(site, alice, site.collection_id)


def test_ls_asks_for_data_access_consent_until_the_user_gives_it(site: EndpointSite) -> None:
    bob = _new_user(site.server, "bob")
    plain = transfer_client(site, bob)  # a login for the transfer scope alone
    with pytest.raises(globus_sdk.TransferAPIError) as raised:
        plain.operation_ls(site.collection_id)
    error = raised.value
    wanted = [dependency(site.collection_id)]
    assert (error.http_status, error.code) == (403, "ConsentRequired")
    assert error.message == "Missing required data_access consent"
    assert error.info.consent_required
    assert error.info.consent_required.required_scopes == wanted
    assert error.raw_json["required_scopes"] == wanted
    assert error.raw_json["authorization_parameters"] == {
        "session_message": "Missing required data_access consent", "required_scopes": wanted}
    assert error.raw_json["resource"] == f"/operation/endpoint/{site.collection_id}/ls"
    assert not home_of(site, bob).exists()  # nothing was done on the collection

    # The SDK's way to consent; then the listing is bob's home.
    consented = app_transfer_client(site, bob, site.collection_id)
    listing = consented.operation_ls(site.collection_id)
    assert listing["DATA_TYPE"] == "file_list"
    assert listing["path"] == "/~/"
    assert listing["absolute_path"] == f"/{bob.username}/"
    assert listing["DATA"] == []
    assert home_of(site, bob).is_dir()
    # The consent is bob's now: his earlier login's token reaches the collection too.
    (home_of(site, bob) / "notes.txt").write_text("hello")
    assert [item["name"] for item in plain.operation_ls(site.collection_id)] == ["notes.txt"]
