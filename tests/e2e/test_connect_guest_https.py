"""A guest collection served over HTTPS: its access rules decide, through real clients.

Alice registers her account (a user credential), makes a guest collection of a folder in
her home on the server's "<host> files" collection and shares a folder of it with bob
read-only through Transfer (`TransferClient.add_endpoint_acl_rule`); bob, carl (no rule)
and alice then reach it with curl and a token for the guest's ``https`` scope alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from globus_sdk import GCSClient, GuestCollectionDocument, TransferClient, UserCredentialDocument

from tests.conftest import EndpointSite, User, _new_user
from tests.e2e.data_helpers import curl
from tests.e2e.helpers import native_login, pointed_at
from tests.e2e.test_connect_guest import ACCOUNT, rule
from tests.e2e.test_connect_manager_api import gcs_client
from tests.e2e.test_transfer_registry import transfer_client


@pytest.fixture(scope="module")
def site(endpoint_site: EndpointSite) -> Iterator[EndpointSite]:
    with pointed_at(endpoint_site.server):
        yield endpoint_site


def https_token(site: EndpointSite, user: User, guest_id: str) -> str:
    """A token for the guest's https scope only (a guest needs no data_access)."""
    scope = str(GCSClient.get_gcs_collection_scopes(guest_id).https)
    tokens = native_login(site.server, user.username, user.password, [scope])
    return str(tokens[guest_id]["access_token"])


def test_a_folder_shared_read_only_is_read_but_not_written_over_https(
    site: EndpointSite,
) -> None:
    alice, bob, carl = (_new_user(site.server, name) for name in ("alice", "bob", "carl"))
    alice_gcs = gcs_client(site, alice)
    gateway = str(alice_gcs.get_collection(site.collection_id)["storage_gateway_id"])
    credential = alice_gcs.create_user_credential(UserCredentialDocument(
        storage_gateway_id=gateway, identity_id=alice.id, username=ACCOUNT,
        display_name="alice on the files gateway"))
    created = alice_gcs.create_collection(GuestCollectionDocument(
        display_name="alice's results", mapped_collection_id=site.collection_id,
        user_credential_id=credential["id"], collection_base_path="/~/results"))
    guest = str(created["id"])
    try:
        # On "<host> files" alice's home is her own folder at the root.
        root = site.server.data_dir / "files" / alice.username / "results"
        (root / "shared").mkdir(parents=True)
        (root / "shared" / "data.csv").write_bytes(b"t,x\n0,1.5\n")
        (root / "private.txt").write_bytes(b"alice only\n")
        alice_tc: TransferClient = transfer_client(site, alice)
        added = alice_tc.add_endpoint_acl_rule(guest, rule("identity", bob.id, "/shared/", "r"))
        assert added.http_status == 201
        url = f"{site.server.base_url}data/{guest}"

        bob_token = https_token(site, bob, guest)
        got = curl(site.server, bob_token, f"{url}/shared/data.csv")
        assert got.status == 200, got.text
        assert got.body == b"t,x\n0,1.5\n"
        # Read only: the write is refused and nothing lands on disk.
        refused = curl(site.server, bob_token, "-X", "PUT", "--data-binary", "bob was here",
                       f"{url}/shared/bob.txt")
        assert refused.status == 403, refused.text
        assert not (root / "shared" / "bob.txt").exists()
        overwrite = curl(site.server, bob_token, "-X", "PUT", "--data-binary", "changed",
                         f"{url}/shared/data.csv")
        assert overwrite.status == 403, overwrite.text
        assert (root / "shared" / "data.csv").read_bytes() == b"t,x\n0,1.5\n"
        deleted = curl(site.server, bob_token, "-X", "DELETE", f"{url}/shared/data.csv")
        assert deleted.status == 403, deleted.text
        assert (root / "shared" / "data.csv").exists()
        # Outside the shared folder bob reads nothing.
        outside = curl(site.server, bob_token, f"{url}/private.txt")
        assert outside.status == 403, outside.text
        assert b"alice only" not in outside.body

        # Carl, whom no rule names, is refused even with a token for the guest.
        carl_get = curl(site.server, https_token(site, carl, guest), f"{url}/shared/data.csv")
        assert carl_get.status == 403, carl_get.text
        assert b"0,1.5" not in carl_get.body

        # The owner reads and writes all of it, as her account.
        alice_token = https_token(site, alice, guest)
        written = curl(site.server, alice_token, "-X", "PUT", "--data-binary", "from alice",
                       f"{url}/shared/notes.txt")
        assert written.status in (200, 201), written.text
        assert (root / "shared" / "notes.txt").read_bytes() == b"from alice"
        assert curl(site.server, alice_token, f"{url}/private.txt").body == b"alice only\n"
        # Now bob reads what alice wrote.
        assert curl(site.server, bob_token, f"{url}/shared/notes.txt").body == b"from alice"
    finally:
        gcs_client(site, site.owner).delete_collection(guest)
