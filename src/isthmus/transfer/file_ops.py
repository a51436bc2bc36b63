"""File operations on a collection (``/operation/endpoint/<id>/...``): ls, stat, mkdir,
rename, symlink, answered with Transfer's documents and error codes.

Each function takes a `CollectionSession` already confined to what the caller may reach
(identity mapping, path restrictions, access rules) and the request's parameters; storage
and access refusals become Transfer's codes in `failure` (``ExternalError.*`` only for what
the storage failed to do, never for a client's mistake: the SDK retries other 5xx).
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from isthmus.core.collection_access import CollectionSession, ConsentRequiredError
from isthmus.core.errors import APIError
from isthmus.storage import paths
from isthmus.storage.connector import Entry, EntryType
from isthmus.storage.errors import (
    AlreadyExists,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotFound,
    NotSupported,
    PathEscape,
    PermissionDenied,
    QuotaExceeded,
    StorageError,
)
from isthmus.transfer import filters

Document = dict[str, Any]
T = TypeVar("T")
HOME = "/~/"
MAX_LS_LIMIT = 100_000
FILE_FIELDS = ("name", "type", "size", "last_modified", "permissions", "user", "group",
               "link_target")


def bad_request(message: str) -> APIError:
    return APIError(400, "ClientError.BadRequest", message)


# --- paths -----------------------------------------------------------------------------------


def check_path(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request(f"'{field}' must be a non-empty path")
    if "\r" in value or "\n" in value or "\x00" in value:
        raise bad_request(f"'{field}' may not contain line breaks or NUL")
    if len(value) > 4096:
        raise bad_request(f"'{field}' is too long")
    return value


def collection_path(session: CollectionSession, requested: str) -> str:
    """A client's path on the collection: ``~``, ``~/x`` and ``/~/x`` are in the user's home,
    which is the root where the collection gives them none (a guest collection)."""
    stripped = requested.lstrip("/")
    if stripped == "~" or stripped.startswith("~/"):
        if session.home is None:
            return paths.normalize(stripped[1:])
        return session.path(stripped)
    return session.path(requested)


def echoed(requested: str) -> str:
    """The listed directory as the client named it (``~`` as ``/~``), ending in ``/``: the CLI
    and SDK build children's paths as ``path + name``."""
    shown = requested if requested.startswith("/") else "/" + requested
    return shown if shown.endswith("/") else shown + "/"


# --- errors ----------------------------------------------------------------------------------


def failure(error: Exception, operation: str, path: str) -> APIError:
    """Transfer's error for what an operation named ``operation`` (``DirListing``, ``Mkdir``,
    ...) met at ``path``."""
    if isinstance(error, ConsentRequiredError):
        return error
    if isinstance(error, APIError):
        return _from_access(error, operation)
    assert isinstance(error, StorageError)
    external = f"ExternalError.{operation}Failed"
    match error:
        case NotFound():
            if operation == "Stat":
                return APIError(404, "NotFound", f"Nothing found at '{path}'")
            return APIError(404, "ClientError.NotFound", f"'{path}' not found")
        case NotADirectory():
            return APIError(502, f"{external}.NotDirectory", f"'{path}' is not a directory")
        case IsADirectory():
            return APIError(502, f"{external}.IsDirectory", f"'{path}' is a directory")
        case AlreadyExists():
            return APIError(502, f"{external}.Exists", error.message)
        case PathEscape():
            return APIError(403, "EndpointPermissionDenied.PathEscape",
                            f"'{path}' leads outside the collection")
        case PermissionDenied():
            return APIError(403, "EndpointPermissionDenied", error.message)
        case InvalidPath():
            return bad_request(error.message)
        case NotSupported():
            return APIError(400, "NotSupported", error.message)
        case QuotaExceeded():
            return APIError(502, f"{external}.QuotaExceeded", error.message)
    return APIError(502, external, error.message)


# Connect's refusals (its lower-case codes) in Transfer's words; its 409 is WebDAV's
# "the parent folder does not exist".
_ACCESS_CODES = {401: (401, "AuthenticationFailed"), 403: (403, "EndpointPermissionDenied"),
                 404: (404, "EndpointNotFound"), 409: (404, "ClientError.NotFound")}


