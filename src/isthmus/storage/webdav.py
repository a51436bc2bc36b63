"""A connector over a WebDAV class 1 server (RFC 4918) reached over HTTPS with a bearer token:
Nextcloud, ownCloud, CERNBox, or another Isthmus's collection ``https_url``.

PROPFIND (Depth 0 and 1) for stat and list, GET with a Range for reads, MKCOL, MOVE and
DELETE. A write streams a PUT to a temporary name in the file's folder (hashing as it goes)
and MOVEs it into place with ``Overwrite``, so a reader of the final name never sees half a
file; abandoning the write ends the PUT and deletes the temporary. Digests come from the
server's ``Repr-Digest`` (RFC 9530) when it gives them, else from reading the file. A
modification time goes with the PUT (``X-OC-Mtime``) where the server accepts it, else is
set with PROPPATCH of ``DAV:lastmodified`` (seconds since the epoch), as ownCloud, Nextcloud
and Isthmus accept both.

Every path is canonicalised (`paths.normalize`) before it becomes part of a URL, so nothing
reaches above the connector's base URL.
"""

from __future__ import annotations

import contextlib
import queue
import secrets
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Iterator, Sequence
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from isthmus.storage import paths
from isthmus.storage.connector import (
    AtomicWriter,
    Connector,
    Entry,
    EntryType,
    ReadStream,
    WriteOptions,
    check_range,
)
from isthmus.storage.digests import (
    Chunk,
    canonical_algorithms,
    parse_digest_field,
    rfc9530_name,
)
from isthmus.storage.errors import (
    AlreadyExists,
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

TEMP_PREFIX = ".isthmus-upload-"
TIMEOUT = httpx.Timeout(120.0, connect=15.0)
_DAV = "{DAV:}"
_PROPFIND = (b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
             b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/></D:prop></D:propfind>")
_MAX_MULTISTATUS = 64 * 1024 * 1024
# Chunks queued between a writer and its PUT: enough to keep the connection busy, few
# enough that memory stays flat whatever the file's size.
_QUEUED_CHUNKS = 2
KNOWN_FOLDER_SECONDS = 2.0
MAX_KNOWN_FOLDERS = 4096

TokenSource = Callable[[], str]


class WebDAVConnector(Connector):
    """The files under ``base_url`` (a folder URL). ``token`` gives the bearer token for each
    request (a credential may refresh it). ``verify`` is httpx's: a CA file, an SSL context,
    or True for the system's CAs."""

    def __init__(self, base_url: str, token: TokenSource, *,
                 verify: Any = True, timeout: httpx.Timeout = TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self._base_path = unquote(urlsplit(self.base_url).path).rstrip("/")
        self._token = token
        self._client = httpx.Client(verify=verify, timeout=timeout)
        # Folders found to exist, until when (monotonic): a task moving a thousand files of
        # one folder would otherwise ask after it again for each of them. A folder removed
        # meanwhile by someone else only changes which request fails (a PUT into it is 409).
        self._known_folders: dict[str, float] = {}
        self._known_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    # --- requests ------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url + quote(path, safe="/")

    def _request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                 content: bytes | Iterator[bytes] | None = None,
                 stream: bool = False) -> httpx.Response:
        all_headers = {"Authorization": f"Bearer {self._token()}", **(headers or {})}
        request = self._client.build_request(method, self.url(path), headers=all_headers,
                                             content=content)
        try:
            return self._client.send(request, stream=stream)
        except httpx.HTTPError as error:
            raise StorageUnavailable(f"The WebDAV server cannot be reached: "
                                     f"{type(error).__name__}", path) from None

    def _propfind(self, path: str, depth: str) -> list[tuple[str, Entry]]:
        response = self._request("PROPFIND", path, content=_PROPFIND, headers={
            "Depth": depth, "Content-Type": "application/xml; charset=utf-8"})
        if response.status_code != 207:
            raise _error(response, path)
        if len(response.content) > _MAX_MULTISTATUS:
            raise StorageUnavailable("The WebDAV server's listing is too large", path)
        return self._parse_multistatus(response.content, path)

    def _parse_multistatus(self, body: bytes, path: str) -> list[tuple[str, Entry]]:
        """(canonical path, entry) of each response; a server's DOCTYPE is refused (no
        entities, so no entity expansion)."""
        if b"<!DOCTYPE" in body.upper():
            raise StorageUnavailable("The WebDAV server's answer declares a DOCTYPE", path)
        try:
            root = ElementTree.fromstring(body)  # noqa: S314 - no DOCTYPE, so no entities
        except ElementTree.ParseError:
            raise StorageUnavailable("The WebDAV server's answer is not XML", path) from None
        found = []
        for response in root.iter(f"{_DAV}response"):
            href = response.findtext(f"{_DAV}href") or ""
            location = self._path_of(href)
            if location is None:
                continue
            props: dict[str, ElementTree.Element] = {}
            for propstat in response.iter(f"{_DAV}propstat"):
                if " 200 " in (propstat.findtext(f"{_DAV}status") or "") + " ":
                    for prop in propstat.iter(f"{_DAV}prop"):
                        props.update({child.tag: child for child in prop})
            found.append((location, _entry(location, props)))
        return found

    def _path_of(self, href: str) -> str | None:
        """The canonical path an href names, or None when it is not under the base URL."""
        decoded = unquote(urlsplit(href).path, errors="strict")
        if decoded.rstrip("/") == self._base_path:
            return paths.ROOT
        if not decoded.startswith(self._base_path + "/"):
            return None
        try:
            return paths.normalize(decoded[len(self._base_path):])
        except InvalidPath:
            return None

    # --- reading -------------------------------------------------------------------------

    def stat(self, path: str) -> Entry:
        canonical = _canonical(path)
        for location, entry in self._propfind(canonical, "0"):
            if location == canonical:
                return entry
        raise NotFound(f"'{canonical}' does not exist", canonical)

    def list(self, path: str) -> Sequence[Entry]:
        canonical = _canonical(path)
        found = self._propfind(canonical, "1")
        own = [entry for location, entry in found if location == canonical]
        if not own:
            raise NotFound(f"'{canonical}' does not exist", canonical)
        if not own[0].is_dir():
            raise NotADirectory(f"'{canonical}' is not a folder", canonical)
        return [entry for location, entry in found
                if location != canonical and paths.parent_and_name(location)[0] == canonical
                and not entry.name.startswith(TEMP_PREFIX)]

    def real_path(self, path: str, *, follow: bool = True) -> str:
        """WebDAV has no symlinks; a name to create needs its folder to exist."""
        del follow  # without symlinks there is nothing to follow
        canonical = _canonical(path)
        if canonical != paths.ROOT:
            self._folder(paths.parent_and_name(canonical)[0])
        return canonical

    def _folder(self, path: str) -> None:
        now = time.monotonic()
        with self._known_lock:
            if self._known_folders.get(path, 0.0) > now:
                return
        if not self.stat(path).is_dir():
            raise NotADirectory(f"'{path}' is not a folder", path)
        with self._known_lock:
            if len(self._known_folders) >= MAX_KNOWN_FOLDERS:
                self._known_folders.clear()
            self._known_folders[path] = now + KNOWN_FOLDER_SECONDS

    def _forget_folders(self) -> None:
        with self._known_lock:
            self._known_folders.clear()

    def open_read(self, path: str, offset: int = 0, length: int | None = None) -> ReadStream:
        canonical = _canonical(path)
        check_range(canonical, offset, length)
        entry = self.stat(canonical)
        if entry.is_dir():
            raise IsADirectory(f"'{canonical}' is a folder", canonical)
        end = entry.size if length is None else min(entry.size, offset + length)
        if offset >= end:
            return ReadStream(entry, lambda _: b"", lambda: None, length=0)
        response = self._request("GET", canonical, stream=True,
                                 headers={"Range": f"bytes={offset}-{end - 1}"})
        if response.status_code not in (200, 206):
            response.read()
            response.close()
            raise _error(response, canonical)
        body = _Body(response.iter_raw(self.chunk_size))
        if response.status_code == 200:  # the server ignored the Range
            body.skip(offset)
        return ReadStream(entry, body.read, response.close, length=end - offset,
                          chunk_size=self.chunk_size)

    def digests(self, path: str, algorithms: Iterable[str]) -> dict[str, bytes]:
        return self.size_and_digests(path, algorithms)[1]

    def size_and_digests(self, path: str,
                         algorithms: Iterable[str]) -> tuple[int, dict[str, bytes]]:
        """The file's size and digests, from one HEAD when the server offers them."""
        canonical = _canonical(path)
        wanted = canonical_algorithms(algorithms)
        want = ", ".join(f"{rfc9530_name(name)}=10" for name in wanted)
        response = self._request("HEAD", canonical, headers={"Want-Repr-Digest": want})
        if response.status_code == 405:
            raise IsADirectory(f"'{canonical}' is a folder", canonical)
        if response.status_code != 200:
            raise _error(response, canonical)
        try:
            offered = parse_digest_field(response.headers.get("repr-digest", ""))
            size = int(response.headers["content-length"])
        except (StorageError, KeyError, ValueError):
            offered, size = {}, -1
        if size >= 0 and all(name in offered for name in wanted):
            return size, {name: offered[name] for name in wanted}
        # The server does not offer them: read the file.
        return self.stat(canonical).size, super().digests(canonical, wanted)

    # --- writing -------------------------------------------------------------------------

    def begin_write(self, path: str, options: WriteOptions | None = None) -> AtomicWriter:
        canonical = _canonical(path)
        folder, name = paths.parent_and_name(canonical)
        _refuse_reserved(name, canonical)
        # A missing folder needs no request of its own: the PUT into it is refused (409,
        # RFC 4918 §9.7.1) and nothing is made.
        with contextlib.suppress(NotFound):
            if self.stat(canonical).is_dir():
                raise IsADirectory(f"'{canonical}' is a folder", canonical)
        temp = paths.join(folder, TEMP_PREFIX + secrets.token_hex(16))
        return _Writer(self, canonical, temp, options or WriteOptions())

    def mkdir(self, path: str, parents: bool = False) -> None:
        canonical = _canonical(path)
        if canonical == paths.ROOT:
            raise AlreadyExists("The root already exists", canonical)
        _refuse_reserved(paths.parent_and_name(canonical)[1], canonical)
        if parents:
            parts = paths.split(canonical)
            for depth in range(1, len(parts) + 1):
                partial = paths.join_parts(parts[:depth])
                try:
                    entry = self.stat(partial)
                except NotFound:
                    self._mkcol(partial)
                    continue
                if not entry.is_dir():
                    raise NotADirectory(f"'{partial}' is not a folder", partial)
            return
        self._mkcol(canonical)

    def _mkcol(self, path: str) -> None:
        response = self._request("MKCOL", path)
        if response.status_code == 405:
            raise AlreadyExists(f"'{path}' already exists", path)
        if response.status_code == 409:
            raise NotFound(f"The folder that would hold '{path}' does not exist", path)
        if response.status_code != 201:
            raise _error(response, path)

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        source, destination = _canonical(src), _canonical(dst)
        paths.parent_and_name(source)
        _refuse_reserved(paths.parent_and_name(destination)[1], destination)
        if destination.startswith(source.rstrip("/") + "/"):
            raise InvalidArgument(f"'{source}' cannot be moved into itself", source)
        self._forget_folders()  # it may be a folder, or hold some
        self._move(source, destination, overwrite)

    def _move(self, source: str, destination: str, overwrite: bool) -> None:
        response = self._request("MOVE", source, headers={
            "Destination": self.url(destination), "Overwrite": "T" if overwrite else "F"})
        if response.status_code == 412:
            raise AlreadyExists(f"'{destination}' already exists", destination)
        if response.status_code == 409:
            raise NotFound(f"The folder that would hold '{destination}' does not exist",
                           destination)
        if response.status_code not in (201, 204):
            raise _error(response, source)

    def delete(self, path: str, recursive: bool = False) -> None:
        canonical = _canonical(path)
        if canonical == paths.ROOT:
            raise InvalidPath("The collection root cannot be deleted", canonical)
        # DELETE on a WebDAV collection removes all it holds (RFC 4918 §9.6.1).
        if not recursive and self.stat(canonical).is_dir() and self.list(canonical):
            raise DirectoryNotEmpty(f"'{canonical}' is not empty", canonical)
        self._forget_folders()
        self._delete(canonical)

    def _delete(self, path: str) -> None:
        response = self._request("DELETE", path)
        if response.status_code not in (200, 204):
            raise _error(response, path)

    def set_mtime(self, path: str, mtime: float) -> None:
        canonical = _canonical(path)
        body = (f'<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:">'
                f"<D:set><D:prop><D:lastmodified>{int(mtime)}</D:lastmodified></D:prop>"
                f"</D:set></D:propertyupdate>").encode()
        response = self._request("PROPPATCH", canonical, content=body,
                                 headers={"Content-Type": "application/xml; charset=utf-8"})
        if response.status_code != 207:
            raise _error(response, canonical)
        if b" 200 " not in response.content:
            raise StorageUnavailable("The WebDAV server did not set the modification time",
                                     canonical)


class _Writer(AtomicWriter):
    """A PUT of the temporary name, fed chunk by chunk from another thread (httpx pulls the
    body from an iterator; the connector interface pushes)."""

    def __init__(self, connector: WebDAVConnector, path: str, temp: str,
                 options: WriteOptions) -> None:
        super().__init__(path, options)
        self._connector = connector
        self._temp = temp
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUED_CHUNKS)
        self._response: httpx.Response | None = None
        self._failure: StorageError | None = None
        self._thread = threading.Thread(target=self._upload, name="webdav-put", daemon=True)
        self._thread.start()

    def _upload(self) -> None:
        def body() -> Iterator[bytes]:
            while (chunk := self._chunks.get()) is not None:
                yield chunk

        # ownCloud's header (which Isthmus and Nextcloud accept too) sets the time with the
        # PUT; a server that answers without "X-OC-MTime: accepted" gets a PROPPATCH.
        headers = ({"X-OC-Mtime": repr(float(self.options.mtime))}
                   if self.options.mtime is not None else {})
        try:
            self._response = self._connector._request("PUT", self._temp, content=body(),
                                                      headers=headers)
        except StorageError as error:
            self._failure = error
        except Exception as error:  # reported to the writer, not lost in a thread
            self._failure = StorageUnavailable(f"The upload failed: {type(error).__name__}",
                                               self.path)

    def _put(self, item: bytes | None) -> None:
        while self._thread.is_alive():
            try:
                self._chunks.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _write_chunks(self, chunks: Sequence[Chunk]) -> None:
        for chunk in chunks:
            if chunk:
                # Queued for the sending thread: a view of the caller's buffer is copied (the
                # caller may reuse it once this returns).
                self._put(chunk if isinstance(chunk, bytes) else bytes(chunk))
        if not self._thread.is_alive():
            self._finished()

    def _finished(self) -> httpx.Response:
        """End the body and wait for the server's answer to the PUT."""
        self._put(None)
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        assert self._response is not None  # set unless the request failed
        if self._response.status_code not in (200, 201, 204):
            raise _error(self._response, self.path)
        return self._response

    def _flush(self) -> None:
        self._finished()

    def _reread(self, algorithms: Sequence[str]) -> tuple[int, dict[str, bytes]]:
        return self._connector.size_and_digests(self._temp, algorithms)

    def _publish(self, overwrite: bool, mtime: float | None) -> None:
        accepted = (self._response is not None
                    and self._response.headers.get("x-oc-mtime", "").lower() == "accepted")
        if mtime is not None and not accepted:
            self._connector.set_mtime(self._temp, mtime)
        self._connector._move(self._temp, self.path, overwrite)

    def _discard(self) -> None:
        # Ending the PUT cleanly (rather than breaking the connection) lets the server
        # finish with it before the temporary is deleted, so nothing is left behind.
        with contextlib.suppress(StorageError):
            self._finished()
        with contextlib.suppress(StorageError):
            self._connector._delete(self._temp)


class _Body:
    """A response body read like a file: ``read(n)`` from an iterator of chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def skip(self, count: int) -> None:
        while count > 0 and (data := self.read(min(count, 1024 * 1024))):
            count -= len(data)


def _canonical(path: str) -> str:
    return paths.normalize(path)


def _refuse_reserved(name: str, path: str) -> None:
    if name.startswith(TEMP_PREFIX):
        raise InvalidPath(f"Names starting with '{TEMP_PREFIX}' are reserved", path)


def _entry(location: str, props: dict[str, ElementTree.Element]) -> Entry:
    kind = props.get(f"{_DAV}resourcetype")
    directory = kind is not None and kind.find(f"{_DAV}collection") is not None
    try:
        size = int(props[f"{_DAV}getcontentlength"].text or 0) if not directory else 0
    except (KeyError, ValueError):
        size = 0
    mtime = 0.0
    modified = props.get(f"{_DAV}getlastmodified")
    if modified is not None and modified.text:
        with contextlib.suppress(TypeError, ValueError):
            mtime = parsedate_to_datetime(modified.text).timestamp()
    name = "/" if location == paths.ROOT else paths.parent_and_name(location)[1]
    return Entry(name=name, type=EntryType.DIR if directory else EntryType.FILE,
                 size=size, mtime=mtime)


_BY_STATUS: dict[int, type[StorageError]] = {
    400: InvalidArgument, 401: PermissionDenied, 403: PermissionDenied, 404: NotFound,
    409: NotFound, 412: AlreadyExists, 507: QuotaExceeded,
}


def _error(response: httpx.Response, path: str) -> StorageError:
    """A WebDAV answer as a storage error (the server's own message when it gives one)."""
    kind = _BY_STATUS.get(response.status_code, StorageUnavailable)
    try:
        message = str(response.json().get("message") or "")
    except (ValueError, AttributeError, httpx.ResponseNotRead):
        message = ""
    return kind(message or f"The WebDAV server answered {response.status_code}", path)
