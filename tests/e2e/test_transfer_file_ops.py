"""Transfer's file operations (ls, stat, mkdir, rename, symlink) and bookmarks, through the
official SDK (4.x, and 3.65 for symlink) and the real globus-cli, on the server's "<host>
files" collection (mapped, not high assurance: data_access consent needed), a guest
collection of it (access rules) and a high-assurance collection (no consent).

Where a file lands, or must not, the tests look on disk.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
from globus_sdk import (
    GlobusAppConfig,
    GuestCollectionDocument,
    MappedCollectionDocument,
    TransferClient,
    TransferData,
    UserCredentialDocument,
)

from tests.browser import Browser
from tests.conftest import EndpointSite, User, _new_user, shell_environment
from tests.e2e.helpers import (
    TRANSFER_ALL,
    TUTORIAL_CLIENT_ID,
    cli_login,
    cli_with_login,
    globus,
    native_login,
    pointed_at,
    scripted_login_flow,
)
from tests.e2e.test_connect_guest import ACCOUNT, rule
from tests.e2e.test_connect_manager_api import gcs_client
from tests.e2e.test_transfer_registry import transfer_client
from tests.sdk3.test_seeds_sdk3 import sdk3_python  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def site(endpoint_site: EndpointSite) -> Iterator[EndpointSite]:
    with pointed_at(endpoint_site.server):
        yield endpoint_site


def dependency(*collection_ids: str) -> str:
    """The transfer scope depending on the collections' data_access scopes."""
    return TRANSFER_ALL + "[" + " ".join(
        f"*https://auth.globus.org/scopes/{collection_id}/data_access"
        for collection_id in collection_ids) + "]"


def home_of(site: EndpointSite, user: User) -> Path:
    """A user's home on "<host> files": a folder of their own at the collection root."""
    return site.server.data_dir / "files" / user.username


def app_transfer_client(site: EndpointSite, user: User, collection: str) -> TransferClient:
    """The SDK 4.x way: a UserApp whose transfer scope depends on the collections'
    data_access (`add_app_data_access_scope`), the login done by a scripted browser."""
    flow = scripted_login_flow(Browser(site.server.ca_file), user.username, user.password)
    app = globus_sdk.UserApp("isthmus transfer tests", client_id=TUTORIAL_CLIENT_ID,
                             config=GlobusAppConfig(token_storage="memory",
                                                    login_flow_manager=flow))
    client = TransferClient(app=app)
    client.add_app_data_access_scope(collection)
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


def refused(call: Any, *args: Any, **kwargs: Any) -> globus_sdk.TransferAPIError:
    with pytest.raises(globus_sdk.TransferAPIError) as raised:
        call(*args, **kwargs)
    return raised.value


@pytest.fixture(scope="module")
def alice_home(site: EndpointSite, alice: User, alice_tc: TransferClient) -> Path:
    """alice's home, with a folder "listing" of files, a folder, a hidden file and three
    kinds of links that the tests only read."""
    alice_tc.operation_ls(site.collection_id)  # made on first use
    home = home_of(site, alice)
    listing = home / "listing"
    (listing / "sub").mkdir(parents=True)
    (listing / "a.txt").write_bytes(b"12345")
    (listing / "b.dat").write_bytes(b"x" * 100)
    (listing / ".hidden").write_bytes(b"")
    os.symlink("a.txt", listing / "link")
    os.symlink(listing / "gone", listing / "broken")  # the server's own path to the root
    os.symlink("/etc/passwd", listing / "out")  # leads outside the collection
    return home


def names(listing: Any) -> list[str]:
    return [item["name"] for item in listing]