def _from_access(error: APIError, operation: str) -> APIError:
    if error.status in _ACCESS_CODES:
        status, code = _ACCESS_CODES[error.status]
        return APIError(status, code, error.message)
    if error.status == 412:  # a name taken meanwhile
        return APIError(502, f"ExternalError.{operation}Failed.Exists", error.message)
    if error.status >= 500:
        return APIError(502, f"ExternalError.{operation}Failed.Unavailable", error.message)
    return APIError(error.status, "ClientError", error.message)


def attempt(operation: str, path: str, work: Callable[[], T]) -> T:
    try:
        return work()
    except (StorageError, APIError) as error:
        raise failure(error, operation, path) from None


# --- documents -------------------------------------------------------------------------------


def _timestamp(mtime: float) -> str:
    # Files use a space between date and time (unlike tasks).
    return datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def _mode(entry: Entry) -> str | None:
    return None if entry.permissions is None else f"{entry.permissions & 0o7777:04o}"


def file_document(name: str, entry: Entry) -> Document:
    """A ``file`` document: a working link as what it reaches, ``link_*`` describing the link
    itself; a dangling one as ``invalid_symlink``."""
    link = entry if entry.type is EntryType.SYMLINK else None
    shown = entry.target if link is not None and entry.target is not None else entry
    kind = "invalid_symlink" if shown.type is EntryType.SYMLINK else shown.type.value
    return {
        "DATA_TYPE": "file", "name": name, "type": kind, "size": shown.size,
        "last_modified": _timestamp(shown.mtime), "permissions": _mode(shown),
        "user": shown.user, "group": shown.group,
        "link_target": link.link_target if link else None,
        "link_size": link.size if link else None,
        "link_last_modified": _timestamp(link.mtime) if link else None,
        "link_user": link.user if link else None,
        "link_group": link.group if link else None,
    }


# --- ls filters and ordering -----------------------------------------------------------------

Predicate = Callable[[Document], bool]


def _text_clause(field: str, value: str) -> Predicate:
    def one(term: filters.Term) -> Predicate:
        if term.operator.endswith("~"):
            pattern = term.value.lower()
            test: Predicate = lambda doc: fnmatch.fnmatchcase(  # noqa: E731
                str(doc[field] or "").lower(), pattern)
        else:
            test = lambda doc: doc[field] == term.value  # noqa: E731
        return (lambda doc: not test(doc)) if term.negated else test

    tests = [one(term) for term in filters.parse_terms(value)]
    return lambda doc: any(test(doc) for test in tests)


_COMPARISONS: Sequence[tuple[str, Callable[[int, int], bool]]] = (
    (">=", lambda a, b: a >= b), ("<=", lambda a, b: a <= b), ("!=", lambda a, b: a != b),
    (">", lambda a, b: a > b), ("<", lambda a, b: a < b), ("=", lambda a, b: a == b),
)


def _size_clause(value: str) -> Predicate:
    tests = []
    for option in value.split(","):
        operator, compare = next(((op, f) for op, f in _COMPARISONS if option.startswith(op)),
                                 ("", _COMPARISONS[-1][1]))
        try:
            bound = int(option[len(operator):])
        except ValueError:
            raise bad_request(f"Invalid size filter '{option}'") from None
        tests.append((compare, bound))
    return lambda doc: any(compare(doc["size"], bound) for compare, bound in tests)


def _date_clause(value: str) -> Predicate:
    start_text, _, end_text = value.partition(",")
    start, end = (filters.parse_datetime(text, "last_modified") if text.strip() else None
                  for text in (start_text, end_text))

    def test(doc: Document) -> bool:
        moment = datetime.fromisoformat(doc["last_modified"])
        return (start is None or moment >= start) and (end is None or moment <= end)

    return test


def _clause(text: str) -> Predicate:
    field, colon, value = text.partition(":")
    if not colon or field not in FILE_FIELDS:
        raise bad_request(f"Invalid filter '{text}': fields are {', '.join(FILE_FIELDS)}")
    if field == "size":
        return _size_clause(value)
    if field == "last_modified":
        return _date_clause(value)
    return _text_clause(field, value)


def parse_filters(values: Sequence[str]) -> Predicate | None:
    """Repeated ``filter`` parameters are ORed; a value's ``/``-joined clauses ANDed."""
    alternatives = [[_clause(text) for text in value.split("/") if text]
                    for value in values if value]
    if not alternatives:
        return None
    return lambda doc: any(all(clause(doc) for clause in clauses) for clauses in alternatives)


def parse_orderby(value: str | None) -> list[tuple[str, bool]]:
    """(field, descending) pairs; by name when none is given."""
    return filters.parse_orderby(value, set(FILE_FIELDS)) or [("name", False)]


