"""A guest collection served over HTTPS: its access rules decide, through real clients.

Alice registers her account (a user credential), makes a guest collection of a folder in
her home on the server's "<host> files" collection and shares folders of it through
Transfer (`TransferClient.add_endpoint_acl_rule`); bob, carl (no rule), anyone without a
token and alice then reach it with curl, requests and rclone, with a token for the
guest's ``https`` scope alone. What the owner may not share deeper down (her gateway's
path restrictions, a sharing policy) refuses whole-tree operations above it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from globus_sdk import (
    GCSClient,
    GuestCollectionDocument,
    MappedCollectionDocument,
    StorageGatewayDocument,
    TransferClient,
    UserCredentialDocument,
)

from tests.conftest import EndpointSite, User, _new_user
from tests.e2e.data_helpers import curl, dav, hrefs, rclone
from tests.e2e.helpers import native_login
from tests.e2e.test_connect_guest import ACCOUNT, rule
from tests.e2e.test_connect_manager_api import gcs_client
from tests.e2e.test_transfer_registry import transfer_client


def https_token(site: EndpointSite, user: User, guest_id: str) -> str:
    """A token for the guest's https scope only (a guest needs no data_access)."""
    scope = str(GCSClient.get_gcs_collection_scopes(guest_id).https)
    tokens = native_login(site.server, user.username, user.password, [scope])
    return str(tokens[guest_id]["access_token"])


@contextmanager
def guest_of(site: EndpointSite, alice: User, folder: str) -> Iterator[tuple[str, Path]]:
    """A guest collection of ``folder`` in alice's home (made on disk), and that folder;
    deleted afterwards."""
    alice_gcs = gcs_client(site, alice)
    gateway = str(alice_gcs.get_collection(site.collection_id)["storage_gateway_id"])
    credential = alice_gcs.create_user_credential(UserCredentialDocument(
        storage_gateway_id=gateway, identity_id=alice.id, username=ACCOUNT,
        display_name="alice on the files gateway"))
    created = alice_gcs.create_collection(GuestCollectionDocument(
        display_name=f"alice's {folder}", mapped_collection_id=site.collection_id,
        user_credential_id=credential["id"], collection_base_path=f"/~/{folder}"))
    guest = str(created["id"])
    try:
        # On "<host> files" alice's home is her own folder at the root.
        root = site.server.data_dir / "files" / alice.username / folder
        root.mkdir(parents=True)
        yield guest, root
    finally:
        gcs_client(site, site.owner).delete_collection(guest)


def make_files(root: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)


def on_disk(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file()}


def data_url(site: EndpointSite, guest: str) -> str:
    return f"{site.server.base_url}data/{guest}"



def test_a_folder_shared_read_only_is_read_but_not_written_over_https(
    site: EndpointSite,
) -> None:
    alice, bob, carl = (_new_user(site.server, name) for name in ("alice", "bob", "carl"))
    with guest_of(site, alice, "results") as (guest, root):
        (root / "shared").mkdir()
        (root / "shared" / "data.csv").write_bytes(b"t,x\n0,1.5\n")
        (root / "private.txt").write_bytes(b"alice only\n")
        alice_tc: TransferClient = transfer_client(site, alice)
        added = alice_tc.add_endpoint_acl_rule(guest, rule("identity", bob.id, "/shared/", "r"))
        assert added.http_status == 201
        url = data_url(site, guest)

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


