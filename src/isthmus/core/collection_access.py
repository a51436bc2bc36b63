"""How Transfer reaches a collection's files for a user: one interface, Connect behind it.

Connect implements `CollectionAccess` (in process for the all-in-one and a node's own
collections; over a node's HTTPS/WebDAV data interface for collections served elsewhere);
Transfer uses it for file operations (`operation_ls`, mkdir, rename, ...) and for the
task workers that move and delete data. The session it returns is confined to what the
caller may reach on that collection after identity mapping, path restrictions, roles and
(on guest collections) access rules: the same checks as HTTPS access, in one place.

Transfer authenticates as the user with a token for the collection's ``data_access``
scope obtained by the dependent-token grant (its own scope depends on it); guest
collections and high-assurance mapped collections ask no ``data_access`` consent, so there
Transfer's own token speaks for the user. `open` raises `APIError`s the caller renders:
404 for an unknown collection, 403 for what the user may not do, and
`ConsentRequiredError` when the user must first consent to a scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Protocol, Self

from isthmus.core.errors import APIError
from isthmus.core.registrations import collection_scope
from isthmus.storage.connector import (
    AtomicWriter,
    CommitOutcome,
    Entry,
    ReadStream,
    WriteOptions,
)

TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"
TRANSFER_RESOURCE_SERVER = "transfer.api.globus.org"
CONSENT_MESSAGE = "Missing required data_access consent"


def data_access_dependency(collection_id: uuid.UUID) -> str:
    """Transfer's scope with the collection's ``data_access`` under it: what the user must
    consent to (``globus session consent``, `UserApp.add_app_data_access_scope`)."""
    return f"{TRANSFER_ALL}[*{collection_scope(collection_id, 'data_access')}]"


class ConsentRequiredError(APIError):
    """The user has not consented to a scope Transfer needs for this collection.

    Rendered by Transfer as its ``ConsentRequired`` error, whose ``required_scopes`` (and
    ``authorization_parameters``) globus-cli and the SDK turn into a ``session consent``.
    The message is the one globus-cli recognises as a data_access consent.
    """

    def __init__(self, collection_id: uuid.UUID, required_scopes: Iterable[str]) -> None:
        scopes = list(required_scopes)
        super().__init__(
            403, "ConsentRequired", CONSENT_MESSAGE,
            extra={"required_scopes": scopes,
                   "authorization_parameters": {"session_message": CONSENT_MESSAGE,
                                                "required_scopes": scopes}})
        self.collection_id = collection_id
        self.required_scopes = scopes


class CollectionSession(Protocol):
    """One user on one collection. Paths are collection paths (``/a/b``, ``~/x``);
    refusals are `APIError`s, storage failures `isthmus.storage.errors.StorageError`s."""

    home: str | None  # the user's home as a collection path, when the collection has one
    # Whether many writers may be open at once until `commit_all` (local files: yes).
    holds_many_writers: bool

    def path(self, requested: str) -> str:
        """``requested`` made canonical, a leading ``~`` expanded."""

    def stat(self, path: str) -> Entry: ...

    def find(self, path: str) -> Entry | None: ...

    def list(self, path: str, *, links: bool = False) -> list[tuple[str, Entry]]:
        """(collection path, entry) of each child the user may see: files and directories,
        symlinks as what they reach; with ``links``, symlinks as such (dangling ones too)."""

    def open_read(self, path: str, offset: int = 0, length: int | None = None) -> ReadStream: ...

    def digests(self, path: str, algorithms: Iterable[str]) -> dict[str, bytes]: ...

    def begin_write(self, path: str, options: WriteOptions) -> AtomicWriter:
        """A writer whose file appears at ``path`` only when committed."""

    def commit_all(self, writers: Sequence[AtomicWriter]) -> Sequence[CommitOutcome]:
        """Commit writers begun by `begin_write`, durably together; each one's outcome."""

    def mkdir(self, path: str) -> None: ...

    def symlink(self, path: str, target: str) -> None:
        """A symlink at ``path`` to the collection path ``target``."""

    def delete(self, path: str) -> None:
        """Remove a file, a link, or a directory with everything in it."""

    def move(self, source: str, destination: str, *, overwrite: bool) -> bool:
        """Rename within the collection; True when ``destination`` was new."""

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class CollectionAccess(Protocol):
    def open(self, collection_id: uuid.UUID, token: str) -> CollectionSession:
        """A session for the user ``token`` speaks for: a ``data_access`` token for the
        collection (mapped, not high assurance), else the user's Transfer token."""