def test_ls_reports_files_folders_and_links_as_the_spec_says(
    site: EndpointSite, alice_tc: TransferClient, alice_home: Path,
) -> None:
    def ls(**params: Any) -> Any:
        return alice_tc.operation_ls(site.collection_id, path="~/listing", **params)

    listing = alice_tc.operation_ls(site.collection_id, path="~/listing")
    assert listing["path"] == "/~/listing/"
    assert listing["absolute_path"] == f"/{alice_home.name}/listing/"
    assert names(listing) == [".hidden", "a.txt", "b.dat", "broken", "link", "out", "sub"]
    assert (listing["length"], listing["total"]) == (7, 7)
    items = {item["name"]: item for item in listing}
    assert items["a.txt"]["type"] == "file" and items["a.txt"]["size"] == 5
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00",
                        items["a.txt"]["last_modified"])
    assert re.fullmatch(r"0[0-7]{3}", items["a.txt"]["permissions"])
    assert items["a.txt"]["link_target"] is None
    assert items["sub"]["type"] == "dir"
    # A working link is what it reaches, the link_* fields describe the link.
    assert items["link"]["type"] == "file" and items["link"]["size"] == 5
    assert items["link"]["link_target"] == f"/{alice_home.name}/listing/a.txt"
    assert items["link"]["link_last_modified"] is not None
    assert items["broken"]["type"] == "invalid_symlink"
    assert items["out"]["type"] == "invalid_symlink"
    assert "passwd" not in str(items["out"]["size"])  # nothing of the target is told
    # Link targets are collection paths: neither the root's real folder nor one outside it.
    assert items["broken"]["link_target"] == f"/{alice_home.name}/listing/gone"
    assert items["out"]["link_target"] is None
    assert str(site.server.data_dir) not in json.dumps(listing.data)

    assert ".hidden" not in names(ls(show_hidden=False))
    assert names(ls(filter="name:~*.TXT")) == ["a.txt"]
    # Repeated filters are ORed (globus ls -r sends them so), clauses within one ANDed.
    assert names(ls(filter=["type:dir", "name:b.dat"])) == ["b.dat", "sub"]
    assert names(ls(filter="type:file/size:>=5/name:!a.txt")) == ["b.dat", "link"]
    assert names(ls(filter="last_modified:2000-01-01,")) == names(listing)
    assert names(ls(filter="last_modified:,2000-01-01")) == []
    assert names(ls(orderby="name DESC"))[:2] == ["sub", "out"]
    assert names(ls(orderby=["type", "size DESC", "name"], filter="type:file,dir")) == [
        "sub", "b.dat", "a.txt", "link", ".hidden"]
    page = ls(limit=2, offset=1)
    assert names(page) == ["a.txt", "b.dat"] and (page["length"], page["total"]) == (2, 7)
    assert alice_tc.operation_ls(site.collection_id, path="/~/listing/sub")["path"] == (
        "/~/listing/sub/")


def test_ls_errors_are_the_specs(site: EndpointSite, alice_tc: TransferClient,
                                 alice_home: Path) -> None:
    missing = refused(alice_tc.operation_ls, site.collection_id, path="~/nowhere")
    assert (missing.http_status, missing.code) == (404, "ClientError.NotFound")
    assert missing.message == "Directory '~/nowhere' not found"
    on_file = refused(alice_tc.operation_ls, site.collection_id, path="~/listing/a.txt")
    assert (on_file.http_status, on_file.code) == (
        502, "ExternalError.DirListingFailed.NotDirectory")
    escape = refused(alice_tc.operation_ls, site.collection_id, path="/../..")
    assert (escape.http_status, escape.code) == (403, "EndpointPermissionDenied.PathEscape")
    # Through a link out of the collection: refused, not followed.
    link_out = refused(alice_tc.operation_ls, site.collection_id, path="~/listing/out")
    assert link_out.http_status in (403, 404), link_out.raw_json
    for params in ({"orderby": "colour"}, {"filter": "colour:red"}, {"limit": "x"},
                   {"filter": "size:>big"}, {"show_hidden": "maybe"}, {"offset": "-1"}):
        bad = refused(alice_tc.operation_ls, site.collection_id, query_params=params)
        assert (bad.http_status, bad.code) == (400, "ClientError.BadRequest"), params
    unknown = refused(alice_tc.operation_ls, "00000000-0000-4000-8000-000000000000")
    assert (unknown.http_status, unknown.code) == (404, "EndpointNotFound")
    garbage = refused(alice_tc.operation_ls, "not-an-id")
    assert (garbage.http_status, garbage.code) == (404, "EndpointNotFound")
    endpoint = refused(alice_tc.operation_ls, site.endpoint_id)
    assert (endpoint.http_status, endpoint.code) == (400, "NotSupported")


