"""HTTPS and WebDAV class 1 on each collection's ``https_url`` (``<public_url>data/<id>/<path>``).

GET (one Range, conditional requests, ``?download``), HEAD, PUT (streamed into an atomic
write), DELETE, and WebDAV's OPTIONS, PROPFIND (Depth 0 and 1), PROPPATCH (the modification
time only), MKCOL, MOVE and COPY.
HEAD and GET answer ``Want-Repr-Digest`` (RFC 9530); PUT checks a ``Repr-Digest`` or
``Content-Digest`` it is sent. Routes parse, call `data_access`, and shape the answer;
errors are short JSON documents (``code``, ``message``), never tracebacks.
"""

from __future__ import annotations

import contextlib
import functools
import math
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import quote, unquote_to_bytes, urlsplit

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from isthmus.connect import audit, rfc4918
from isthmus.connect.data_access import DATA_PREFIX, DataAccess, DataSession, Method
from isthmus.connect.rfc9110 import (
    UnsatisfiableRangeError,
    Validators,
    attachment,
    byte_range,
    content_range,
    precondition_status,
)
from isthmus.connect.streaming import FileResponse, receive_into
from isthmus.core import work
from isthmus.core.errors import APIError, bad_request
from isthmus.core.http import bearer_token, read_body
from isthmus.storage import paths
from isthmus.storage.connector import Entry, ReadStream, WriteOptions
from isthmus.storage.digests import format_digest_field, parse_digest_field, parse_want_digest
from isthmus.storage.errors import AlreadyExists, StorageError

T = TypeVar("T")
# Files and WebDAV, not a JSON API: nothing here belongs in the OpenAPI document (which
# has no words for PROPFIND or MOVE anyway).
router = APIRouter(prefix=DATA_PREFIX, include_in_schema=False)

ALLOW = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE"
ALLOW_ON_DIRECTORIES = "OPTIONS, PROPFIND, PROPPATCH, DELETE, COPY, MOVE"
_CODES = {302: "sign_in_required", 400: "bad_request", 401: "not_authorized",
          403: "permission_denied", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 412: "precondition_failed", 413: "payload_too_large",
          415: "unsupported_media_type", 416: "range_not_satisfiable",
          422: "unprocessable_entity", 501: "not_implemented", 503: "unavailable",
          507: "insufficient_storage"}
# A collection's files are served from the server's own origin: never let a browser run
# or sniff them as pages of that origin.
_SANDBOX = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}


# --- errors ---------------------------------------------------------------------------------


def error_for_status(status: int, message: str) -> APIError:
    return APIError(status, _CODES.get(status, "error"), message)


def render_error(error: APIError) -> Response:
    code = _CODES.get(error.status, "error") if error.code.isupper() else error.code
    body: dict[str, Any] = {"code": code, "message": error.message}
    if error.extra.get("detail") is not None:
        body["detail"] = error.extra["detail"]
    if error.extra.get("authorization_parameters") is not None:
        # The GCS envelope's GARE form (result#1.1.0): how to log in to get through.
        body.update(DATA_TYPE="result#1.1.0", http_response_code=error.status,
                    authorization_parameters=error.extra["authorization_parameters"])
    return JSONResponse(body, status_code=error.status, headers=error.headers)


def _from_storage(error: StorageError) -> APIError:
    # Storage's defaults: 4xx for what the client asked, 503/507 for storage trouble.
    status = error.http_status if error.http_status in _CODES else 503
    return error_for_status(status, error.message)


async def _io(call: Callable[[], T]) -> T:
    """Blocking storage work in a worker thread, its errors as HTTP errors."""
    try:
        return await anyio.to_thread.run_sync(call)
    except StorageError as error:
        raise _from_storage(error) from None


# --- the request's collection and path ------------------------------------------------------


def _data(request: Request) -> DataAccess:
    data: DataAccess = request.app.state.data
    return data


