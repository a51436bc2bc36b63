"""WebDAV class 1 (RFC 4918) as far as a file server without locks needs it: the Depth,
Overwrite and Destination headers, PROPFIND request bodies, and multistatus responses.
Pure functions of header values and documents."""

from __future__ import annotations

import mimetypes
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from xml.sax.saxutils import escape, quoteattr

from isthmus.connect.rfc9110 import Validators, http_date
from isthmus.core.errors import bad_request
from isthmus.storage.connector import Entry

DAV = "DAV:"
MULTISTATUS_TYPE = "application/xml; charset=utf-8"
MAX_PROPFIND_BYTES = 64 * 1024
# What allprop returns, in this order: enough for rclone, davfs2 and desktop file managers.
LIVE_PROPERTIES = ("displayname", "getcontentlength", "getcontenttype", "getetag",
                   "getlastmodified", "resourcetype")


class Depth(StrEnum):
    ZERO = "0"
    ONE = "1"
    INFINITY = "infinity"


def parse_depth(value: str | None, *, default: Depth = Depth.INFINITY) -> Depth:
    """The Depth header; absent means infinity for PROPFIND, COPY and DELETE (§10.2)."""
    if value is None:
        return default
    try:
        return Depth(value.strip().lower())
    except ValueError:
        raise bad_request("Depth must be 0, 1 or infinity") from None


def parse_overwrite(value: str | None) -> bool:
    """The Overwrite header: T (the default) or F (§10.6)."""
    if value is None:
        return True
    flag = value.strip().upper()
    if flag not in ("T", "F"):
        raise bad_request("Overwrite must be T or F")
    return flag == "T"


@dataclass(frozen=True)
class PropfindRequest:
    """``names`` None means allprop; ``names_only`` is propname."""

    names: tuple[tuple[str, str], ...] | None = None  # (namespace, local name)
    names_only: bool = False


def parse_propfind(body: bytes) -> PropfindRequest:
    """A PROPFIND body; empty means allprop (§9.1). Documents with a DOCTYPE are refused:
    nothing here needs entities, and refusing them rules out entity-expansion attacks."""
    if not body.strip():
        return PropfindRequest()
    if b"<!DOCTYPE" in body.upper():
        raise bad_request("PROPFIND bodies may not declare a DOCTYPE")
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - no DOCTYPE, so no entities
    except ElementTree.ParseError:
        raise bad_request("The PROPFIND body is not well-formed XML") from None
    if root.tag != _name(DAV, "propfind"):
        raise bad_request("The PROPFIND body must be a DAV:propfind element")
    for child in root:
        if child.tag == _name(DAV, "allprop"):
            return PropfindRequest()
        if child.tag == _name(DAV, "propname"):
            return PropfindRequest(names_only=True)
        if child.tag == _name(DAV, "prop"):
            return PropfindRequest(tuple(_split(prop.tag) for prop in child))
    raise bad_request("The PROPFIND body must hold DAV:prop, DAV:allprop or DAV:propname")


