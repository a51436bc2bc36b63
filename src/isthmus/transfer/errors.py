"""Transfer's error body: ``code``, ``message``, ``request_id`` and ``resource``."""

from __future__ import annotations

import secrets
from typing import Any

from isthmus.core.errors import APIError

API_PREFIX = "/v0.10"
_REQUEST_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# Codes for the errors the framework raises before a handler runs.
_STATUS_CODES = {400: "ClientError.BadRequest", 404: "ClientError.NotFound",
                 405: "ClientError.MethodNotAllowed", 413: "ClientError.RequestTooLarge",
                 500: "ServiceError.InternalError"}


def request_id() -> str:
    """A short random id, as real Transfer responses carry (9 characters)."""
    return "".join(secrets.choice(_REQUEST_ID_ALPHABET) for _ in range(9))


def from_status(status: int, message: str) -> APIError:
    return APIError(status, _STATUS_CODES.get(status, "ClientError"), message)


def authentication_failed(message: str, *, missing: bool = False) -> APIError:
    # The CLI tells the user to `globus login` only for the first code.
    code = "ClientError.AuthenticationFailed" if missing else "AuthenticationFailed"
    return APIError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="transfer"'})


def error_document(path: str, error: APIError) -> dict[str, Any]:
    """The body of ``error`` answering a request for ``path`` (`api.render_error` sends it)."""
    resource = path[len(API_PREFIX):] if path.startswith(API_PREFIX + "/") else path
    # Shared helpers (body readers) raise core's UPPER_SNAKE codes: say them Transfer's way.
    code = _STATUS_CODES.get(error.status, "ClientError") if error.code.isupper() else error.code
    body: dict[str, Any] = {"code": code, "message": error.message,
                            "request_id": request_id(), "resource": resource}
    body.update(error.extra)
    return body
