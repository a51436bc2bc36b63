"""Transfer's ``filter`` and ``orderby`` query syntax (spec §4.3), parsed once for every list.

A filter is clauses joined by ``/`` (ANDed), each ``field:value`` where comma-separated
values are ORed. Text values take operators: ``=x`` or ``x`` (exact), ``!=x`` / ``!x`` (not
equal), ``~pat`` (wildcard, case-insensitive), ``!~pat``; positives are ORed and negatives
ANDed. Dates are a range ``start,end`` (either side empty). ``orderby`` is comma-separated
``field [ASC|DESC]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from isthmus.core.errors import APIError


def bad_request(message: str) -> APIError:
    return APIError(400, "ClientError.BadRequest", message)


@dataclass(frozen=True)
class Term:
    """One value of a clause: its operator (``=``, ``!=``, ``~``, ``!~``) and text."""

    operator: str
    value: str

    @property
    def negated(self) -> bool:
        return self.operator.startswith("!")


def parse_terms(value: str) -> list[Term]:
    terms = []
    for raw in value.split(","):
        for prefix, operator in (("!~", "!~"), ("!=", "!="), ("!", "!="), ("~", "~"),
                                 ("=", "=")):
            if raw.startswith(prefix):
                terms.append(Term(operator, raw[len(prefix):]))
                break
        else:
            terms.append(Term("=", raw))
    return terms


def parse_filter(text: str | None, fields: Mapping[str, str]) -> list[tuple[str, str]]:
    """``a:x/b:y`` -> ``[("a", "x"), ("b", "y")]`` (ANDed: a field may come twice), each
    field one that ``fields`` names (its kind: "text", "date", "bool"); an empty filter is
    no filter."""
    clauses: list[tuple[str, str]] = []
    for clause in (text or "").split("/"):
        if not clause:
            continue
        field, colon, value = clause.partition(":")
        field = field.strip()
        if not colon:
            raise bad_request(f"Invalid filter clause '{clause}': expected field:value")
        if field not in fields:
            raise bad_request(f"Invalid filter field '{field}' (allowed: "
                              f"{', '.join(sorted(fields))})")
        clauses.append((field, value))
    return clauses


# Dates as the clients send them: "2021-01-01 00:00:00", "2021-01-01T00:00:00+00:00",
# "2017-10-12", "2017-10-12 09:30Z".
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_datetime(text: str, what: str) -> datetime:
    """One of the §0.6 timestamp forms; a naive one is UTC."""
    value = text.strip()
    if not _DATE.match(value):
        raise bad_request(f"Invalid {what} '{text}': expected a date such as "
                          "'2030-01-02 03:04:05+00:00'")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # no such day, or before year 1 / after 9999 in UTC
        raise bad_request(f"Invalid {what} '{text}'") from None


def parse_range(value: str, field: str) -> tuple[datetime | None, datetime | None]:
    start, comma, end = value.partition(",")
    if not comma:
        raise bad_request(f"Invalid {field} filter '{value}': expected start,end")
    return (parse_datetime(start, field) if start.strip() else None,
            parse_datetime(end, field) if end.strip() else None)


def parse_bool(value: str, field: str) -> bool:
    if value.lower() in ("1", "true", "t"):
        return True
    if value.lower() in ("0", "false", "f"):
        return False
    raise bad_request(f"Invalid {field} filter '{value}': expected 1 or 0")


def parse_orderby(text: str | None, fields: set[str]) -> list[tuple[str, bool]]:
    """``"request_time DESC,label"`` -> ``[("request_time", True), ("label", False)]``."""
    order = []
    for part in (text or "").split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or words[0] not in fields or (
                len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise bad_request(f"Invalid orderby '{part.strip()}': expected one of "
                              f"{', '.join(sorted(fields))}, optionally followed by ASC or DESC")
        order.append((words[0], len(words) == 2 and words[1].upper() == "DESC"))
    return order


# The largest count a query may give (offsets, markers, fault counts): past it the
# databases' integers overflow, and no list is that long.
MAX_COUNT = 2**31 - 1


def int_param(params: Mapping[str, str], name: str, default: int, *, low: int = 0,
              high: int = MAX_COUNT) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid {name} '{raw[:40]}': expected an integer") from None
    if not low <= value <= high:
        raise bad_request(f"Invalid {name} '{raw[:40]}': must be between {low} and {high}")
    return value


def reject_nul(params: Iterable[tuple[str, str]]) -> None:
    """PostgreSQL cannot hold or compare a string with NUL in it: refused up front."""
    if any("\x00" in name or "\x00" in value for name, value in params):
        raise bad_request("Query parameters must not contain NUL characters")


def glob_to_like(pattern: str) -> str:
    """A ``*``/``?`` wildcard as a LIKE pattern with ``\\`` escapes."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")

