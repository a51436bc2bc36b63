"""The ``result#1.0.0`` envelope every GCS Manager response is, success or error."""

from __future__ import annotations

from typing import Any


def envelope(
    data: list[dict[str, Any]],
    *,
    code: str = "success",
    status: int = 200,
    message: str | None = None,
    detail: Any = "success",
    marker: str | None = None,
    has_next_page: bool = False,
) -> dict[str, Any]:
    """The ``result#1.0.0`` document every Manager response is."""
    return {
        "DATA_TYPE": "result#1.0.0",
        "code": code,
        "http_response_code": status,
        "detail": detail,
        "message": message if message is not None else "Operation successful",
        "has_next_page": has_next_page,
        "marker": marker,
        "data": data,
    }