def test_stat_mkdir_and_rename(site: EndpointSite, alice_tc: TransferClient,
                               alice_home: Path) -> None:
    stat = alice_tc.operation_stat(site.collection_id, "~/listing/b.dat")
    assert (stat["DATA_TYPE"], stat["name"], stat["type"], stat["size"]) == (
        "file", "b.dat", "file", 100)
    assert alice_tc.operation_stat(site.collection_id, "/~/listing/sub")["type"] == "dir"
    gone = refused(alice_tc.operation_stat, site.collection_id, "~/nothing")
    assert (gone.http_status, gone.code) == (404, "NotFound")

    made = alice_tc.operation_mkdir(site.collection_id, "~/made/")
    assert made.http_status == 202
    assert (made["DATA_TYPE"], made["code"]) == ("mkdir_result", "DirectoryCreated")
    assert made["message"] == "The directory was created successfully"
    assert (alice_home / "made").is_dir()
    again = refused(alice_tc.operation_mkdir, site.collection_id, "~/made")
    assert (again.http_status, again.code) == (502, "ExternalError.MkdirFailed.Exists")
    orphan = refused(alice_tc.operation_mkdir, site.collection_id, "~/no/such/parent")
    assert (orphan.http_status, orphan.code) == (404, "ClientError.NotFound")
    assert not (alice_home / "no").exists()
    # Out of the collection, or out of her home on it: refused, nothing made.
    before = sorted(os.listdir(site.server.data_dir))
    escape = refused(alice_tc.operation_mkdir, site.collection_id, "/../escaped")
    assert escape.http_status == 403, escape.raw_json
    assert sorted(os.listdir(site.server.data_dir)) == before
    elsewhere = refused(alice_tc.operation_mkdir, site.collection_id, "/not-hers")
    assert (elsewhere.http_status, elsewhere.code) == (403, "EndpointPermissionDenied")
    assert not (site.server.data_dir / "files" / "not-hers").exists()
    through_link = refused(alice_tc.operation_mkdir, site.collection_id, "~/listing/out/x")
    assert through_link.http_status in (403, 404), through_link.raw_json
    bad = refused(alice_tc.operation_mkdir, site.collection_id, "~/two\nlines")
    assert (bad.http_status, bad.code) == (400, "ClientError.BadRequest")

    (alice_home / "r.txt").write_bytes(b"12345")
    (alice_home / "keep.txt").write_bytes(b"kept")
    renamed = alice_tc.operation_rename(site.collection_id, "~/r.txt", "~/made/a2.txt")
    assert (renamed["DATA_TYPE"], renamed["code"]) == ("result", "FileRenamed")
    assert renamed["message"] == "File or directory renamed successfully"
    assert (alice_home / "made" / "a2.txt").read_bytes() == b"12345"
    assert not (alice_home / "r.txt").exists()
    taken = refused(alice_tc.operation_rename, site.collection_id, "~/keep.txt",
                    "~/made/a2.txt")
    assert (taken.http_status, taken.code) == (502, "ExternalError.RenameFailed.Exists")
    assert (alice_home / "keep.txt").exists()
    assert (alice_home / "made" / "a2.txt").read_bytes() == b"12345"
    missing = refused(alice_tc.operation_rename, site.collection_id, "~/none", "~/x")
    assert (missing.http_status, missing.code) == (404, "ClientError.NotFound")
    out = refused(alice_tc.operation_rename, site.collection_id, "~/keep.txt", "/../k.txt")
    assert out.http_status == 403, out.raw_json
    assert (alice_home / "keep.txt").exists()
    wrong_type = refused(alice_tc.post, f"/v0.10/operation/endpoint/{site.collection_id}/mkdir",
                         data={"DATA_TYPE": "rename", "path": "~/x"})
    assert (wrong_type.http_status, wrong_type.code) == (400, "ClientError.BadRequest")