def parse_location(raw_path: bytes) -> tuple[uuid.UUID, str]:
    """``/data/<id>/a%20b`` -> (id, ``/a b``). The path is decoded here, strictly as UTF-8,
    from the raw bytes the client sent; `DataSession.path` makes it canonical."""
    prefix = DATA_PREFIX.encode() + b"/"
    if not raw_path.startswith(prefix):
        raise error_for_status(404, "Not found")
    collection_text, _, rest = raw_path[len(prefix):].partition(b"/")
    try:
        text = collection_text.decode("ascii")
        collection_id = uuid.UUID(text)
    except (UnicodeDecodeError, ValueError):
        raise error_for_status(404, "No such collection") from None
    if str(collection_id) != text.lower():
        raise error_for_status(404, "No such collection")
    try:
        path = unquote_to_bytes(rest).decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("Paths must be UTF-8") from None
    return collection_id, "/" + path


def _location(request: Request) -> tuple[uuid.UUID, str]:
    raw = request.scope.get("raw_path") or quote(request.url.path).encode("ascii")
    return parse_location(raw.split(b"?", 1)[0])


def _destination(request: Request, data: DataAccess, collection_id: uuid.UUID) -> str:
    """The Destination of a MOVE or COPY, as a path in the request's collection."""
    value = request.headers.get("destination")
    if not value:
        raise bad_request("MOVE and COPY need a Destination header")
    url = urlsplit(value)
    public = urlsplit(data.public_url)
    if url.netloc and url.netloc not in {request.headers.get("host"), public.netloc}:
        raise error_for_status(403, "The Destination must be on this server")
    prefix = public.path.rstrip("/")
    path = url.path[len(prefix):] if prefix and url.path.startswith(prefix + "/") else url.path
    try:
        target, destination = parse_location(path.encode("latin-1"))
    except APIError as error:
        raise bad_request(f"The Destination is not a file URL of this server: "
                          f"{error.message}") from None
    if target != collection_id:
        raise error_for_status(403, "The Destination must be in the same collection")
    return destination


async def _open(request: Request, methods: list[Method], *,
                redirect: bool = False) -> tuple[DataSession, str]:
    collection_id, requested = _location(request)
    data = _data(request)
    token = bearer_token(request)
    try:
        session = await work.in_thread(
            request, lambda: data.open(collection_id, token, methods, redirect=redirect,
                                       path=requested))
    except StorageError as error:  # the mapped account, the collection root
        raise _from_storage(error) from None
    audit.note_caller(request.scope, session.caller)
    try:
        return session, _canonical(session, requested)
    except BaseException:
        await _release(session)
        raise


