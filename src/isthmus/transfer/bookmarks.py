"""Bookmarks: named locations (a collection and a folder) private to the user who made them.

Names are unique per user, case-sensitive, at most 128 characters, without leading or
trailing whitespace; paths are folders ending in ``/``. A bookmark names an endpoint or
collection the user may see when it is made; one that later disappears stays listed
(globus-cli shows it as a deleted endpoint).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.core.errors import APIError
from isthmus.transfer import registry
from isthmus.transfer.models import Bookmark
from isthmus.transfer.registry import Caller

Document = dict[str, Any]
MAX_NAME = 128
MAX_PATH = 2048


def bad_request(message: str) -> APIError:
    return APIError(400, "ClientError.BadRequest", message)


def not_found(bookmark_id: str) -> APIError:
    return APIError(404, "BookmarkNotFound", f"No bookmark found with id '{bookmark_id}'")


def document(bookmark: Bookmark) -> Document:
    return {"DATA_TYPE": "bookmark", "id": str(bookmark.id), "name": bookmark.name,
            "endpoint_id": str(bookmark.endpoint_id), "path": bookmark.path,
            "pinned": bookmark.pinned}


def _check_type(body: Mapping[str, Any]) -> None:
    if body.get("DATA_TYPE", "bookmark") != "bookmark":
        raise bad_request("DATA_TYPE must be 'bookmark'")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request("'name' must be a non-empty string")
    if len(value) > MAX_NAME:
        raise bad_request(f"'name' may be at most {MAX_NAME} characters")
    if value != value.strip():
        raise bad_request("'name' may not begin or end with whitespace")
    if not value.isprintable():
        raise bad_request("'name' may not contain control characters")
    return value


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request("'path' must be a non-empty string")
    if len(value) > MAX_PATH or not value.isprintable():
        raise bad_request("'path' is too long or contains control characters")
    if not value.endswith("/"):
        raise bad_request("'path' must be a directory path ending in '/'")
    return value


def _pinned(value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_request("'pinned' must be true or false")
    return value


def _owned(session: Session, caller: Caller) -> list[Bookmark]:
    return list(session.scalars(
        select(Bookmark).where(Bookmark.owner_id.in_(caller.identities))
        .order_by(Bookmark.created, Bookmark.id)))


def _require(session: Session, caller: Caller, bookmark_id: str) -> Bookmark:
    try:
        key = uuid.UUID(bookmark_id)
    except ValueError:
        raise not_found(bookmark_id) from None
    bookmark = session.get(Bookmark, key)
    if bookmark is None or bookmark.owner_id not in caller.identities:
        raise not_found(bookmark_id)  # another user's is not there for the caller
    return bookmark


def _name_free(session: Session, caller: Caller, name: str,
               keep: uuid.UUID | None = None) -> None:
    taken = session.scalar(select(Bookmark.id).where(
        Bookmark.owner_id.in_(caller.identities), Bookmark.name == name))
    if taken is not None and taken != keep:
        raise APIError(409, "Conflict", f"A bookmark named '{name}' already exists")


def list_bookmarks(session: Session, caller: Caller) -> Document:
    return {"DATA_TYPE": "bookmark_list",
            "DATA": [document(bookmark) for bookmark in _owned(session, caller)]}


def create(session: Session, caller: Caller, body: Mapping[str, Any]) -> Document:
    _check_type(body)
    name = _name(body.get("name"))
    path = _path(body.get("path"))
    pinned = _pinned(body.get("pinned", False))
    endpoint_id = body.get("endpoint_id")
    if not isinstance(endpoint_id, str):
        raise bad_request("'endpoint_id' must be an endpoint or collection id")
    entity = registry.require_visible(session, caller, endpoint_id)
    _name_free(session, caller, name)
    bookmark = Bookmark(id=uuid.uuid4(), owner_id=caller.identity_id, name=name,
                        endpoint_id=entity.id, path=path, pinned=pinned)
    session.add(bookmark)
    session.flush()
    return document(bookmark)


def get(session: Session, caller: Caller, bookmark_id: str) -> Document:
    return document(_require(session, caller, bookmark_id))


def update(session: Session, caller: Caller, bookmark_id: str,
           body: Mapping[str, Any]) -> Document:
    """Rename or (un)pin; the location of a bookmark does not change."""
    _check_type(body)
    bookmark = _require(session, caller, bookmark_id)
    if "name" not in body and "pinned" not in body:
        raise bad_request("Give a new 'name' or 'pinned'")
    if "name" in body:
        name = _name(body["name"])
        _name_free(session, caller, name, keep=bookmark.id)
        bookmark.name = name
    if "pinned" in body:
        bookmark.pinned = _pinned(body["pinned"])
    session.flush()
    return document(bookmark)


def delete(session: Session, caller: Caller, bookmark_id: str) -> Document:
    bookmark = _require(session, caller, bookmark_id)
    session.delete(bookmark)
    return {"DATA_TYPE": "result", "code": "Deleted",
            "message": f"Bookmark '{bookmark.id}' deleted successfully"}
