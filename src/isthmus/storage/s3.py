"""The S3 connector: a bucket (or a prefix in one) as a collection's storage, through boto3.

S3 has keys, not directories. A directory is a prefix ending in ``/``: it exists while some key
lies under it, and `mkdir` makes a ``dir/`` marker object so an empty one exists too (what the
S3 consoles and rclone do). A write goes to a multipart upload (or, when small, one PUT) that
S3 makes visible only when it completes. With ``verify_on_disk`` every PUT and part carries
its Content-MD5, so S3 refuses bytes other than those hashed here before anything is visible,
and the ETag S3 computed of what it stored is compared with the MD5 of what was sent (each
part's as it goes up, before the upload completes; a whole object's, where S3's ETag is its
MD5, before the write returns, removing the object if a store that ignores Content-MD5 kept
other bytes): the storage's own digest, without reading a large file back or copying it.
Modification times are kept in the ``mtime`` metadata (seconds, as rclone keeps them), since
S3's own LastModified cannot be set; listings show LastModified, which costs no request per
object. ActiveScale and other S3-compatible stores are reached the same way, by endpoint URL.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import io
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from isthmus.storage.connector import (
    CHUNK_SIZE,
    AtomicWriter,
    Connector,
    Entry,
    EntryType,
    ReadStream,
    WriteOptions,
    check_range,
)
from isthmus.storage.digests import Chunk
from isthmus.storage.errors import (
    AlreadyExists,
    ChecksumMismatch,
    DirectoryNotEmpty,
    InvalidArgument,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    StorageError,
    StorageUnavailable,
)
from isthmus.storage.paths import ROOT, join_parts, split

# The same reserved prefix as POSIX temporaries: hidden from listings, refused as a name.
TEMP_PREFIX = ".isthmus-part-"
# S3's smallest part but the last; parts grow with their number so an upload of unknown size
# stays within S3's 10,000 parts (1,000 parts of 5 MiB, then 10 MiB, ...: about 270 GiB).
MIN_PART_SIZE = 5 * 1024 * 1024
PARTS_PER_STEP = 1000
# CopyObject's limit; larger objects are copied part by part.
MAX_SINGLE_COPY = 5 * 1024**3
MAX_KEY_BYTES = 1024
MTIME_METADATA = "mtime"
KNOWN_DIR_SECONDS = 2.0
MAX_KNOWN_DIRS = 4096
# A path's canonical components (`paths.split`).
Parts = list[str]
_Batch = list[dict[str, str]]

_NOT_FOUND = {"NoSuchKey", "NotFound", "404", "NoSuchUpload"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
           "AccountProblem", "InvalidToken", "ExpiredToken", "403", "InvalidObjectState"}
_QUOTA = {"EntityTooLarge", "QuotaExceeded", "ServiceQuotaExceeded"}


def storage_error(error: Exception, path: str | None, bucket: str) -> StorageError:
    """What an S3 error means to a connector's caller (the path is collection-relative)."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", ""))
        message = str(info.get("Message") or code)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return NotFound(f"The S3 bucket '{bucket}' does not exist", path)
        if code in _NOT_FOUND:
            return NotFound("No such file or directory", path)
        if code in _DENIED or status == 403:
            return PermissionDenied(f"S3 refused the request ({code}): {message}", path)
        if code in _QUOTA:
            return QuotaExceeded(f"S3 refused the size ({code}): {message}", path)
        if code == "KeyTooLongError":
            return InvalidPath("The path is too long for S3", path)
        return StorageUnavailable(f"S3 answered {code or status}: {message}", path)
    if isinstance(error, BotoCoreError):
        return StorageUnavailable(f"S3 could not be reached: {error}", path)
    raise error


@dataclass(frozen=True)
class S3Credentials:
    key_id: str
    secret_key: str


def s3_client(endpoint_url: str | None, credentials: S3Credentials | None,
              region: str | None = None) -> Any:
    """A boto3 client for AWS (no endpoint) or an S3-compatible endpoint (ActiveScale, MinIO,
    Ceph...). Checksums only where S3 requires them: the newer default trailers are not
    understood by every S3-compatible store."""
    # Imported on first use: boto3 takes a tenth of a second to import, which every start
    # of a server that may never reach S3 would otherwise pay.
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=16,
    )
    keys: dict[str, str] = {}
    if credentials is not None:
        keys = {"aws_access_key_id": credentials.key_id,
                "aws_secret_access_key": credentials.secret_key}
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=region or "us-east-1", config=config,
        **keys)