async def _release(session: DataSession) -> None:
    """Give the session's connector back (in a thread: an evicted one may stop a process),
    also when the request is being cancelled."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(session.close)


@contextlib.asynccontextmanager
async def _opened(request: Request, methods: list[Method]) -> AsyncIterator[
        tuple[DataSession, str]]:
    session, path = await _open(request, methods)
    try:
        yield session, path
    finally:
        await _release(session)


def _canonical(session: DataSession, requested: str) -> str:
    try:
        return session.path(requested)
    except StorageError as error:  # .. above the root, NUL bytes, no home
        raise _from_storage(error) from None


def _href(base: str, path: str, entry: Entry) -> str:
    href = base + quote(path)
    return href + "/" if entry.is_dir() and not href.endswith("/") else href


# --- digests ----------------------------------------------------------------------------


def _wanted_digests(request: Request) -> list[str]:
    value = request.headers.get("want-repr-digest")
    if not value:
        return []
    try:
        return parse_want_digest(value)
    except StorageError as error:
        raise bad_request(f"Want-Repr-Digest: {error.message}") from None


def _sent_digests(request: Request) -> dict[str, bytes]:
    """What a PUT's Repr-Digest and Content-Digest say the content is (the same thing for a
    whole, uncoded body); contradictions are refused."""
    found: dict[str, bytes] = {}
    for header in ("repr-digest", "content-digest"):
        value = request.headers.get(header)
        if not value:
            continue
        try:
            parsed = parse_digest_field(value)
        except StorageError as error:
            raise bad_request(f"{header}: {error.message}") from None
        for algorithm, digest in parsed.items():
            if found.setdefault(algorithm, digest) != digest:
                raise bad_request("Repr-Digest and Content-Digest disagree")
    return found


def _sent_mtime(request: Request) -> float | None:
    """ownCloud's ``X-OC-Mtime`` on a PUT: the modification time (seconds since the epoch)
    the file appears with, saving the PROPPATCH after it (rclone's owncloud and nextcloud
    vendors send it; so does Isthmus's WebDAV connector)."""
    value = request.headers.get("x-oc-mtime")
    if value is None:
        return None
    try:
        mtime = float(value)
    except ValueError:
        mtime = math.nan
    if not math.isfinite(mtime) or mtime < 0:
        raise bad_request("X-OC-Mtime must be seconds since the epoch")
    return mtime


# --- OPTIONS ------------------------------------------------------------------------------


@router.options("/{rest:path}")
async def options(request: Request) -> Response:
    """WebDAV discovery: no token needed, as clients probe before they authenticate."""
    collection_id, _ = _location(request)
    data = _data(request)
    await work.in_thread(request, lambda: data.target(collection_id))
    return Response(status_code=200, headers={"DAV": "1", "Allow": ALLOW,
                                              "Accept-Ranges": "bytes", "MS-Author-Via": "DAV"})


# --- GET and HEAD ---------------------------------------------------------------------------


@router.api_route("/{rest:path}", methods=["GET", "HEAD"])
async def read(request: Request) -> Response:
    session, path = await _open(request, [Method.GET], redirect=True)
    try:
        stream, status, headers = await _read(request, session, path)
    except BaseException:
        await _release(session)
        raise
    if stream is None:
        await _release(session)
        return Response(status_code=status, headers=headers)

    def release() -> None:  # the response owns the file and the session from here on
        try:
            stream.close()
        finally:
            session.close()

    return FileResponse(stream, release, status, headers)


async def _read(request: Request, session: DataSession,
                path: str) -> tuple[ReadStream | None, int, dict[str, str]]:
    """The open file (None for HEAD and 304), the status and the headers of a GET/HEAD."""
    wanted = _wanted_digests(request)
    # The file may change while we look at it: what is served must match its headers.
    for _ in range(3):
        entry = await _io(lambda: session.stat(path))
        if entry.is_dir():
            raise APIError(405, "method_not_allowed", f"'{path}' is a folder: list it with "
                           "PROPFIND", headers={"Allow": ALLOW_ON_DIRECTORIES})
        validators = Validators.of(entry)
        status = precondition_status(request.method, request.headers, validators)
        if status == 304:
            return None, 304, validators.headers()
        if status is not None:
            raise error_for_status(status, "A precondition of the request does not hold")
        try:
            chosen = byte_range(request.headers.get("range"), entry.size,
                                if_range=request.headers.get("if-range"), current=validators)
        except UnsatisfiableRangeError:
            raise APIError(416, "range_not_satisfiable", "The range is beyond the end of the "
                           "file", headers={"Content-Range": f"bytes */{entry.size}"}) from None
        first, last = chosen if chosen is not None else (0, entry.size - 1)
        headers = {**validators.headers(), **_SANDBOX, "Accept-Ranges": "bytes",
                   "Content-Type": rfc4918.content_type(entry.name),
                   "Content-Length": str(last - first + 1)}
        if chosen is not None:
            headers["Content-Range"] = content_range(first, last, entry.size)
        if "download" in request.query_params:
            headers["Content-Disposition"] = attachment(entry.name)
        if wanted:
            digests = await _io(lambda: session.digests(path, wanted))
            headers["Repr-Digest"] = format_digest_field(digests)
        status = 206 if chosen else 200
        if request.method == "HEAD":
            return None, status, headers
        stream = await _io(functools.partial(session.open_read, path, first, last - first + 1))
        if Validators.of(stream.entry) == validators:
            return stream, status, headers
        await _io(stream.close)
    raise error_for_status(503, "The file keeps changing; try again")


# --- PUT ----------------------------------------------------------------------------------


@router.put("/{rest:path}")
async def write(request: Request) -> Response:
    if "content-range" in request.headers:
        raise bad_request("PUT replaces a whole file; Content-Range is not accepted")
    async with _opened(request, [Method.PUT]) as (session, path):
        try:
            return await _write(request, session, path)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it


async def _write(request: Request, session: DataSession, path: str) -> Response:
    wanted = _wanted_digests(request)
    length = request.headers.get("content-length")
    existing = await _io(lambda: session.find(path))
    status = precondition_status("PUT", request.headers,
                                 Validators.of(existing) if existing else None)
    if status is not None:
        raise error_for_status(412, "A precondition of the request does not hold")
    mtime = _sent_mtime(request)
    options = WriteOptions(
        expected_size=int(length) if length and length.isdigit() else None,
        expected_digests=_sent_digests(request) or None, algorithms=wanted, mtime=mtime,
        # If-None-Match: * asks for a new file: refused atomically if one appears meanwhile.
        overwrite=request.headers.get("if-none-match", "").strip() != "*",
    )
    writer = await _io(lambda: session.begin_write(path, options))
    try:
        try:
            await receive_into(request.stream(), writer)
        except StorageError as error:
            raise _from_storage(error) from None
        result = await _io(writer.commit)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(writer.abort)  # a no-op once committed
    written = await _io(lambda: session.stat(path))
    headers = Validators.of(written).headers()
    if mtime is not None:
        headers["X-OC-MTime"] = "accepted"  # as ownCloud answers: no PROPPATCH is needed
    if wanted:
        headers["Repr-Digest"] = format_digest_field(
            {algorithm: result.digests[algorithm] for algorithm in wanted})
    return Response(status_code=204 if existing else 201, headers=headers)


# --- DELETE and MKCOL -----------------------------------------------------------------------


@router.delete("/{rest:path}")
async def delete(request: Request) -> Response:
    async with _opened(request, [Method.DELETE]) as (session, path):
        entry = await _io(lambda: session.stat(path))
        if precondition_status("DELETE", request.headers, Validators.of(entry)) is not None:
            raise error_for_status(412, "A precondition of the request does not hold")
        await _io(lambda: session.delete(path))
    return Response(status_code=204)


@router.api_route("/{rest:path}", methods=["MKCOL"])
async def make_collection(request: Request) -> Response:
    if await read_body(request, 1024):
        raise error_for_status(415, "MKCOL takes no body")
    async with _opened(request, [Method.PUT]) as (session, path):
        def make() -> None:
            try:
                session.mkdir(path)
            except AlreadyExists:
                raise APIError(405, "method_not_allowed", f"'{path}' already exists",
                               headers={"Allow": ALLOW_ON_DIRECTORIES}) from None

        await _io(make)
    return Response(status_code=201)


# --- MOVE and COPY --------------------------------------------------------------------------


@router.api_route("/{rest:path}", methods=["MOVE", "COPY"])
async def move_or_copy(request: Request) -> Response:
    moving = request.method == "MOVE"
    overwrite = rfc4918.parse_overwrite(request.headers.get("overwrite"))
    depth = rfc4918.parse_depth(request.headers.get("depth"))
    if depth is rfc4918.Depth.ONE or (moving and depth is not rfc4918.Depth.INFINITY):
        raise bad_request(f"{request.method} takes Depth: infinity"
                          + ("" if moving else " or 0"))
    methods = [Method.PUT, Method.DELETE] if moving else [Method.GET, Method.PUT]
    async with _opened(request, methods) as (session, source):
        collection_id, _ = _location(request)
        destination = _canonical(session, _destination(request, _data(request), collection_id))
        audit.note_caller(request.scope, None, destination)
        source_entry = await _io(lambda: session.stat(source))
        if precondition_status(request.method, request.headers,
                               Validators.of(source_entry)) is not None:
            raise error_for_status(412, "A precondition of the request does not hold")
        if moving:
            created = await _io(lambda: session.move(source, destination,
                                                     overwrite=overwrite))
        else:
            recursive = depth is rfc4918.Depth.INFINITY
            created = await _io(lambda: session.copy(source, destination, overwrite=overwrite,
                                                     recursive=recursive))
    return Response(status_code=201 if created else 204)


# --- PROPFIND -------------------------------------------------------------------------------


@router.api_route("/{rest:path}", methods=["PROPFIND"])
async def propfind(request: Request) -> Response:
    collection_id, requested = _location(request)
    base = _data(request).href(collection_id)
    async with _opened(request, [Method.GET]) as (session, path):
        # Hrefs keep the path as the client wrote it (with its ~): clients match them
        # against the URL they asked for.
        shown = paths.normalize(requested)
        depth = rfc4918.parse_depth(request.headers.get("depth"))
        if depth is rfc4918.Depth.INFINITY:
            return Response(rfc4918.finite_depth_error(), status_code=403,
                            media_type=rfc4918.MULTISTATUS_TYPE)
        wanted = rfc4918.parse_propfind(await read_body(request, rfc4918.MAX_PROPFIND_BYTES))
        entry = await _io(lambda: session.stat(path))
        resources = [rfc4918.Resource(_href(base, shown, entry), entry.name, entry)]
        if entry.is_dir() and depth is rfc4918.Depth.ONE:
            children = await _io(lambda: session.list(path))
            resources.extend(
                rfc4918.Resource(_href(base, paths.join(shown, found.name), found), found.name,
                                 found) for _, found in children)
    body = await anyio.to_thread.run_sync(lambda: rfc4918.multistatus(resources, wanted))
    return Response(body, status_code=207, media_type=rfc4918.MULTISTATUS_TYPE)


# --- PROPPATCH ------------------------------------------------------------------------------

# ownCloud's and Nextcloud's way of setting a modification time, which rclone and Isthmus's
# WebDAV connector use: DAV:lastmodified, in seconds since the epoch.
_SETTABLE = (rfc4918.DAV, "lastmodified")


@router.api_route("/{rest:path}", methods=["PROPPATCH"])
async def proppatch(request: Request) -> Response:
    """Only the modification time may be set; anything else fails the whole request, as
    PROPPATCH is all or nothing (RFC 4918 §9.2)."""
    update = rfc4918.parse_proppatch(await read_body(request, rfc4918.MAX_PROPFIND_BYTES))
    refused = [(namespace, local) for namespace, local, _ in update.changes
               if (namespace, local) != _SETTABLE]
    mtimes = [text for namespace, local, text in update.changes
              if (namespace, local) == _SETTABLE]
    mtime: float | None = None
    if mtimes and not refused:
        try:
            mtime = float(mtimes[-1] or "")
        except ValueError:
            raise bad_request("DAV:lastmodified must be seconds since the epoch") from None
    collection_id, requested = _location(request)
    href = _data(request).href(collection_id) + quote(paths.normalize(requested))
    async with _opened(request, [Method.PUT]) as (session, path):
        if mtime is not None:
            when = mtime
            await _io(lambda: session.set_mtime(path, when))
        else:
            await _io(lambda: session.stat(path))  # a missing file is 404, not 207
    statuses = [(namespace, local, "200 OK" if mtime is not None else
                 "403 Forbidden" if (namespace, local) != _SETTABLE else "424 Failed Dependency")
                for namespace, local, _ in update.changes]
    body = rfc4918.proppatch_multistatus(href, statuses)
    return Response(body, status_code=207, media_type=rfc4918.MULTISTATUS_TYPE)