def test_guest_collection_read_rule_lists_but_does_not_write(
    site: EndpointSite, alice: User, alice_tc: TransferClient, alice_home: Path,
) -> None:
    bob, carl = _new_user(site.server, "bob"), _new_user(site.server, "carl")
    alice_gcs = gcs_client(site, alice)
    gateway = str(alice_gcs.get_collection(site.collection_id)["storage_gateway_id"])
    credential = alice_gcs.create_user_credential(UserCredentialDocument(
        storage_gateway_id=gateway, identity_id=alice.id, username=ACCOUNT,
        display_name="alice on the files gateway"))
    root = alice_home / "results"
    (root / "shared").mkdir(parents=True)
    (root / "shared" / "data.csv").write_bytes(b"t,x\n")
    inbox_root = alice_home / "inbox"
    inbox_root.mkdir()
    guest, inbox = (str(alice_gcs.create_collection(GuestCollectionDocument(
        display_name=name, mapped_collection_id=site.collection_id,
        user_credential_id=credential["id"], collection_base_path=base))["id"])
        for name, base in (("alice's results", "/~/results"), ("alice's inbox", "/~/inbox")))
    try:
        # The owner: no data_access consent on a guest collection; she may write.
        owner = transfer_client(site, alice)
        assert names(owner.operation_ls(guest)) == ["shared"]
        owner.operation_mkdir(guest, "/shared/by-alice")
        assert (root / "shared" / "by-alice").is_dir()
        owner.add_endpoint_acl_rule(guest, rule("identity", bob.id, "/shared/", "r"))

        bob_tc = transfer_client(site, bob)
        listing = bob_tc.operation_ls(guest, path="/shared/")
        assert names(listing) == ["by-alice", "data.csv"]
        assert listing["path"] == "/shared/"
        assert bob_tc.operation_stat(guest, "/shared/data.csv")["size"] == 4
        # Read only: no mkdir, no rename, nothing changes on disk.
        denied = refused(bob_tc.operation_mkdir, guest, "/shared/by-bob")
        assert (denied.http_status, denied.code) == (403, "EndpointPermissionDenied")
        assert not (root / "shared" / "by-bob").exists()
        moved = refused(bob_tc.operation_rename, guest, "/shared/data.csv", "/shared/d.csv")
        assert (moved.http_status, moved.code) == (403, "EndpointPermissionDenied")
        assert (root / "shared" / "data.csv").exists()
        # The guest root shows bob only the way to what is shared with him; beside it and
        # out of the guest root: nothing.
        (root / "private").mkdir()
        assert names(bob_tc.operation_ls(guest, path="/")) == ["shared"]
        beside = refused(bob_tc.operation_ls, guest, path="/private")
        assert (beside.http_status, beside.code) == (403, "EndpointPermissionDenied")
        escape = refused(bob_tc.operation_ls, guest, path="/shared/../../")
        assert escape.http_status == 403, escape.raw_json

        # Tasks: bob may transfer out of it (into alice's inbox, where he may write), not
        # into it; the refused task writes nothing.
        owner.add_endpoint_acl_rule(inbox, rule("identity", bob.id, "/", "rw"))
        out = task_of(bob_tc, guest, inbox, "/shared/data.csv", "/from-results.csv")
        assert out["status"] == "SUCCEEDED", out
        assert (inbox_root / "from-results.csv").read_bytes() == b"t,x\n"
        into = task_of(bob_tc, inbox, guest, "/from-results.csv", "/shared/by-bob.csv")
        assert into["status"] == "FAILED", into
        assert into["fatal_error"]["code"] == "PERMISSION_DENIED", into["fatal_error"]
        denied_at = [event["details"] for event in bob_tc.task_event_list(into["task_id"])
                     if event["is_error"]]
        assert denied_at == ["Error (transfer)\nFile: /shared/by-bob.csv\n"
                             "'/shared/by-bob.csv' may be read but not changed"], denied_at
        assert sorted(os.listdir(root / "shared")) == ["by-alice", "data.csv"]

        # carl has no rule: to him the (private) collection does not exist.
        carl_tc = transfer_client(site, carl)
        for path in ("/", "/shared/"):
            nothing = refused(carl_tc.operation_ls, guest, path=path)
            assert (nothing.http_status, nothing.code) == (404, "EndpointNotFound"), path
        assert refused(carl_tc.operation_mkdir, guest, "/shared/by-carl").http_status == 404
        assert not (root / "shared" / "by-carl").exists()
    finally:
        # The server is shared: other modules' registry tests count guest collections.
        for collection in (guest, inbox):
            gcs_client(site, site.owner).delete_collection(collection)