def _name(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


@dataclass(frozen=True)
class Resource:
    """One response element of a multistatus: what ``href`` names and what is there."""

    href: str  # already percent-encoded; ends in / for a collection
    name: str
    entry: Entry

    def live_value(self, local: str) -> str | None:
        """The XML content of a DAV: live property, or None when it has none."""
        entry = self.entry.resolved
        directory = entry.is_dir()
        if local == "displayname":
            return escape(self.name)
        if local == "resourcetype":
            return "<D:collection/>" if directory else ""
        if local == "getlastmodified":
            return http_date(entry.mtime)
        if local == "getetag":
            return escape(Validators.of(entry).etag)
        if directory:
            return None
        if local == "getcontentlength":
            return str(entry.size)
        if local == "getcontenttype":
            return escape(content_type(self.name))
        return None


def content_type(name: str) -> str:
    """A media type from the file name; text is said to be UTF-8, since without a charset
    clients assume ISO-8859-1 and most text written today is UTF-8."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed is None:
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def multistatus(resources: Iterable[Resource], request: PropfindRequest) -> bytes:
    """The 207 body answering a PROPFIND for ``resources``."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">']
    for resource in resources:
        parts.append(f"<D:response><D:href>{escape(resource.href)}</D:href>")
        parts.extend(_propstats(resource, request))
        parts.append("</D:response>")
    parts.append("</D:multistatus>\n")
    return "".join(parts).encode("utf-8")


def _propstats(resource: Resource, request: PropfindRequest) -> list[str]:
    found: list[str] = []
    missing: list[str] = []
    wanted: Sequence[tuple[str, str]] = (
        request.names if request.names is not None
        else [(DAV, local) for local in LIVE_PROPERTIES])
    for namespace, local in wanted:
        value = resource.live_value(local) if namespace == DAV else None
        if value is None:
            if request.names is not None:  # allprop leaves out what does not apply
                missing.append(_empty_element(namespace, local))
        elif request.names_only:
            found.append(_empty_element(namespace, local))
        else:
            found.append(f"<D:{local}>{value}</D:{local}>")
    statuses = []
    if found:
        statuses.append(_propstat(found, "200 OK"))
    if missing:
        statuses.append(_propstat(missing, "404 Not Found"))
    return statuses


def _empty_element(namespace: str, local: str) -> str:
    if namespace == DAV:
        return f"<D:{local}/>"
    if not namespace:
        return f"<{local}/>"
    return f"<x:{local} xmlns:x={quoteattr(namespace)}/>"


def _propstat(properties: list[str], status: str) -> str:
    return (f"<D:propstat><D:prop>{''.join(properties)}</D:prop>"
            f"<D:status>HTTP/1.1 {status}</D:status></D:propstat>")


def finite_depth_error() -> bytes:
    """The 403 body refusing ``Depth: infinity`` on PROPFIND (§9.1)."""
    return (b'<?xml version="1.0" encoding="utf-8"?>\n'
            b'<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>\n')


@dataclass(frozen=True)
class PropertyUpdate:
    """A PROPPATCH body: the properties set (with their text) and removed, in order."""

    changes: tuple[tuple[str, str, str | None], ...]  # (namespace, local, text or None)


def parse_proppatch(body: bytes) -> PropertyUpdate:
    """A DAV:propertyupdate body (§9.2); DOCTYPEs refused as in `parse_propfind`."""
    if b"<!DOCTYPE" in body.upper():
        raise bad_request("PROPPATCH bodies may not declare a DOCTYPE")
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - no DOCTYPE, so no entities
    except ElementTree.ParseError:
        raise bad_request("The PROPPATCH body is not well-formed XML") from None
    if root.tag != _name(DAV, "propertyupdate"):
        raise bad_request("The PROPPATCH body must be a DAV:propertyupdate element")
    changes = []
    for action in root:
        if action.tag not in (_name(DAV, "set"), _name(DAV, "remove")):
            continue
        setting = action.tag == _name(DAV, "set")
        for prop in action.iter(_name(DAV, "prop")):
            for element in prop:
                namespace, local = _split(element.tag)
                changes.append((namespace, local, (element.text or "") if setting else None))
    if not changes:
        raise bad_request("The PROPPATCH body changes no property")
    return PropertyUpdate(tuple(changes))


def proppatch_multistatus(href: str, statuses: Sequence[tuple[str, str, str]]) -> bytes:
    """The 207 body answering a PROPPATCH: (namespace, local, status) of each property."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">',
             f"<D:response><D:href>{escape(href)}</D:href>"]
    parts.extend(_propstat([_empty_element(namespace, local)], status)
                 for namespace, local, status in statuses)
    parts.append("</D:response></D:multistatus>\n")
    return "".join(parts).encode("utf-8")
