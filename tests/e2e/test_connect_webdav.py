"""WebDAV storage gateways with OAuth2 user credentials, end to end with two Isthmus servers.

The upstream is a second Isthmus: its Auth issues the tokens (a confidential client whose
redirect URI is the downstream endpoint's ``/api/v1/authcallback``), its "<host> files"
collection holds the files. On the downstream, the administrator makes a WebDAV gateway
pointing at that collection's ``https_url`` and a collection on it with the official
``globus-connect-server``; the user runs ``user-credentials oauth-create``, logs in and
consents at the upstream in a browser (driven over HTTP), and lands on the downstream's
success page. Then curl and rclone on the downstream collection read and write the
upstream's files (checked on the upstream's disk), and rclone against the upstream itself
sees exactly the tree that went in through the gateway.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from globus_sdk import GCSClient

from isthmus.core.encryption import SecretBox
from tests.browser import query_of
from tests.conftest import _new_user
from tests.e2e.data_helpers import collection_scopes, curl, rclone
from tests.e2e.storage_sites import (
    Pair,
    connect_storage,
    credential_ids,
    gcs,
    grant,
    make_gateway,
    oauth_create,
    ok,
    open_downstream,
    start_pair,
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    yield from start_pair(tmp_path_factory.mktemp("webdav-gateway"))


@pytest.fixture(scope="module")
def gateway(pair: Pair) -> Pair:
    pair.gateway_id, pair.collection_id = make_gateway(pair, "Upstream lab files")
    return pair


@pytest.fixture(scope="module")
def credential(gateway: Pair) -> str:
    pair = gateway
    credential_id, callback = connect_storage(pair, pair.gateway_id)

    # The callback cannot be played again: the credential exists once.
    again = open_downstream(pair, callback)
    assert again.status_code == 400 and "already completed" in again.text
    return credential_id


def test_the_gateway_keeps_its_client_secret_sealed(gateway: Pair, credential: str) -> None:
    pair = gateway
    shown = ok(gcs(pair, "storage-gateway", "show", pair.gateway_id, "--format", "json"))
    document = json.loads(shown)
    assert document["connector_id"] == "afe5e740-c8ed-4433-a2e0-d65747275517"
    assert document["policies"]["oauth_client_id"] == pair.client["id"]
    assert pair.client["secret"] not in shown and "sealed" not in shown
    # An update that leaves the secret out keeps the sealed one (the data tests below use it).
    scopes = collection_scopes(pair.upstream.collection_id)
    ok(gcs(pair, "storage-gateway", "update", "webdav", pair.gateway_id, "--display-name",
           "Upstream lab (renamed)", "--oauth-scope", scopes[0], "--oauth-scope", scopes[1]))
    updated = json.loads(ok(gcs(pair, "storage-gateway", "show", pair.gateway_id,
                                "--format", "json")))
    assert updated["display_name"] == "Upstream lab (renamed)"
    assert updated["policies"]["oauth_scopes"] == scopes
    assert updated["policies"]["webdav_url"] == pair.upstream.url
    bad = gcs(pair, "storage-gateway", "create", "webdav", "Plain HTTP", "--domain", "x.org",
              "--webdav-url", "http://example.org/dav", "--oauth-authorize-url",
              "https://example.org/a", "--oauth-token-url", "https://example.org/t",
              "--oauth-client-id", "c", stdin="s\n")
    assert bad.returncode != 0 and "webdav_url must be an https:// URL" in bad.stderr
    assert "Traceback" not in bad.stderr
    (pair.workdir / "not-a-ca.pem").write_text("not a certificate")
    bad_ca = gcs(pair, "storage-gateway", "update", "webdav", pair.gateway_id,
                 "--ca-file", "not-a-ca.pem")
    assert bad_ca.returncode != 0 and "holds no PEM certificate" in bad_ca.stderr
    listed = ok(gcs(pair, "user-credentials", "list", "--format", "json"))
    (found,) = [item for item in json.loads(listed) if item["id"] == credential]
    assert found["storage_gateway_id"] == pair.gateway_id
    assert found["username"] == pair.downstream.owner.username
    assert "token" not in json.dumps(found["policies"])
    for table in _database_text(pair):
        assert pair.client["secret"] not in table


def _database_text(pair: Pair) -> list[str]:
    """Every file of the downstream's data dir as text: no secret may be there in clear."""
    found = []
    for path in pair.downstream.server.data_dir.rglob("*.db*"):
        found.append(path.read_bytes().decode("latin-1"))
    return found


