"""The S3 connector: the conformance suite over a real S3 server (moto in server mode), plus
what is particular to S3 (multipart uploads, directory markers, refused keys)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from isthmus.storage.connector import WriteOptions
from isthmus.storage.errors import ChecksumMismatch, NotFound, PermissionDenied
from isthmus.storage.s3 import MIN_PART_SIZE, S3Connector, S3Credentials, s3_client
from tests.s3_server import MotoS3
from tests.storage.conformance import Backing, ConnectorConformance, StorageTarget, pattern_chunks


class S3Backing(Backing):
    """The bucket through a plain boto3 client; directories as ``dir/`` marker objects."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, path: str) -> str:
        return self.prefix + path.strip("/")

    def put(self, path: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(path), Body=data)

    def get(self, path: str) -> bytes | None:
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=self._key(path))
        except self.client.exceptions.NoSuchKey:
            return None
        data: bytes = found["Body"].read()
        return data

    def make_dir(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            key = self.prefix + "/".join(parts[:depth]) + "/"
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"")

    def names(self, path: str) -> set[str]:
        prefix = self._key(path)
        prefix = prefix + "/" if prefix and not prefix.endswith("/") else prefix
        names = set()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                rest = item["Key"][len(prefix):]
                if rest:
                    names.add(rest.split("/", 1)[0])
        return names

    def keys(self) -> set[str]:
        found = self.client.list_objects_v2(Bucket=self.bucket)
        return {item["Key"] for item in found.get("Contents", [])}

    def uploads(self) -> list[dict[str, Any]]:
        uploads: list[dict[str, Any]] = self.client.list_multipart_uploads(
            Bucket=self.bucket).get("Uploads", [])
        return uploads


@pytest.fixture
def connector_client(moto_s3: MotoS3) -> Iterator[Any]:
    client = s3_client(moto_s3.endpoint_url, S3Credentials(moto_s3.key_id, moto_s3.secret_key))
    yield client
    client.close()


class TestS3Conformance(ConnectorConformance):
    """The collection root is a prefix inside a bucket, so confinement to it is tested too."""

    @pytest.fixture
    def target(self, moto_s3: MotoS3, connector_client: Any) -> Iterator[StorageTarget]:
        bucket = moto_s3.new_bucket()
        plain = moto_s3.client()
        plain.put_object(Bucket=bucket, Key="outside.txt", Body=b"outside the root")
        yield StorageTarget(S3Connector(connector_client, bucket, "root/"),
                            S3Backing(plain, bucket, "root/"))
        assert plain.get_object(Bucket=bucket, Key="outside.txt")["Body"].read() == \
            b"outside the root"
        plain.close()


@pytest.fixture
def bucket_target(moto_s3: MotoS3, connector_client: Any) -> Iterator[StorageTarget]:
    bucket = moto_s3.new_bucket()
    plain = moto_s3.client()
    yield StorageTarget(S3Connector(connector_client, bucket), S3Backing(plain, bucket, ""))
    plain.close()


def test_large_files_go_up_in_parts_and_appear_only_when_complete(
    bucket_target: StorageTarget,
) -> None:
    connector, backing = bucket_target.connector, bucket_target.backing
    assert isinstance(backing, S3Backing)
    size = 2 * MIN_PART_SIZE + 12345
    with connector.begin_write("/big.bin", WriteOptions(mtime=1_500_000_000.0)) as writer:
        for chunk in pattern_chunks(size):
            writer.write(chunk)
        assert len(backing.uploads()) == 1  # parts are on the server, the object is not
        assert backing.keys() == set()
        result = writer.commit()
    assert result.size == size
    assert backing.uploads() == []
    head = backing.client.head_object(Bucket=backing.bucket, Key="big.bin")
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    assert connector.stat("/big.bin").mtime == 1_500_000_000.0


def test_an_aborted_multipart_upload_is_cleaned_up(bucket_target: StorageTarget) -> None:
    backing = bucket_target.backing
    assert isinstance(backing, S3Backing)
    writer = bucket_target.connector.begin_write("/gone.bin")
    for chunk in pattern_chunks(MIN_PART_SIZE + 1):
        writer.write(chunk)
    assert len(backing.uploads()) == 1
    writer.abort()
    assert backing.uploads() == [] and backing.keys() == set()


def _corrupt_in_transit(connector: S3Connector, operation: str) -> None:
    """Flip the first byte of every ``operation`` request's body once it is hashed and
    signed, as a faulty path to S3 would (moto, unlike S3, does not check Content-MD5, so
    only the ETag comparison can notice)."""

    def corrupt(request: Any, **_: Any) -> None:
        body = request.body
        data = body.read() if hasattr(body, "read") else bytes(body)
        request.body = bytes([data[0] ^ 1]) + data[1:]

    connector.client.meta.events.register(f"before-send.s3.{operation}", corrupt)


