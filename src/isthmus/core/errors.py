"""The error every service raises for a client mistake, and its status titles.

Each service renders `APIError` in its own wire format (Auth: the Globus Auth
``errors`` array with ``error``/``error_description``; Transfer: ``code``,
``message``, ``request_id``), so domain code raises one type everywhere.
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any


class APIError(Exception):
    """A request the server refuses, with the HTTP status and a stable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        oauth_error: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # RFC 6749 error name, for the OAuth endpoints' `error` field.
        self.oauth_error = oauth_error
        self.extra = extra or {}
        self.headers = headers or {}
        self.request_id = str(uuid.uuid4())

    @property
    def title(self) -> str:
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Error"


def bad_request(message: str, code: str = "BAD_REQUEST") -> APIError:
    return APIError(400, code, message, oauth_error="invalid_request")


def unauthorized(message: str = "Call must be authenticated") -> APIError:
    return APIError(
        401, "UNAUTHORIZED", message, oauth_error="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="isthmus"'},
    )


def forbidden(message: str, **extra: Any) -> APIError:
    return APIError(403, "FORBIDDEN", message, oauth_error="forbidden", extra=extra)


def not_found(message: str) -> APIError:
    return APIError(404, "NOT_FOUND", message, oauth_error="not_found")