def test_a_collection_on_the_gateway_reads_and_writes_the_upstreams_files(
    gateway: Pair, credential: str, tmp_path: Path,
) -> None:
    pair = gateway
    down = pair.downstream
    token = down.token(down.owner, collection_id=pair.collection_id)
    base = f"{down.server.base_url}data/{pair.collection_id}/{quote(pair.person.username)}"
    home = pair.upstream_home
    home.mkdir(parents=True, exist_ok=True)
    (home / "from-upstream.txt").write_bytes(b"written at the upstream")

    read = curl(down.server, token, base + "/from-upstream.txt")
    assert read.status == 200 and read.body == b"written at the upstream"
    ranged = curl(down.server, token, "-H", "Range: bytes=8-9", base + "/from-upstream.txt")
    assert ranged.status == 206 and ranged.body == b"at"

    data = os.urandom(3 * 1024 * 1024 + 7)
    source = tmp_path / "payload.bin"
    source.write_bytes(data)
    put = curl(down.server, token, "-T", str(source), base + "/payload.bin")
    assert put.status == 201, put.text
    assert (home / "payload.bin").read_bytes() == data
    assert not [name for name in os.listdir(home) if name.startswith(".isthmus-")]

    listing = curl(down.server, token, "-X", "PROPFIND", "-H", "Depth: 1", base + "/")
    assert listing.status == 207
    assert "from-upstream.txt" in listing.text and "payload.bin" in listing.text

    # rclone on the downstream collection writes a tree through the gateway; rclone on the
    # upstream's collection sees exactly that tree there.
    tree = tmp_path / "tree"
    (tree / "sub" / "deep").mkdir(parents=True)
    (tree / "a.txt").write_text("through the gateway")
    (tree / "empty").write_bytes(b"")
    (tree / "sub" / "b.bin").write_bytes(os.urandom(2 * 1024 * 1024 + 3))
    (tree / "sub" / "deep" / "données ✓.txt").write_text("unicode names too")
    copied = rclone(down.server, token, base, tmp_path, "copy", str(tree), "isthmus:tree")
    assert copied.returncode == 0, copied.stderr
    upstream_token = pair.upstream.token(pair.person)
    upstream_url = pair.upstream.home_url(pair.person)
    checked = rclone(pair.upstream.server, upstream_token, upstream_url, tmp_path,
                     "check", "--download", str(tree), "isthmus:tree")
    assert checked.returncode == 0, checked.stderr
    assert (home / "tree" / "sub" / "b.bin").read_bytes() == (tree / "sub" / "b.bin").read_bytes()
    # check compares: a file the gateway did not write makes it fail.
    (home / "tree" / "stray.txt").write_text("not from the source")
    differs = rclone(pair.upstream.server, upstream_token, upstream_url, tmp_path,
                     "check", "--download", str(tree), "isthmus:tree")
    assert differs.returncode != 0

    moved = curl(down.server, token, "-X", "MOVE", "-H",
                 f"Destination: {base}/tree/moved.txt", base + "/tree/a.txt")
    assert moved.status == 201, moved.text
    assert (home / "tree" / "moved.txt").read_text() == "through the gateway"
    deleted = curl(down.server, token, "-X", "DELETE", base + "/tree")
    assert deleted.status == 204 and not (home / "tree").exists()


def test_without_a_credential_the_collection_says_how_to_get_one(
    gateway: Pair, credential: str,
) -> None:
    pair = gateway
    stranger = _new_user(pair.downstream.server, "stranger")
    token = pair.downstream.token(stranger, collection_id=pair.collection_id)
    refused = curl(pair.downstream.server, token,
                   f"{pair.downstream.server.base_url}data/{pair.collection_id}/")
    assert refused.status == 403
    assert "oauth-create" in refused.text and pair.gateway_id in refused.text


def test_a_tampered_or_refused_callback_creates_nothing(gateway: Pair, credential: str) -> None:
    pair = gateway
    before = credential_ids(pair)
    # One credential per identity and upstream username.
    twice = gcs(pair, "user-credentials", "oauth-create", pair.gateway_id,
                "--globus-identity", pair.downstream.owner.username)
    assert twice.returncode != 0 and "already has user credential" in twice.stderr
    url = oauth_create(pair, pair.downstream.owner, "--mapped-user", "another-account")
    state = query_of(url)["state"]
    assert query_of(url)["login_hint"] == "another-account"

    tampered = state[:-6] + ("AAAAAA" if not state.endswith("AAAAAA") else "BBBBBB")
    page = open_downstream(pair, f"{pair.callback}?code=whatever&state={quote(tampered)}")
    assert page.status_code == 400 and "state is not one this endpoint issued" in page.text
    unknown = open_downstream(pair, f"{pair.callback}?code=x&state=v1.{uuid.uuid4().hex}")
    assert unknown.status_code == 400

    # Someone who has not consented yet, and says no.
    denied = grant(pair, url, _new_user(pair.upstream.server, "vic"), decision="deny")
    assert query_of(denied)["error"] == "access_denied"
    page = open_downstream(pair, denied)
    assert page.status_code == 400 and "refused access" in page.text

    # A genuine state with a code the upstream never issued: its token endpoint refuses.
    forged = open_downstream(pair, f"{pair.callback}?code=forged&state={quote(state)}")
    assert forged.status_code == 400 and "refused" in forged.text
    assert credential_ids(pair) == before


