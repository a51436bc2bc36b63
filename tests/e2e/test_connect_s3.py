"""An S3 storage gateway over a real S3 server (moto's, on loopback): the endpoint's owner
makes it with `globus-connect-server storage-gateway create s3`, registers keys with
`user-credentials s3-create`, and puts a mapped collection on a bucket; files go in and out
through the collection's HTTPS interface with curl; keys the bucket refuses and a missing
credential are clear 4xx; and rclone, reading the bucket directly, finds exactly the files
Isthmus wrote.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from globus_sdk import (
    GCSAPIError,
    GCSClient,
    MappedCollectionDocument,
    S3StoragePolicies,
    StorageGatewayDocument,
    UserCredentialDocument,
)

from tests.conftest import User, _new_user, shell_environment
from tests.e2e.data_helpers import Answer, DataSite, curl, start_data_site
from tests.e2e.storage_sites import (
    S3Site,
    add_s3_collection,
    gcs_login,
    manager_client,
    rclone_s3,
)
from tests.e2e.test_gcs_cli import created_id, ok
from tests.e2e.test_gcs_cli import gcs as run_gcs
from tests.live import start_server
from tests.s3_server import MotoS3


def gcs(env: dict[str, str], *args: str) -> str:
    return ok(run_gcs(env, *args))


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory, moto_s3: MotoS3) -> Iterator[S3Site]:
    root = tmp_path_factory.mktemp("connect-s3")
    for site in start_data_site(root):
        env = shell_environment(site.server, root / "home")
        gcs_login(site.server, site.endpoint_id, env, site.owner)
        yield add_s3_collection(site, env, moto_s3)


def test_the_gateway_and_credential_documents(s3: S3Site) -> None:
    gateway = json.loads(gcs(s3.env, "storage-gateway", "show", s3.gateway_id, "-F", "json"))
    assert gateway["connector_id"] == "7643e831-5f6c-4b47-a07f-8ee90f401d23"
    assert gateway["policies"] == {
        "DATA_TYPE": "s3_storage_policies#1.0.0", "s3_endpoint": s3.moto.endpoint_url,
        "s3_buckets": [s3.bucket], "s3_user_credential_required": True}
    listed = gcs(s3.env, "user-credentials", "list", "--storage-gateway", s3.gateway_id,
                 "-F", "json")
    assert s3.moto.secret_key not in listed  # the secret is never shown again
    (credential,) = json.loads(listed)
    assert credential["id"] == s3.credential_id
    assert credential["policies"]["s3_key_id"] == s3.moto.key_id
    assert credential["policies"]["s3_secret_key"] is None
    assert credential["username"] == s3.site.owner.username.partition("@")[0]
    # At rest too: the database (SQLite here, with its write-ahead log) holds it sealed.
    stored = list(s3.site.server.data_dir.glob("isthmus.db*"))
    assert stored
    for database in stored:
        assert s3.moto.secret_key.encode() not in database.read_bytes()


def test_files_go_in_and_out_through_https(s3: S3Site, tmp_path: Path) -> None:
    token = s3.token(s3.site.owner)
    source = tmp_path / "report.csv"
    source.write_bytes(b"a,b\n1,2\n" * 1000)
    put = curl(s3.site.server, token, "-T", str(source), f"{s3.url}/report.csv")
    assert put.status == 201, put.text
    plain = s3.moto.client()
    stored = plain.get_object(Bucket=s3.bucket, Key="projects/report.csv")["Body"].read()
    assert stored == source.read_bytes()
    got = curl(s3.site.server, token, f"{s3.url}/report.csv")
    assert got.status == 200 and got.body == source.read_bytes()
    ranged = curl(s3.site.server, token, "-r", "4-7", f"{s3.url}/report.csv")
    assert ranged.status == 206 and ranged.body == b"1,2\n"
    gone = curl(s3.site.server, token, "-X", "DELETE", f"{s3.url}/report.csv")
    assert gone.status in (200, 204), gone.text
    assert "Contents" not in plain.list_objects_v2(Bucket=s3.bucket, Prefix="projects/report")
    missing = curl(s3.site.server, token, f"{s3.url}/report.csv")
    assert missing.status == 404
    plain.close()


def _sdk_credential(s3: S3Site, user: User, key_id: str, secret: str) -> tuple[GCSClient, str]:
    client = s3.manager(user)
    created = client.create_user_credential(UserCredentialDocument(
        storage_gateway_id=s3.gateway_id, policies={
            "DATA_TYPE": "s3_user_credential_policies#1.0.0", "s3_key_id": key_id,
            "s3_secret_key": secret}))
    assert created.http_status == 201
    assert created["policies"]["s3_secret_key"] is None
    return client, str(created["id"])


def _list(s3: S3Site, token: str) -> Answer:
    return curl(s3.site.server, token, "-X", "PROPFIND", "-H", "Depth: 1", f"{s3.url}/")


def test_no_credential_and_refused_keys_are_clear_4xx(s3: S3Site) -> None:
    member = _new_user(s3.site.server, "member")
    token = s3.token(member)
    missing = _list(s3, token)
    assert missing.status == 403, missing.text
    body = json.loads(missing.body)
    assert body["detail"]["DATA_TYPE"] == "credential_not_found#1.0.0"
    assert f"user-credentials s3-create {s3.gateway_id}" in body["message"]

    client, credential_id = _sdk_credential(s3, member, "AKIANOTISSUEDBYMOTO0", "wrong")
    refused = _list(s3, token)
    assert refused.status == 403, refused.text
    assert "InvalidAccessKeyId" in json.loads(refused.body)["message"]
    put = curl(s3.site.server, token, "-T", "/etc/hostname", f"{s3.url}/nope")
    assert put.status == 403

    # New keys take effect at once (a connector is pooled per key pair, not per user).
    client.update_user_credential(credential_id, UserCredentialDocument(policies={
        "DATA_TYPE": "s3_user_credential_policies#1.0.0", "s3_key_id": s3.moto.key_id,
        "s3_secret_key": s3.moto.secret_key}))
    assert _list(s3, token).status == 207
    client.delete_user_credential(credential_id)
    assert _list(s3, token).status == 403


def test_a_collection_above_every_bucket_is_refused(s3: S3Site) -> None:
    done = run_gcs(s3.env, "collection", "create", s3.gateway_id, "/", "No bucket")
    assert done.returncode == 1
    assert "must be rooted in a bucket" in done.stderr and "422" in done.stderr


def test_rclone_sees_exactly_the_files_isthmus_wrote(s3: S3Site, tmp_path: Path) -> None:
    source = tmp_path / "tree"
    files = {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(70_000),
             "sub/deeper/c.txt": b"", "d\u00e9j\u00e0 vu.txt": "ünïcode\n".encode()}
    for name, data in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    token = s3.token(s3.site.owner)
    base = f"{s3.url}/tree"
    assert curl(s3.site.server, token, "-X", "MKCOL", base).status == 201
    for folder in ("sub", "sub/deeper"):
        assert curl(s3.site.server, token, "-X", "MKCOL", f"{base}/{folder}").status == 201
    for name in files:
        put = curl(s3.site.server, token, "-T", str(source / name),
                   f"{base}/{name.replace(' ', '%20')}")
        assert put.status == 201, put.text
    checked = rclone_s3(s3.moto, "check", str(source), f"moto:{s3.bucket}/projects/tree")
    assert checked.returncode == 0, checked.stderr
    assert "0 differences found" in checked.stderr
    assert f"{len(files)} matching files" in checked.stderr


def test_more_key_pairs_each_for_some_path_prefixes(s3: S3Site) -> None:
    locked_path = f"/{s3.bucket}/projects/locked"
    collection_id = created_id("Collection", gcs(
        s3.env, "collection", "create", s3.gateway_id, locked_path, "Locked part"))
    token = s3.site.token(s3.site.owner, collection_id=collection_id)
    url = f"{s3.site.server.base_url}data/{collection_id}/"

    def status() -> int:
        return curl(s3.site.server, token, "-X", "PROPFIND", "-H", "Depth: 1", url).status

    assert status() == 207  # the credential's own keys
    refused = run_gcs(s3.env, "user-credentials", "s3-keys-add", s3.credential_id,
                      "--path-prefix", locked_path, "--s3-key-id", "AKIAOTHERKEY00000000",
                      "--s3-secret-key", "x")
    assert refused.returncode == 1 and "s3_allow_multi_keys" in refused.stderr
    gcs(s3.env, "storage-gateway", "update", "s3", s3.gateway_id, "--s3-allow-multi-keys")
    gateway = json.loads(gcs(s3.env, "storage-gateway", "show", s3.gateway_id, "-F", "json"))
    assert gateway["policies"]["s3_allow_multi_keys"] is True
    assert gateway["policies"]["s3_endpoint"] == s3.moto.endpoint_url  # the rest is kept

    gcs(s3.env, "user-credentials", "s3-keys-add", s3.credential_id, "--path-prefix",
        locked_path, "--s3-key-id", "AKIAOTHERKEY00000000", "--s3-secret-key", "not-issued")
    assert status() == 403  # under that prefix, the other (unknown) key pair is used
    assert _list(s3, s3.token(s3.site.owner)).status == 207  # elsewhere: the own keys
    gcs(s3.env, "user-credentials", "s3-keys-update", s3.credential_id, "--s3-key-id",
        "AKIAOTHERKEY00000000", "--path-prefix", f"/{s3.bucket}/elsewhere")
    assert status() == 207
    listed = gcs(s3.env, "user-credentials", "list", "-F", "json")
    assert "not-issued" not in listed
    (credential,) = [item for item in json.loads(listed) if item["id"] == s3.credential_id]
    assert credential["policies"]["s3_multi_keys"] == [{
        "path_prefixes": [f"/{s3.bucket}/elsewhere"], "s3_key_id": "AKIAOTHERKEY00000000",
        "s3_secret_key": None}]
    assert credential["policies"]["s3_key_id"] == s3.moto.key_id
    gcs(s3.env, "user-credentials", "s3-keys-delete", s3.credential_id, "--s3-key-id",
        "AKIAOTHERKEY00000000")
    (credential,) = [item for item in json.loads(gcs(s3.env, "user-credentials", "list",
                                                     "-F", "json"))
                     if item["id"] == s3.credential_id]
    assert credential["policies"]["s3_multi_keys"] == []
    assert status() == 207


def test_activescale_gateways_and_credentials(s3: S3Site) -> None:
    domain = s3.site.owner.username.rpartition("@")[2]
    gateway_id = created_id("Storage Gateway", gcs(
        s3.env, "storage-gateway", "create", "activescale", "ActiveScale", "--domain", domain,
        "--s3-endpoint", s3.moto.endpoint_url))
    shown = gcs(s3.env, "storage-gateway", "show", gateway_id)
    assert re.search(r"Connector:\s+ActiveScale", shown), shown
    credential_id = created_id("User Credential", gcs(
        s3.env, "user-credentials", "activescale-create", gateway_id, "--s3-key-id",
        s3.moto.key_id, "--s3-secret-key", s3.moto.secret_key))
    collection_id = created_id("Collection", gcs(
        s3.env, "collection", "create", gateway_id, f"/{s3.bucket}", "Whole bucket"))
    token = s3.site.token(s3.site.owner, collection_id=collection_id)
    url = f"{s3.site.server.base_url}data/{collection_id}"
    put = curl(s3.site.server, token, "-T", "/etc/hostname", f"{url}/from-activescale")
    assert put.status == 201, put.text
    assert s3.moto.client().head_object(Bucket=s3.bucket, Key="from-activescale")
    gcs(s3.env, "collection", "update", collection_id, "--no-delete-protected")
    gcs(s3.env, "collection", "delete", collection_id)
    assert "Deleted User Credential" in gcs(s3.env, "user-credentials", "delete",
                                            credential_id)


def test_bad_s3_documents_are_refused(s3: S3Site) -> None:
    client = s3.manager(s3.site.owner)
    for policies, fragment in [
        ({"DATA_TYPE": "s3_user_credential_policies#1.0.0", "s3_key_id": "k"},
         "needs the s3_secret_key"),
        ({"DATA_TYPE": "s3_user_credential_policies#1.0.0", "s3_key_id": "k",
          "s3_secret_key": "s", "extra": 1}, "unknown property 'extra'"),
        ({"DATA_TYPE": "posix_user_credential_policies#1.0.0"}, "DATA_TYPE must be"),
    ]:
        with pytest.raises(GCSAPIError) as refused:
            client.create_user_credential(UserCredentialDocument(
                storage_gateway_id=s3.gateway_id, policies=policies))
        assert refused.value.http_status == 400 and fragment in refused.value.message
    with pytest.raises(GCSAPIError) as refused:
        client.update_storage_gateway(s3.gateway_id, StorageGatewayDocument(
            policies=S3StoragePolicies(s3_endpoint="ftp://nowhere")))
    assert refused.value.http_status == 400 and "http or https URL" in refused.value.message


def test_a_gateway_without_user_credentials_acts_with_the_servers_own_keys(
    tmp_path: Path, moto_s3: MotoS3,
) -> None:
    """``s3_user_credential_required: false``: boto3's default chain, here the server's
    environment, as a GCS node's instance role."""
    live = start_server(tmp_path / "data", AWS_ACCESS_KEY_ID=moto_s3.key_id,
                        AWS_SECRET_ACCESS_KEY=moto_s3.secret_key)
    try:
        owner = _new_user(live, "owner")
        endpoint = re.search(r"Globus Connect Server endpoint: ([0-9a-f-]{36})", live.log())
        assert endpoint, live.log()
        site = DataSite(live, owner, endpoint.group(1), "")
        bucket = moto_s3.new_bucket("shared")
        client = manager_client(site, owner)
        gateway = client.create_storage_gateway(StorageGatewayDocument(
            display_name="Shared", connector_id="7643e831-5f6c-4b47-a07f-8ee90f401d23",
            allowed_domains=[owner.username.rpartition("@")[2]],
            policies=S3StoragePolicies(s3_endpoint=moto_s3.endpoint_url,
                                       s3_user_credential_required=False)))
        collection = client.create_collection(MappedCollectionDocument(
            display_name="Shared bucket", storage_gateway_id=gateway["id"],
            collection_base_path=f"/{bucket}"))
        token = site.token(owner, collection_id=collection["id"])
        url = f"{live.base_url}data/{collection['id']}"
        put = curl(live, token, "-T", "/etc/hostname", f"{url}/hostname")
        assert put.status == 201, put.text
        stored = moto_s3.client().get_object(Bucket=bucket, Key="hostname")["Body"].read()
        assert stored == Path("/etc/hostname").read_bytes()
    finally:
        live.stop()