class S3Connector(Connector):
    """A bucket, or the part of it under ``prefix``, as a collection root."""

    max_single_copy = MAX_SINGLE_COPY

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        parts = [part for part in prefix.split("/") if part]
        if any(part in (".", "..") for part in parts):
            raise InvalidPath("An S3 prefix may not contain '.' or '..'")
        self.prefix = "".join(part + "/" for part in parts)
        # Directories found to exist, until when (monotonic): a task writing or reading a
        # thousand files in one folder would otherwise list it again for each of them.
        self._known_dirs: dict[str, float] = {}
        self._known_lock = threading.Lock()

    # --- keys ------------------------------------------------------------------------------

    def _parts(self, path: str) -> list[str]:
        parts = split(path)
        key = self.prefix + "/".join(parts)
        if len(key.encode("utf-8", "surrogatepass")) + 1 > MAX_KEY_BYTES:
            raise InvalidPath("The path is too long for S3", join_parts(parts))
        return parts

    def _key(self, parts: Parts) -> str:
        return self.prefix + "/".join(parts)

    def _dir_prefix(self, parts: Parts) -> str:
        return self.prefix + "".join(part + "/" for part in parts)

    def _call(self, operation: str, path: str | None, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as error:
            raise storage_error(error, path, self.bucket) from None

    def _head(self, parts: Parts) -> dict[str, Any] | None:
        """The object at this path, or None."""
        if not parts:
            return None
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket,
                                                           Key=self._key(parts))
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in _NOT_FOUND:
                return None
            raise storage_error(error, join_parts(parts), self.bucket) from None
        except BotoCoreError as error:
            raise storage_error(error, join_parts(parts), self.bucket) from None
        return head

    def _first_under(self, parts: Parts, count: int = 1) -> list[dict[str, Any]]:
        found = self._call("list_objects_v2", join_parts(parts),
                           Prefix=self._dir_prefix(parts), MaxKeys=count)
        contents: list[dict[str, Any]] = found.get("Contents", [])
        return contents

    def _is_dir(self, parts: Parts) -> bool:
        return not parts or bool(self._first_under(parts))

    def _require_dir(self, parts: Parts) -> None:
        """The directory must exist (NotFound) and be one (NotADirectory). One found within
        the last `KNOWN_DIR_SECONDS` is taken as still there: S3 directories are only
        prefixes, so at worst a write lands in one that another client just emptied,
        making it again, as any S3 tool's upload would."""
        prefix = self._dir_prefix(parts)
        now = time.monotonic()
        with self._known_lock:
            if self._known_dirs.get(prefix, 0.0) > now:
                return
        if self._is_dir(parts):
            with self._known_lock:
                if len(self._known_dirs) >= MAX_KNOWN_DIRS:
                    self._known_dirs.clear()
                self._known_dirs[prefix] = now + KNOWN_DIR_SECONDS
            return
        if self._head(parts) is not None:
            raise NotADirectory("Not a directory", join_parts(parts))
        raise NotFound("No such directory", join_parts(parts))

    def _under(self, parts: Parts) -> Iterator[dict[str, Any]]:
        """Every object under a directory, its marker included."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._dir_prefix(parts)):
                yield from page.get("Contents", [])
        except (ClientError, BotoCoreError) as error:
            raise storage_error(error, join_parts(parts), self.bucket) from None

    @staticmethod
    def _check_name(parts: Parts) -> None:
        if parts and parts[-1].startswith(TEMP_PREFIX):
            raise InvalidPath(f"Names starting with '{TEMP_PREFIX}' are reserved",
                              join_parts(parts))

    # --- entries ---------------------------------------------------------------------------

    @staticmethod
    def _file_entry(name: str, head: dict[str, Any]) -> Entry:
        mtime = head["LastModified"].timestamp()
        with contextlib.suppress(KeyError, ValueError):
            mtime = float(head.get("Metadata", {})[MTIME_METADATA])
        return Entry(name=name, type=EntryType.FILE, size=int(head["ContentLength"]),
                     mtime=mtime)

    def stat(self, path: str) -> Entry:
        parts = self._parts(path)
        if not parts:
            # Reaching the bucket at all is what the root's existence means.
            self._call("list_objects_v2", ROOT, Prefix=self.prefix, MaxKeys=1)
            return Entry(name=ROOT, type=EntryType.DIR, size=0, mtime=0.0)
        head = self._head(parts)
        if head is not None:
            return self._file_entry(parts[-1], head)
        under = self._first_under(parts)
        if not under:
            raise NotFound("No such file or directory", join_parts(parts))
        return Entry(name=parts[-1], type=EntryType.DIR, size=0,
                     mtime=under[0]["LastModified"].timestamp())

    def list(self, path: str) -> Sequence[Entry]:
        parts = self._parts(path)
        prefix = self._dir_prefix(parts)
        entries: list[Entry] = []
        seen = False
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    seen = True
                    name = common["Prefix"][len(prefix):-1]
                    if _addressable(name):
                        entries.append(Entry(name=name, type=EntryType.DIR, size=0, mtime=0.0))
                for item in page.get("Contents", []):
                    seen = True
                    name = item["Key"][len(prefix):]
                    if _addressable(name) and not name.startswith(TEMP_PREFIX):
                        entries.append(Entry(name=name, type=EntryType.FILE,
                                             size=int(item["Size"]),
                                             mtime=item["LastModified"].timestamp()))
        except (ClientError, BotoCoreError) as error:
            raise storage_error(error, join_parts(parts), self.bucket) from None
        if not seen and parts:
            if self._head(parts) is not None:
                raise NotADirectory("Not a directory", join_parts(parts))
            raise NotFound("No such directory", join_parts(parts))
        return entries

    def real_path(self, path: str, *, follow: bool = True) -> str:
        del follow  # S3 has no links
        parts = self._parts(path)
        if parts:
            self._require_dir(parts[:-1])
        return join_parts(parts)

    # --- reading ---------------------------------------------------------------------------

    def open_read(self, path: str, offset: int = 0, length: int | None = None) -> ReadStream:
        parts = self._parts(path)
        canonical = join_parts(parts)
        check_range(canonical, offset, length)
        if offset == 0 and length is None and parts:
            # A whole file: one GET, whose answer describes the object it serves.
            response = self._get_whole(parts, canonical)
            entry = self._file_entry(parts[-1], response)
            end = entry.size
        else:
            head = self._head(parts)
            if head is None:
                self._missing_file(parts, canonical)
            entry = self._file_entry(parts[-1], head)
            end = entry.size if length is None else min(entry.size, offset + length)
            if end <= offset:
                return ReadStream(entry, lambda _size: b"", lambda: None, length=0)
            # If-Match: the bytes served are those of the object just described, or none.
            response = self._call("get_object", canonical, Key=self._key(parts),
                                  Range=f"bytes={offset}-{end - 1}", IfMatch=head["ETag"])
        body = response["Body"]

        def read(size: int) -> bytes:
            try:
                data: bytes = body.read(size)
            except (BotoCoreError, OSError) as error:
                raise StorageUnavailable(f"Reading from S3 failed: {error}", canonical) from None
            return data

        return ReadStream(entry, read, body.close, length=end - offset)

    def _get_whole(self, parts: Parts, canonical: str) -> dict[str, Any]:
        try:
            response: dict[str, Any] = self.client.get_object(Bucket=self.bucket,
                                                              Key=self._key(parts))
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in _NOT_FOUND:
                self._missing_file(parts, canonical)
            raise storage_error(error, canonical, self.bucket) from None
        except BotoCoreError as error:
            raise storage_error(error, canonical, self.bucket) from None
        return response

    def _missing_file(self, parts: Parts, canonical: str) -> NoReturn:
        if self._is_dir(parts):
            raise IsADirectory("Is a directory", canonical)
        raise NotFound("No such file", canonical)

    # --- writing ---------------------------------------------------------------------------

    def begin_write(self, path: str, options: WriteOptions | None = None) -> AtomicWriter:
        parts = self._parts(path)
        if not parts:
            raise InvalidPath("The collection root is a directory", ROOT)
        self._check_name(parts)
        if self._is_dir(parts):
            raise IsADirectory("Is a directory", join_parts(parts))
        self._require_dir(parts[:-1])
        return S3AtomicWriter(self, join_parts(parts), self._key(parts),
                              options or WriteOptions())

    def _put_marker(self, parts: Parts) -> None:
        self._call("put_object", join_parts(parts), Key=self._dir_prefix(parts), Body=b"")

    def mkdir(self, path: str, parents: bool = False) -> None:
        parts = self._parts(path)
        canonical = join_parts(parts)
        if not parts:
            raise AlreadyExists("The collection root exists", ROOT)
        self._check_name(parts)
        if self._head(parts) is not None:
            raise AlreadyExists("A file has that name", canonical)
        if self._is_dir(parts):
            if parents:
                return
            raise AlreadyExists("The directory exists", canonical)
        if not parents:
            self._require_dir(parts[:-1])
        else:
            for depth in range(1, len(parts)):
                ancestor = parts[:depth]
                if self._is_dir(ancestor):
                    continue
                if self._head(ancestor) is not None:
                    raise NotADirectory("Not a directory", join_parts(ancestor))
                self._put_marker(ancestor)
        self._put_marker(parts)

    def _copy(self, source: str, target: str, size: int, path: str,
              metadata: dict[str, str] | None = None) -> None:
        extra: dict[str, Any] = {}
        if metadata is not None:
            extra = {"MetadataDirective": "REPLACE", "Metadata": metadata}
        copy_source = {"Bucket": self.bucket, "Key": source}
        if size <= self.max_single_copy:
            self._call("copy_object", path, Key=target, CopySource=copy_source, **extra)
            return
        try:  # boto3's managed copy, part by part
            self.client.copy(copy_source, self.bucket, target, ExtraArgs=extra or None)
        except (ClientError, BotoCoreError) as error:
            raise storage_error(error, path, self.bucket) from None

    def _delete_keys(self, keys: Iterable[str], path: str) -> None:
        """Delete in batches of S3's limit as the keys come (a listing may be long)."""
        batch: _Batch = []
        for key in keys:
            batch.append({"Key": key})
            if len(batch) == 1000:
                self._delete_batch(batch, path)
                batch = []
        if batch:
            self._delete_batch(batch, path)

    def _delete_batch(self, batch: _Batch, path: str) -> None:
        done = self._call("delete_objects", path, Delete={"Objects": batch, "Quiet": True})
        for failed in done.get("Errors", []):
            raise storage_error(ClientError({"Error": failed}, "DeleteObjects"), path,
                                self.bucket)

    def _forget_dirs(self) -> None:
        """A move or delete may take directories away (a file's folder, when it was the
        last key under it): nothing this connector knows of them is trusted after it."""
        with self._known_lock:
            self._known_dirs.clear()

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        self._forget_dirs()
        source, target = self._parts(src), self._parts(dst)
        if not source or not target:
            raise InvalidPath("The collection root cannot be renamed or replaced", ROOT)
        self._check_name(target)
        if target[:len(source)] == source:
            if target == source:
                return
            raise InvalidArgument("A directory cannot be moved into itself", join_parts(source))
        source_path, target_path = join_parts(source), join_parts(target)
        source_head = self._head(source)
        if source_head is None and not self._is_dir(source):
            raise NotFound("No such file or directory", source_path)
        self._require_dir(target[:-1])
        target_head = self._head(target)
        target_objects = [] if target_head else self._first_under(target, 2)
        if target_head is not None or target_objects:
            if not overwrite:
                raise AlreadyExists("The target exists", target_path)
            if source_head is not None and target_objects:
                raise IsADirectory("The target is a directory", target_path)
            if source_head is None and target_head is not None:
                raise NotADirectory("The target is a file", target_path)
            if any(item["Key"] != self._dir_prefix(target) for item in target_objects):
                raise DirectoryNotEmpty("The target directory is not empty", target_path)
        if source_head is not None:
            self._copy(self._key(source), self._key(target), int(source_head["ContentLength"]),
                       source_path)
            self._call("delete_object", source_path, Key=self._key(source))
            return
        old, new = self._dir_prefix(source), self._dir_prefix(target)
        moved = list(self._under(source))
        for item in moved:
            self._copy(item["Key"], new + item["Key"][len(old):], int(item["Size"]),
                       source_path)
        self._delete_keys([item["Key"] for item in moved], source_path)

    def delete(self, path: str, recursive: bool = False) -> None:
        self._forget_dirs()
        parts = self._parts(path)
        canonical = join_parts(parts)
        if not parts:
            raise InvalidPath("The collection root cannot be deleted", ROOT)
        if self._head(parts) is not None:
            self._call("delete_object", canonical, Key=self._key(parts))
            return
        marker = self._dir_prefix(parts)
        first = self._first_under(parts, 2)
        if not first:
            raise NotFound("No such file or directory", canonical)
        if not recursive and any(item["Key"] != marker for item in first):
            raise DirectoryNotEmpty("The directory is not empty", canonical)
        self._delete_keys((item["Key"] for item in self._under(parts)), canonical)

    def set_mtime(self, path: str, mtime: float) -> None:
        """Files keep it in their metadata; S3 directories have no time to set."""
        parts = self._parts(path)
        head = self._head(parts)
        if head is None:
            if self._is_dir(parts):
                return
            raise NotFound("No such file", join_parts(parts))
        metadata = {**head.get("Metadata", {}), MTIME_METADATA: repr(float(mtime))}
        self._copy(self._key(parts), self._key(parts), int(head["ContentLength"]),
                   join_parts(parts), metadata)

    def close(self) -> None:
        self.client.close()