def test_verified_writes_are_checked_against_what_s3_stored(
    bucket_target: StorageTarget,
) -> None:
    connector, backing = bucket_target.connector, bucket_target.backing
    assert isinstance(connector, S3Connector) and isinstance(backing, S3Backing)
    backing.make_dir("/d")
    verified = WriteOptions(verify_on_disk=True, mtime=5.0)
    result = connector.write_atomic("/d/v", [b"veri", b"fied"], verified)
    assert result.hexdigest("md5") == hashlib.md5(b"verified").hexdigest()
    assert backing.names("/d") == {"v"} and backing.get("/d/v") == b"verified"
    assert connector.stat("/d/v").mtime == 5.0

    _corrupt_in_transit(connector, "PutObject")
    with pytest.raises(ChecksumMismatch):
        connector.write_atomic("/d/small", [b"bytes that do not arrive"], verified)
    _corrupt_in_transit(connector, "UploadPart")
    with pytest.raises(ChecksumMismatch):
        connector.write_atomic("/d/large", pattern_chunks(MIN_PART_SIZE + 10), verified)
    assert backing.names("/d") == {"v"} and backing.uploads() == []
    # Without verification nothing looks: what S3 was sent is what it keeps.
    connector.write_atomic("/d/unverified", [b"abc"])
    assert backing.get("/d/unverified") == b"`bc"


def test_objects_beyond_a_single_copy_are_copied_in_parts(bucket_target: StorageTarget) -> None:
    connector, backing = bucket_target.connector, bucket_target.backing
    assert isinstance(connector, S3Connector)
    data = b"".join(pattern_chunks(MIN_PART_SIZE + 100))
    backing.put("/src", data)
    connector.max_single_copy = 1024  # as if the object were over S3's 5 GiB CopyObject limit
    connector.rename("/src", "/dst")
    assert backing.get("/dst") == data and backing.get("/src") is None


def test_implicit_directories_written_by_other_tools_are_directories(
    bucket_target: StorageTarget,
) -> None:
    connector, backing = bucket_target.connector, bucket_target.backing
    backing.put("/a/b/c.txt", b"c")  # no markers, as `aws s3 cp` or rclone leave it
    assert connector.stat("/a").is_dir() and connector.stat("/a/b").is_dir()
    assert [entry.name for entry in connector.list("/a")] == ["b"]
    connector.write_atomic("/a/new", [b"n"])
    assert sorted(entry.name for entry in connector.list("/a")) == ["b", "new"]


def test_keys_the_bucket_refuses_are_permission_denied(moto_s3: MotoS3) -> None:
    bucket = moto_s3.new_bucket()
    client = s3_client(moto_s3.endpoint_url, S3Credentials("AKIANOTISSUED0000000", "wrong"))
    with S3Connector(client, bucket) as connector:
        with pytest.raises(PermissionDenied) as refused:
            connector.stat("/")
        assert "InvalidAccessKeyId" in str(refused.value)
        with pytest.raises(PermissionDenied):
            connector.write_atomic("/x", [b"x"])
    wrong_secret = s3_client(moto_s3.endpoint_url, S3Credentials(moto_s3.key_id, "not-it"))
    with S3Connector(wrong_secret, bucket) as connector, pytest.raises(PermissionDenied):
        connector.list("/")


def test_a_missing_bucket_is_not_found(moto_s3: MotoS3, connector_client: Any) -> None:
    connector = S3Connector(connector_client, "no-such-bucket-here")
    with pytest.raises(NotFound) as missing:
        connector.stat("/")
    assert "no-such-bucket-here" in str(missing.value)


def test_a_directory_of_more_than_one_delete_batch_goes_whole(
    bucket_target: StorageTarget,
) -> None:
    backing = bucket_target.backing
    for index in range(1005):  # S3 deletes at most 1,000 keys a request
        backing.put(f"/many/f{index}", b"")
    bucket_target.connector.delete("/many", recursive=True)
    assert backing.names("/") == set()


def test_a_directory_this_connector_removed_is_not_remembered(
    bucket_target: StorageTarget,
) -> None:
    connector = bucket_target.connector
    connector.mkdir("/d")
    connector.write_atomic("/d/a", [b"a"])  # /d is now known to exist
    connector.delete("/d", recursive=True)
    with pytest.raises(NotFound):
        connector.write_atomic("/d/b", [b"b"])
    connector.mkdir("/e/f", parents=True)
    connector.write_atomic("/e/f/a", [b"a"])
    connector.rename("/e", "/moved")
    with pytest.raises(NotFound):
        connector.write_atomic("/e/f/b", [b"b"])
    assert bucket_target.backing.get("/moved/f/a") == b"a"