def task_of(tc: TransferClient, source: str, destination: str, source_path: str,
            destination_path: str) -> dict[str, Any]:
    """A verified transfer of one file, submitted and waited for: the task at its end."""
    data = TransferData(source, destination, verify_checksum=True)
    data.add_item(source_path, destination_path)
    task_id = tc.submit_transfer(data)["task_id"]
    assert tc.task_wait(task_id, timeout=60, polling_interval=1)
    return tc.get_task(task_id).data


def test_bookmarks_are_private_named_folders(
    site: EndpointSite, alice: User, alice_tc: TransferClient,
) -> None:
    made = alice_tc.create_bookmark({"endpoint_id": site.collection_id.upper(),
                                     "path": "/~/sub/", "name": "work"})
    assert made["DATA_TYPE"] == "bookmark"
    assert (made["name"], made["endpoint_id"], made["path"], made["pinned"]) == (
        "work", site.collection_id, "/~/sub/", False)
    bookmark_id = made["id"]
    assert alice_tc.get_bookmark(bookmark_id).data == made.data
    listed = alice_tc.bookmark_list()
    assert listed["DATA_TYPE"] == "bookmark_list"
    assert [item["id"] for item in listed] == [bookmark_id]

    for body, field in (({"endpoint_id": site.collection_id, "path": "/~/", "name": "work"},
                         "Conflict"),
                        ({"endpoint_id": site.collection_id, "path": "/~/", "name": " pad"},
                         "ClientError.BadRequest"),
                        ({"endpoint_id": site.collection_id, "path": "/~/", "name": "x" * 129},
                         "ClientError.BadRequest"),
                        ({"endpoint_id": site.collection_id, "path": "/~/file", "name": "f"},
                         "ClientError.BadRequest"),
                        ({"endpoint_id": site.collection_id, "path": "/~/", "name": 5},
                         "ClientError.BadRequest"),
                        ({"endpoint_id": "nope", "path": "/~/", "name": "n"},
                         "EndpointNotFound"),
                        ({"path": "/~/", "name": "n"}, "ClientError.BadRequest")):
        assert refused(alice_tc.create_bookmark, body).code == field, body

    renamed = alice_tc.update_bookmark(bookmark_id, {"name": "Work", "pinned": True})
    assert (renamed["name"], renamed["pinned"], renamed["path"]) == ("Work", True, "/~/sub/")
    assert refused(alice_tc.update_bookmark, bookmark_id, {"pinned": "yes"}).http_status == 400

    # Private: bob sees none of them, by list or by id.
    bob_tc = transfer_client(site, _new_user(site.server, "bob"))
    assert list(bob_tc.bookmark_list()) == []
    for call, args in ((bob_tc.get_bookmark, (bookmark_id,)),
                       (bob_tc.update_bookmark, (bookmark_id, {"name": "mine"})),
                       (bob_tc.delete_bookmark, (bookmark_id,))):
        hidden = refused(call, *args)
        assert (hidden.http_status, hidden.code) == (404, "BookmarkNotFound")

    deleted = alice_tc.delete_bookmark(bookmark_id)
    assert (deleted["DATA_TYPE"], deleted["code"]) == ("result", "Deleted")
    assert refused(alice_tc.get_bookmark, bookmark_id).code == "BookmarkNotFound"
    assert refused(alice_tc.get_bookmark, "not-a-uuid").code == "BookmarkNotFound"
    assert list(alice_tc.bookmark_list()) == []


