"""The parts of HTTP semantics (RFC 9110) a file server needs: validators (ETag,
Last-Modified), conditional requests (§13), single byte ranges (§14) and the
Content-Disposition of a download (RFC 6266). Pure functions of header values."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from isthmus.storage.connector import Entry

SAFE_METHODS = frozenset({"GET", "HEAD"})
_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
_ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')


@dataclass(frozen=True)
class Validators:
    """What conditional requests compare: a strong entity tag and the modification time."""

    etag: str
    mtime: float

    @classmethod
    def of(cls, entry: Entry) -> Validators:
        # Size and microsecond mtime: a rewrite that keeps both within a microsecond is
        # indistinguishable, as with any server that derives tags from metadata.
        return cls(f'"{entry.size:x}-{round(entry.mtime * 1_000_000):x}"', entry.mtime)

    @property
    def last_modified(self) -> str:
        return http_date(self.mtime)

    def headers(self) -> dict[str, str]:
        return {"ETag": self.etag, "Last-Modified": self.last_modified}


def http_date(timestamp: float) -> str:
    """An IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    return email.utils.formatdate(timestamp, usegmt=True)


def parse_http_date(value: str) -> float | None:
    """Seconds since the epoch, or None for a value that is not an HTTP date (which a
    recipient ignores, §13.1.3)."""
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def _entity_tags(value: str) -> list[tuple[bool, str]] | None:
    """``W/"a", "b"`` -> [(True, "a"), (False, "b")]; None when malformed."""
    tags: list[tuple[bool, str]] = []
    position = 0
    while position < len(value):
        found = _ENTITY_TAG.match(value, position)
        if found is None:
            return None
        tags.append((found.group(1) is not None, found.group(2)))
        position = found.end()
    return tags


def _matches(value: str, current: Validators | None, *, strong: bool) -> bool:
    """Whether an If-Match / If-None-Match list names the current representation."""
    if value.strip() == "*":
        return current is not None
    tags = _entity_tags(value)
    if current is None or not tags:
        return False
    opaque = current.etag.strip('"')
    return any(tag == opaque and not (strong and weak) for weak, tag in tags)


def _seconds(timestamp: float) -> int:
    return int(timestamp)  # HTTP dates have whole seconds


def precondition_status(
    method: str, headers: Mapping[str, str], current: Validators | None
) -> int | None:
    """The status a conditional request gets instead of being performed (304 or 412), in
    the order of RFC 9110 §13.2.2; None to go on. ``current`` is None when the target
    does not exist."""
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _matches(if_match, current, strong=True):
            return 412
    elif current is not None and (unmodified := headers.get("if-unmodified-since")):
        since = parse_http_date(unmodified)
        if since is not None and _seconds(current.mtime) > since:
            return 412
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if _matches(if_none_match, current, strong=False):
            return 304 if method in SAFE_METHODS else 412
    elif method in SAFE_METHODS and current is not None and (
        modified := headers.get("if-modified-since")
    ):
        since = parse_http_date(modified)
        if since is not None and _seconds(current.mtime) <= since:
            return 304
    return None


class UnsatisfiableRangeError(Exception):
    """A Range the representation cannot satisfy: 416 with ``Content-Range: bytes */size``."""


def byte_range(
    value: str | None, size: int, *, if_range: str | None, current: Validators
) -> tuple[int, int] | None:
    """The (first, last) bytes a GET should answer with 206, or None for the whole file.

    One range is served; a header this server does not take (another unit, several
    ranges, a malformed one) is ignored as §14.2 allows, as is a Range whose If-Range
    no longer matches. Raises UnsatisfiableRangeError when no byte of the range exists.
    """
    if value is None or (if_range is not None and not _if_range_holds(if_range, current)):
        return None
    unit, _, ranges = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges:
        return None
    first_text, dash, last_text = ranges.strip().partition("-")
    if not dash or not _digits(last_text, optional=True):
        return None
    if first_text == "":  # the last N bytes
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise UnsatisfiableRangeError
        return max(0, size - suffix), size - 1
    if not _digits(first_text, optional=False):
        return None
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # not a valid range: ignored
    if first >= size:
        raise UnsatisfiableRangeError
    return first, min(int(last_text), size - 1) if last_text else size - 1


def _digits(text: str, *, optional: bool) -> bool:
    return (optional and text == "") or _DIGITS.fullmatch(text) is not None


def _if_range_holds(value: str, current: Validators) -> bool:
    """If-Range: a strong tag must equal the current one, a date must equal Last-Modified."""
    text = value.strip()
    if text.startswith(('"', "W/")):
        return text == current.etag
    since = parse_http_date(text)
    return since is not None and since == _seconds(current.mtime)


def content_range(first: int, last: int, size: int) -> str:
    return f"bytes {first}-{last}/{size}"


def attachment(name: str) -> str:
    """Content-Disposition asking a browser to save ``name`` (RFC 6266, RFC 8187)."""
    fallback = "".join(char if 32 <= ord(char) < 127 and char not in '"\\' else "_"
                       for char in name) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