def _addressable(name: str) -> bool:
    """Keys other tools wrote that no collection path can name (``a//b``, ``./x``) are not
    listed."""
    return name not in ("", ".", "..") and "/" not in name


class _PartBody(io.RawIOBase):
    """The buffered chunks of one part as a seekable file, without joining them (which
    would hold the part twice)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self._starts: list[int] = []
        total = 0
        for chunk in chunks:
            self._starts.append(total)
            total += len(chunk)
        self._size = total
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        """At most ``size`` bytes from one chunk: a whole chunk is handed out without a copy
        (readers loop until ``b""``)."""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK_SIZE), b""))
        if self._position >= self._size or size == 0:
            return b""
        index = bisect.bisect_right(self._starts, self._position) - 1
        chunk = self._chunks[index]
        start = self._position - self._starts[index]
        data = chunk[start:start + size]
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)


class S3AtomicWriter(AtomicWriter):
    """Parts go up as they fill; nothing exists at the final key until the upload completes
    (`_publish`, or `_flush` when verifying, so the stored object can be checked)."""

    def __init__(self, connector: S3Connector, path: str, key: str,
                 options: WriteOptions) -> None:
        if options.verify_on_disk:  # compared with S3's own MD5 of what it stored
            options = replace(options, algorithms=(*options.algorithms, "md5"))
        super().__init__(path, options)
        self._s3 = connector
        self._key = key
        self._metadata = ({MTIME_METADATA: repr(float(options.mtime))}
                          if options.mtime is not None else {})
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._stored = False  # an object exists at self._key, written by this writer
        self._stored_md5: bytes | None = None  # S3's MD5 of the whole object, when known

    def _call(self, operation: str, **kwargs: Any) -> Any:
        return self._s3._call(operation, self.path, **kwargs)

    def _part_size(self) -> int:
        return MIN_PART_SIZE * (1 + len(self._parts) // PARTS_PER_STEP)

    def _write_chunks(self, chunks: Sequence[Chunk]) -> None:
        for chunk in chunks:
            if chunk:
                # Kept until its part is sent: a view of the caller's buffer is copied (the
                # caller may reuse it once this returns).
                self._chunks.append(chunk if isinstance(chunk, bytes) else bytes(chunk))
                self._buffered += len(chunk)
        if self._buffered >= self._part_size():
            self._upload_part()

    def _md5(self) -> dict[str, Any]:
        """The Content-MD5 of the buffered bytes, when verifying (S3 refuses others)."""
        if not self.options.verify_on_disk:
            return {}
        digest = hashlib.md5(usedforsecurity=False)
        for chunk in self._chunks:
            digest.update(chunk)
        return {"ContentMD5": base64.b64encode(digest.digest()).decode()}

    def _check_etag(self, answer: dict[str, Any], sent: dict[str, Any], what: str) -> None:
        """S3's ETag of a PUT or part is the MD5 of what it stored, except under KMS or
        customer-key encryption."""
        if not sent or answer.get("SSECustomerAlgorithm") or str(
                answer.get("ServerSideEncryption", "")).startswith("aws:kms"):
            return
        stored = str(answer.get("ETag", "")).strip('"')
        if stored != base64.b64decode(sent["ContentMD5"]).hex():
            raise ChecksumMismatch(f"S3 stored other bytes than were sent ({what})", self.path)
        self._stored_md5 = bytes.fromhex(stored)

    def _upload_part(self) -> None:
        if self._upload_id is None:
            created = self._call("create_multipart_upload", Key=self._key,
                                 Metadata=self._metadata)
            self._upload_id = str(created["UploadId"])
        number = len(self._parts) + 1
        md5 = self._md5()
        uploaded = self._call("upload_part", Key=self._key, UploadId=self._upload_id,
                              PartNumber=number, Body=_PartBody(self._chunks),
                              ContentLength=self._buffered, **md5)
        self._check_etag(uploaded, md5, f"part {number}")
        self._stored_md5 = None  # a part's, not the object's
        self._parts.append({"ETag": uploaded["ETag"], "PartNumber": number})
        self._chunks, self._buffered = [], 0

    def _store(self) -> None:
        """Make the object at ``self._key``: complete the upload, or PUT a small file."""
        if self._upload_id is None:
            md5 = self._md5()
            stored = self._call("put_object", Key=self._key, Body=_PartBody(self._chunks),
                                ContentLength=self._buffered, Metadata=self._metadata, **md5)
            self._stored = True
            self._check_etag(stored, md5, "the whole file")
        else:
            self._call("complete_multipart_upload", Key=self._key, UploadId=self._upload_id,
                       MultipartUpload={"Parts": self._parts})
            self._upload_id = None
            self._stored = True
        self._chunks, self._buffered = [], 0

    def _refuse_existing(self) -> None:
        # S3 has no create-if-absent: this check and the write after it are two requests.
        if self._s3._head(self._s3._parts(self.path)) is not None:
            raise AlreadyExists("The file exists", self.path)

    def _flush(self) -> None:
        if self._upload_id is not None and self._buffered:
            self._upload_part()
        if self.options.verify_on_disk and not self._stored:
            # Stored now (parts already checked, a PUT's ETag checked as it returns) so
            # that what S3 holds is looked at before the write succeeds.
            if not self.options.overwrite:
                self._refuse_existing()
            self._store()

    def _reread(self, algorithms: Sequence[str]) -> tuple[int, dict[str, bytes]]:
        """The stored object's size, and its MD5 where its ETag is one (a multipart
        upload's is not: its parts were each checked). A PUT whose ETag matched the MD5
        sent holds exactly the bytes sent: no request is needed to know its size."""
        del algorithms  # S3 computes MD5 only; the others were checked as they streamed
        if self._stored_md5 is not None:
            return self.size, {"md5": self._stored_md5}
        head = self._call("head_object", Key=self._key)
        return int(head["ContentLength"]), {}

    def _publish(self, overwrite: bool, mtime: float | None) -> None:
        del mtime  # given with the upload's metadata
        if self._stored:
            return  # verified in place
        if not overwrite:
            self._refuse_existing()
        self._store()

    def _discard(self) -> None:
        self._chunks, self._buffered = [], 0
        cleanups: list[Callable[[], Any]] = []
        if self._upload_id is not None:
            upload_id = self._upload_id
            cleanups.append(lambda: self._s3.client.abort_multipart_upload(
                Bucket=self._s3.bucket, Key=self._key, UploadId=upload_id))
        if self._stored:  # stored, then found wrong: it must not stay visible
            cleanups.append(lambda: self._s3.client.delete_object(
                Bucket=self._s3.bucket, Key=self._key))
        self._upload_id, self._stored = None, False
        for cleanup in cleanups:
            # Best effort: the write already failed; a lost upload is S3's to expire.
            with contextlib.suppress(ClientError, BotoCoreError):
                cleanup()


def open_s3_connector(endpoint_url: str | None, bucket: str, prefix: str,
                      credentials: S3Credentials | None) -> S3Connector:
    return S3Connector(s3_client(endpoint_url, credentials), bucket, prefix)