def test_what_the_owner_may_not_share_deeper_down_refuses_whole_tree_operations(
    site: EndpointSite,
) -> None:
    alice, bob = (_new_user(site.server, name) for name in ("alice", "bob"))
    owner_gcs = gcs_client(site, site.owner)
    gateway = str(owner_gcs.get_collection(site.collection_id)["storage_gateway_id"])
    restrictions: dict[str, Any] = owner_gcs.get_storage_gateway(
        gateway, include="private_policies")["restrict_paths"]
    with guest_of(site, alice, "lab") as (guest, root):
        make_files(root, {"proj/ok/o.txt": b"ok", "proj/raw/r.dat": b"raw data",
                          "proj/secret/s.txt": b"secret", "other/stuff/x.txt": b"x"})
        transfer_client(site, alice).add_endpoint_acl_rule(guest, rule("identity", bob.id,
                                                                       "/", "rw"))
        # Alice's gateway no longer reaches proj/raw; a sharing policy keeps proj/secret
        # from being shared.
        owner_gcs.update_storage_gateway(gateway, StorageGatewayDocument(additional_fields={
            "restrict_paths": {**restrictions, "none": ["$HOME/lab/proj/raw"]}}))
        policy = owner_gcs.post("sharing_policies", data={
            "DATA_TYPE": "sharing_policy#1.0.0", "collection_id": site.collection_id,
            "users": [ACCOUNT], "sharing_restrict_paths": {
                "DATA_TYPE": "path_restrictions#1.0.0", "read_write": ["$HOME"],
                "none": ["$HOME/lab/proj/secret"]}})
        try:
            url = data_url(site, guest)
            bob_token = https_token(site, bob, guest)
            untouched = on_disk(root)
            assert curl(site.server, bob_token, f"{url}/proj/secret/s.txt").status == 403
            assert curl(site.server, bob_token, f"{url}/proj/ok/o.txt").body == b"ok"
            # Bob, and alice herself, may write /proj but not everything in it.
            for token in (bob_token, https_token(site, alice, guest)):
                refused = [
                    dav(site, token, "DELETE", f"{url}/proj"),
                    dav(site, token, "MOVE", f"{url}/proj", "-H",
                        f"Destination: {url}/other/proj"),
                    dav(site, token, "MOVE", f"{url}/other/stuff", "-H",
                        f"Destination: {url}/proj", "-H", "Overwrite: T"),
                    dav(site, token, "COPY", f"{url}/other/stuff", "-H",
                        f"Destination: {url}/proj", "-H", "Overwrite: T"),
                    dav(site, token, "COPY", f"{url}/proj", "-H",
                        f"Destination: {url}/other/copy"),
                ]
                assert [answer.status for answer in refused] == [403] * 5, [
                    answer.text for answer in refused]
                assert not any(b"raw data" in answer.body or b"secret" in answer.body
                               for answer in refused)
            assert on_disk(root) == untouched
            assert not (root / "other" / "copy").exists()
            # Beside the capped folders, the tree is bob's to copy and delete.
            copied = dav(site, bob_token, "COPY", f"{url}/proj/ok", "-H",
                         f"Destination: {url}/other/ok")
            assert copied.status == 201, copied.text
            assert (root / "other" / "ok" / "o.txt").read_bytes() == b"ok"
            assert dav(site, bob_token, "DELETE", f"{url}/proj/ok").status == 204
            assert not (root / "proj" / "ok").exists()
            assert (root / "proj" / "raw" / "r.dat").read_bytes() == b"raw data"
            assert (root / "proj" / "secret" / "s.txt").read_bytes() == b"secret"
        finally:
            owner_gcs.delete(f"sharing_policies/{policy['data'][0]['id']}")
            owner_gcs.update_storage_gateway(gateway, StorageGatewayDocument(
                additional_fields={"restrict_paths": restrictions}))


