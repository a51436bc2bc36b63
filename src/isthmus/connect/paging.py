"""Marker paging as the SDK's MarkerPaginator reads it: ``marker`` and ``has_next_page``.

Lists are ordered by (created, id); a marker names the last item of a page, so
a page is found by an index range scan and items created meanwhile never make
a page repeat or skip one. Markers are opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from isthmus.connect.errors import bad_request

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class Pageable(Protocol):
    id: uuid.UUID
    created: datetime


P = TypeVar("P", bound=Pageable)
S = TypeVar("S", bound=Select[Any])


@dataclass(frozen=True)
class PageRequest:
    size: int = DEFAULT_PAGE_SIZE
    after: tuple[datetime, uuid.UUID] | None = None


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    marker: str | None

    @property
    def has_next_page(self) -> bool:
        return self.marker is not None


def page_request(params: Mapping[str, str]) -> PageRequest:
    raw_size = params.get("page_size")
    size = DEFAULT_PAGE_SIZE
    if raw_size not in (None, ""):
        if not raw_size.isascii() or not raw_size.isdigit() or int(raw_size) < 1:
            raise bad_request("page_size must be a positive integer")
        size = min(int(raw_size), MAX_PAGE_SIZE)
    raw_marker = params.get("marker")
    return PageRequest(size, _decode(raw_marker) if raw_marker else None)


def _decode(marker: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = marker + "=" * (-len(marker) % 4)
        created, item_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = datetime.fromisoformat(created)
        if after.tzinfo is None:
            raise ValueError("a marker's time has a zone")
        return after.astimezone(UTC), uuid.UUID(item_id)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeEncodeError):
        raise bad_request(f"Invalid marker {marker!r}") from None


def _encode(item: Pageable) -> str:
    raw = json.dumps([item.created.isoformat(), str(item.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def paged(
    statement: S,
    created: InstrumentedAttribute[datetime],
    item_id: InstrumentedAttribute[uuid.UUID],
    request: PageRequest,
) -> S:
    """The statement restricted to the requested page, plus one row to tell if more follow."""
    if request.after is not None:
        after_created, after_id = request.after
        statement = statement.where(or_(
            created > after_created, and_(created == after_created, item_id > after_id)))
    return statement.order_by(created, item_id).limit(request.size + 1)


def page_of(rows: Sequence[P], request: PageRequest) -> Page:
    if len(rows) > request.size:
        items = rows[:request.size]
        return Page(items, _encode(items[-1]))
    return Page(rows, None)
