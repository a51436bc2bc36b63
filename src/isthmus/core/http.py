"""Small HTTP helpers every service's routes share: bounded bodies, forms, JSON, bearers."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from isthmus.core.errors import APIError, bad_request

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
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise bad_request("Malformed form body") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise bad_request(f"Parameter {key} appears more than once")
        form[key] = value
    return form


async def read_json_object(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_JSON_BYTES)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise bad_request("The request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise bad_request("The request body must be a JSON object")
    return document


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