def test_credentials_of_webdav_gateways_are_made_only_by_oauth(
    gateway: Pair, credential: str,
) -> None:
    pair = gateway
    down = pair.downstream
    token = down.token(down.owner, [GCSClient.get_gcs_endpoint_scopes(
        down.endpoint_id).manage_collections], collection_id=down.endpoint_id)
    refused = requests.post(
        f"{down.server.base_url}api/user_credentials", verify=down.server.ca_file, timeout=30,
        headers={"Authorization": f"Bearer {token}"},
        json={"DATA_TYPE": "user_credential#1.0.0", "storage_gateway_id": pair.gateway_id})
    assert refused.status_code == 422 and "oauth-create" in refused.json()["message"]
    posix = json.loads(ok(gcs(pair, "storage-gateway", "list", "--format", "json")))
    posix_id = next(item["id"] for item in posix if item["id"] != pair.gateway_id)
    wrong = gcs(pair, "user-credentials", "oauth-create", posix_id,
                "--globus-identity", down.owner.username)
    assert wrong.returncode != 0 and "does not use OAuth" in wrong.stderr
    assert "Traceback" not in wrong.stderr


# --- expiry and revocation -------------------------------------------------------------------


def _credential_row(pair: Pair, credential_id: str) -> tuple[int, dict[str, Any]]:
    database = pair.downstream.server.data_dir / "isthmus.db"
    if not database.exists():
        pytest.skip("this test edits the downstream's SQLite database")
    with sqlite3.connect(database) as db:
        for rowid, key, document in db.execute(
                "SELECT rowid, id, document FROM connect_user_credentials"):
            if uuid.UUID(str(key)) == uuid.UUID(credential_id):
                return rowid, json.loads(document)
    raise AssertionError(f"no credential {credential_id}")


def _expire(pair: Pair, credential_id: str) -> dict[str, Any]:
    """Make the credential's access token look expired (as time would); its document."""
    rowid, document = _credential_row(pair, credential_id)
    document["token_expiry"] = time.time() - 5
    with sqlite3.connect(pair.downstream.server.data_dir / "isthmus.db") as db:
        db.execute("UPDATE connect_user_credentials SET document = ? WHERE rowid = ?",
                   (json.dumps(document), rowid))
    return document


def test_an_expired_token_is_refreshed_and_a_revoked_one_invalidates_the_credential(
    gateway: Pair,
) -> None:
    pair = gateway
    gateway_id, collection_id = make_gateway(pair, "Upstream for revocation")
    credential_id, _ = connect_storage(pair, gateway_id)
    down = pair.downstream
    token = down.token(down.owner, collection_id=collection_id)
    url = f"{down.server.base_url}data/{collection_id}/{quote(pair.person.username)}/"
    pair.upstream_home.mkdir(parents=True, exist_ok=True)

    before = _expire(pair, credential_id)
    assert curl(down.server, token, "-X", "PROPFIND", "-H", "Depth: 1", url).status == 207
    _, after = _credential_row(pair, credential_id)
    assert after["token_expiry"] > time.time() + 600
    assert after["sealed_tokens"] != before["sealed_tokens"]

    # The user revokes the grant at the upstream (its refresh token, read here with the
    # downstream's key as only its administrator could).
    box = SecretBox.load_or_create(down.server.data_dir / "keys")
    refresh = json.loads(box.open(after["sealed_tokens"], f"webdav-tokens:{credential_id}"))[
        "refresh_token"]
    revoked = requests.post(pair.upstream.server.base_url + "v2/oauth2/token/revoke",
                            data={"token": refresh}, verify=pair.upstream.server.ca_file,
                            auth=(pair.client["id"], pair.client["secret"]), timeout=30)
    assert revoked.status_code == 200, revoked.text
    _expire(pair, credential_id)
    refused = curl(down.server, token, "-X", "PROPFIND", "-H", "Depth: 1", url)
    assert refused.status == 403 and "oauth-create" in refused.text, refused.text
    listed = json.loads(ok(gcs(pair, "user-credentials", "list", "--format", "json")))
    (found,) = [item for item in listed if item["id"] == credential_id]
    assert found["invalid"] is True
    # Nothing is opened with it again.
    again = curl(down.server, token, "-X", "PROPFIND", "-H", "Depth: 1", url)
    assert again.status == 403 and "oauth-create" in again.text
