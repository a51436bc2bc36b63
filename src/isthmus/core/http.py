"""Small HTTP helpers every service's routes share: bounded bodies, forms, JSON, bearers,
and running a unit of database work off the event loop."""

from __future__ import annotations

import json
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Request

from isthmus.core.errors import APIError, bad_request

T = TypeVar("T")

MAX_FORM_BYTES = 64 * 1024
MAX_JSON_BYTES = 1024 * 1024


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; a parameter may appear only once."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request, MAX_FORM_BYTES)
    if content_type != "application/x-www-form-urlencoded" and body:
        raise bad_request("Expected an application/x-www-form-urlencoded body")
    try:
        # errors="strict": a percent-escape that is not UTF-8 is malformed, not U+FFFD.
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise bad_request("Malformed form body") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        # No parameter has a use for NUL, and PostgreSQL text cannot hold one.
        if "\x00" in key or "\x00" in value:
            raise bad_request("Form parameters must not contain NUL characters")
        if key in form:
            raise bad_request(f"Parameter {key} appears more than once")
        form[key] = value
    return form


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_json_object(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_JSON_BYTES)
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise bad_request("The request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise bad_request("The request body must be a JSON object")
    if not _storable_strings(document):
        raise bad_request("JSON strings must be valid Unicode without NUL characters")
    return document


def _storable_strings(document: Any) -> bool:
    """False if a key or string holds NUL or a lone surrogate (``\\ud800``).

    Neither can be stored in PostgreSQL or encoded in a UTF-8 response. The walk
    is iterative: the document may be nested as deeply as the parser allows.
    """
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return False
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