def test_globus_cli_consent_ls_mkdir_rename_stat_and_bookmarks(
    site: EndpointSite, tmp_path: Path,
) -> None:
    dana = _new_user(site.server, "dana")
    env = shell_environment(site.server, tmp_path / "home")
    cli_login(site.server, dana, env)
    collection = site.collection_id

    before = globus(env, "ls", collection)
    assert before.returncode == 4, before
    assert f"globus session consent '{dependency(collection)}'" in before.stdout + before.stderr
    cli_with_login(site.server, dana, env, "session", "consent", "--no-local-server",
                   dependency(collection))

    home = home_of(site, dana)
    made = globus(env, "mkdir", f"{collection}:~/from-cli/")
    assert made.returncode == 0, made
    assert "The directory was created successfully" in made.stdout
    assert (home / "from-cli").is_dir()
    (home / "from-cli" / "inner.txt").write_text("inside")
    again = globus(env, "mkdir", f"{collection}:~/from-cli")
    assert again.returncode == 1 and "ExternalError.MkdirFailed.Exists" in again.stderr, again

    renamed = globus(env, "rename", collection, "~/from-cli", "~/renamed")
    assert renamed.returncode == 0, renamed
    assert "File or directory renamed successfully" in renamed.stdout
    assert (home / "renamed" / "inner.txt").exists() and not (home / "from-cli").exists()

    listed = globus(env, "ls", collection)
    assert (listed.returncode, listed.stdout) == (0, "renamed/\n"), listed
    recursive = globus(env, "ls", "-r", f"{collection}:/~/")
    assert recursive.stdout.split() == ["renamed/", "renamed/inner.txt"], recursive
    long = globus(env, "ls", "-l", f"{collection}:~/renamed/")
    assert "inner.txt" in long.stdout and "file" in long.stdout, long

    shown = globus(env, "stat", f"{collection}:~/renamed/inner.txt")
    assert shown.returncode == 0 and re.search(r"Size: +6", shown.stdout), shown
    nothing = globus(env, "stat", f"{collection}:~/nothing")
    assert "Nothing found at" in nothing.stdout + nothing.stderr, nothing

    created = globus(env, "bookmark", "create", f"{collection}:/~/renamed/", "mine")
    assert created.returncode == 0, created
    bookmark_id = created.stdout.split("Bookmark ID:")[1].strip()
    listing = globus(env, "bookmark", "list")
    assert listing.returncode == 0 and "mine" in listing.stdout and bookmark_id in listing.stdout
    assert site.collection_name in listing.stdout  # the CLI looked the collection up
    show = globus(env, "bookmark", "show", "mine")
    assert show.stdout.strip() == f"{collection}:/~/renamed/", show
    assert globus(env, "bookmark", "rename", "mine", "yours").returncode == 0
    assert globus(env, "bookmark", "show", bookmark_id).stdout.strip() == (
        f"{collection}:/~/renamed/")
    deleted = globus(env, "bookmark", "delete", "yours")
    assert deleted.returncode == 0, deleted
    assert "mine" not in globus(env, "bookmark", "list").stdout