def _text_key(doc: Document, field: str) -> tuple[bool, str]:
    return doc[field] is not None, str(doc[field] or "")


def _sorted(documents: list[Document], order: list[tuple[str, bool]]) -> list[Document]:
    # Stable sorts from the last key to the first; None sorts before any value.
    for field, descending in reversed(order):
        if field == "size":
            documents.sort(key=lambda doc: doc["size"], reverse=descending)
        else:
            documents.sort(key=lambda doc: _text_key(doc, field), reverse=descending)
    return documents


def _flag(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "t", "yes"):
        return True
    if lowered in ("0", "false", "f", "no"):
        return False
    raise bad_request(f"'{name}' must be 0 or 1")


def _count(value: str | None, name: str, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"'{name}' must be an integer") from None
    if number < 0:
        raise bad_request(f"'{name}' may not be negative")
    return min(number, maximum)


class ListQuery:
    """An ``ls`` request's parameters, checked before the collection is opened."""

    def __init__(self, params: Mapping[str, str], filters: Sequence[str]) -> None:
        self.path = check_path(params.get("path") or HOME, "path")
        self.show_hidden = _flag(params.get("show_hidden"), "show_hidden", True)
        self.order = parse_orderby(params.get("orderby"))
        self.matches = parse_filters(filters)
        self.limit = _count(params.get("limit"), "limit", MAX_LS_LIMIT, MAX_LS_LIMIT)
        self.offset = _count(params.get("offset"), "offset", 0, 2**31)


# --- operations ------------------------------------------------------------------------------


def ls(session: CollectionSession, endpoint_id: str, query: ListQuery) -> Document:
    def run() -> Document:
        directory = collection_path(session, query.path)
        entries = session.list(directory, links=True)
        documents = [file_document(posixpath.basename(child), entry)
                     for child, entry in entries
                     if query.show_hidden or not posixpath.basename(child).startswith(".")]
        if query.matches is not None:
            documents = [doc for doc in documents if query.matches(doc)]
        documents = _sorted(documents, query.order)
        page = documents[query.offset:query.offset + query.limit]
        return {"DATA_TYPE": "file_list", "endpoint": endpoint_id, "path": echoed(query.path),
                "absolute_path": directory if directory.endswith("/") else directory + "/",
                "rename_supported": True, "symlink_supported": True,
                "length": len(page), "total": len(documents), "DATA": page}

    try:
        return run()
    except NotFound:
        raise APIError(404, "ClientError.NotFound",
                       f"Directory '{query.path}' not found") from None
    except (StorageError, APIError) as error:
        raise failure(error, "DirListing", query.path) from None


def stat(session: CollectionSession, path: str) -> Document:
    def run() -> Document:
        entry = session.stat(collection_path(session, path))
        return file_document(entry.name, entry)

    return attempt("Stat", path, run)


def _input(body: Mapping[str, Any], data_type: str) -> None:
    given = body.get("DATA_TYPE")
    if given is not None and given != data_type:
        raise bad_request(f"DATA_TYPE must be '{data_type}'")


def parse_mkdir(body: Mapping[str, Any]) -> str:
    _input(body, "mkdir")
    return check_path(body.get("path"), "path")


def mkdir(session: CollectionSession, path: str) -> None:
    attempt("Mkdir", path, lambda: session.mkdir(collection_path(session, path)))


def parse_rename(body: Mapping[str, Any]) -> tuple[str, str]:
    _input(body, "rename")
    return check_path(body.get("old_path"), "old_path"), check_path(body.get("new_path"),
                                                                    "new_path")


def rename(session: CollectionSession, old_path: str, new_path: str) -> None:
    def run() -> None:
        source = collection_path(session, old_path)
        destination = collection_path(session, new_path)
        if source != destination and session.find(destination) is not None:
            raise AlreadyExists(f"'{new_path}' already exists", new_path)
        session.move(source, destination, overwrite=False)

    attempt("Rename", old_path, run)


def parse_symlink(body: Mapping[str, Any]) -> tuple[str, str]:
    _input(body, "symlink")
    return check_path(body.get("symlink_target"), "symlink_target"), check_path(
        body.get("path"), "path")


def symlink(session: CollectionSession, target: str, path: str) -> None:
    def run() -> None:
        session.symlink(collection_path(session, path), collection_path(session, target))

    attempt("Symlink", path, run)