def test_anonymous_rules_let_anyone_read_there_without_a_token(site: EndpointSite) -> None:
    alice, carl = (_new_user(site.server, name) for name in ("alice", "carl"))
    with guest_of(site, alice, "open") as (guest, root):
        make_files(root, {"pub/data.csv": b"a,b\n1,2\n", "pub/drop/readme": b"drop here",
                          "private.txt": b"alice only\n"})
        alice_tc: TransferClient = transfer_client(site, alice)
        reads = alice_tc.add_endpoint_acl_rule(guest, rule("anonymous", "", "/pub/", "r"))
        alice_tc.add_endpoint_acl_rule(guest, rule("anonymous", "", "/pub/drop/", "rw"))
        url = data_url(site, guest)
        before = on_disk(root)

        def anonymous(method: str, path: str, **options: Any) -> requests.Response:
            return requests.request(method, url + path, verify=site.server.ca_file,
                                    allow_redirects=False, timeout=30, **options)

        got = anonymous("GET", "/pub/data.csv")
        assert got.status_code == 200, got.text
        assert got.content == b"a,b\n1,2\n"
        head = anonymous("HEAD", "/pub/data.csv")
        assert head.status_code == 200 and head.headers["Content-Length"] == "8"
        listed = anonymous("PROPFIND", "/pub/", headers={"Depth": "1"})
        assert listed.status_code == 207
        assert sorted(hrefs(listed.text)) == [f"/data/{guest}/pub/",
                                              f"/data/{guest}/pub/data.csv",
                                              f"/data/{guest}/pub/drop/"]
        # From the root, only the way to /pub shows.
        top = anonymous("PROPFIND", "/", headers={"Depth": "1"})
        assert top.status_code == 207
        assert sorted(hrefs(top.text)) == [f"/data/{guest}/", f"/data/{guest}/pub/"]
        # Elsewhere a token is needed: GET keeps the sign-in redirect GCSDownloader follows.
        outside = anonymous("GET", "/private.txt")
        assert outside.status_code == 302 and b"alice only" not in outside.content
        assert parse_qs(urlsplit(outside.headers["Location"]).query)["client_id"] == [guest]
        assert anonymous("PROPFIND", "/private.txt", headers={"Depth": "0"}).status_code == 401
        # No writes without a token, even where an anonymous rule says rw.
        for method, path, headers in (
            ("PUT", "/pub/drop/new.txt", {}), ("PUT", "/pub/data.csv", {}),
            ("DELETE", "/pub/drop/readme", {}), ("MKCOL", "/pub/drop/folder", {}),
            ("MOVE", "/pub/drop/readme", {"Destination": f"{url}/pub/drop/moved"}),
            ("COPY", "/pub/data.csv", {"Destination": f"{url}/pub/drop/copy.csv"}),
        ):
            refused = anonymous(method, path, headers=headers,
                                data=b"planted" if method == "PUT" else None)
            assert refused.status_code == 401, (method, path, refused.text)
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert on_disk(root) == before

        # With a token, the anonymous rw rule lets carl write there, unless the mapped
        # collection disables anonymous writes.
        carl_token = https_token(site, carl, guest)
        owner_gcs = gcs_client(site, site.owner)
        owner_gcs.update_collection(site.collection_id,
                                    MappedCollectionDocument(disable_anonymous_writes=True))
        try:
            assert dav(site, carl_token, "PUT", f"{url}/pub/drop/carl.txt",
                       "--data-binary", "from carl").status == 403
            assert not (root / "pub" / "drop" / "carl.txt").exists()
        finally:
            owner_gcs.update_collection(site.collection_id, MappedCollectionDocument(
                disable_anonymous_writes=False))
        assert dav(site, carl_token, "PUT", f"{url}/pub/drop/carl.txt",
                   "--data-binary", "from carl").status == 201
        assert (root / "pub" / "drop" / "carl.txt").read_bytes() == b"from carl"

        # Once the rule goes, reading there needs a token again.
        alice_tc.delete_endpoint_acl_rule(guest, reads["access_id"])
        assert anonymous("GET", "/pub/data.csv").status_code == 302
        assert anonymous("GET", "/pub/drop/readme").content == b"drop here"


def test_rclone_walks_from_the_guest_root_to_a_shared_folder(
    site: EndpointSite, tmp_path: Path,
) -> None:
    alice, bob = (_new_user(site.server, name) for name in ("alice", "bob"))
    with guest_of(site, alice, "walk") as (guest, root):
        make_files(root, {"a/b/shared.txt": b"for bob", "a/other.txt": b"not for bob",
                          "a/c/hidden.txt": b"hidden", "top.txt": b"top"})
        transfer_client(site, alice).add_endpoint_acl_rule(guest, rule("identity", bob.id,
                                                                       "/a/b/", "r"))
        url = data_url(site, guest)
        bob_token = https_token(site, bob, guest)

        listed = rclone(site.server, bob_token, url, tmp_path, "lsf", "-R", "isthmus:")
        assert listed.returncode == 0, listed.stderr
        assert sorted(listed.stdout.splitlines()) == ["a/", "a/b/", "a/b/shared.txt"]
        copied = rclone(site.server, bob_token, url, tmp_path, "copy", "isthmus:",
                        str(tmp_path / "got"))
        assert copied.returncode == 0, copied.stderr
        assert on_disk(tmp_path / "got") == {"a/b/shared.txt": b"for bob"}
        # Walking through reads and writes nothing on the way.
        for path in ("/top.txt", "/a/other.txt", "/a/c/hidden.txt"):
            refused = curl(site.server, bob_token, url + path)
            assert refused.status == 403, (path, refused.text)
        assert dav(site, bob_token, "MKCOL", f"{url}/a/new").status == 403
        assert not (root / "a" / "new").exists()
        # Alice, the owner, sees it all.
        everything = rclone(site.server, https_token(site, alice, guest), url, tmp_path,
                            "lsf", "-R", "isthmus:")
        assert everything.returncode == 0, everything.stderr
        assert sorted(everything.stdout.splitlines()) == [
            "a/", "a/b/", "a/b/shared.txt", "a/c/", "a/c/hidden.txt", "a/other.txt",
            "top.txt"]