SDK3_SYMLINK = """
import json
import sys
import warnings

import globus_sdk

collection, token = sys.argv[1:3]
tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # 3.65 warns that symlinks are deprecated
    made = tc.operation_symlink(collection, symlink_target="~/sdk3/target.txt",
                                path="~/sdk3/link")
    try:
        tc.operation_symlink(collection, symlink_target="~/sdk3/target.txt",
                             path="~/sdk3/link")
        taken = None
    except globus_sdk.TransferAPIError as error:
        taken = [error.http_status, error.code]
stat = tc.operation_stat(collection, "~/sdk3/link")
items = {item["name"]: item for item in tc.operation_ls(collection, path="~/sdk3/")}
print("ISTHMUS-REPORT", json.dumps({"version": globus_sdk.__version__, "made": made.data,
                                    "taken": taken, "stat": stat.data, "items": items}))
"""


@pytest.mark.sdk3
def test_symlink_and_stat_with_sdk_3(
    site: EndpointSite, alice: User, alice_home: Path, tmp_path: Path,
    sdk3_python: str,  # noqa: F811 (the fixture imported above)
) -> None:
    from tests.sdk3.test_seeds_sdk3 import SDK3_VERSION, run

    (alice_home / "sdk3").mkdir()
    (alice_home / "sdk3" / "target.txt").write_bytes(b"pointed at")
    token = native_login(site.server, alice.username, alice.password,
                         [TRANSFER_ALL])["transfer.api.globus.org"]["access_token"]
    env = shell_environment(site.server, tmp_path / "home")
    report = run(sdk3_python, SDK3_SYMLINK, env, tmp_path, site.collection_id, token)
    assert report["version"] == SDK3_VERSION
    assert (report["made"]["DATA_TYPE"], report["made"]["code"]) == ("result",
                                                                     "SymlinkCreated")
    assert report["taken"] == [502, "ExternalError.SymlinkFailed.Exists"]
    link = alice_home / "sdk3" / "link"
    assert link.is_symlink() and link.read_bytes() == b"pointed at"
    assert (report["stat"]["name"], report["stat"]["type"], report["stat"]["size"]) == (
        "link", "file", 10)
    assert report["items"]["link"]["link_target"] == f"/{alice_home.name}/sdk3/target.txt"


def test_a_high_assurance_collection_asks_no_data_access_consent(site: EndpointSite) -> None:
    gcs = gcs_client(site, site.owner)
    files_gateway = gcs.get_storage_gateway(
        gcs.get_collection(site.collection_id)["storage_gateway_id"]).data
    document = {key: value for key, value in files_gateway.items()
                if key not in ("id", "high_assurance", "require_high_assurance", "deleted",
                               "authentication_assurance_timeout")}
    gateway = gcs.create_storage_gateway({**document, "display_name": "high assurance",
                                          "high_assurance": True})["id"]
    collection = str(gcs.create_collection(MappedCollectionDocument(
        display_name="high assurance files", storage_gateway_id=gateway,
        collection_base_path="/", delete_protected=False))["id"])
    try:
        owner_tc = transfer_client(site, site.owner)  # the transfer scope alone
        assert owner_tc.get_endpoint(collection)["high_assurance"] is True
        made = owner_tc.operation_mkdir(collection, "~/ha-made")
        assert made["code"] == "DirectoryCreated"
        assert (home_of(site, site.owner) / "ha-made").is_dir()
        assert "ha-made" in names(owner_tc.operation_ls(collection))
        # Whereas the same files through the ordinary collection need the consent.
        assert refused(owner_tc.operation_ls, site.collection_id).code == "ConsentRequired"
    finally:
        gcs.delete_collection(collection)
        gcs.delete_storage_gateway(gateway)
