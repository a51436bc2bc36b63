"""The GCS Manager's result envelope for errors, and the errors its routes raise.

``GCSAPIError`` reads ``code`` and ``message`` (strings) and ``detail``, whose
``DATA_TYPE`` it exposes as ``detail_data_type``. Domain code raises
`core.errors.APIError` with the GCS code and, in ``extra["detail"]``, a typed
detail document; `error_document` is the envelope that says it (`api.render_error` sends
it), so the domain raises these without the HTTP layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from isthmus.connect.results import envelope
from isthmus.core.errors import APIError

# Codes for errors raised outside Connect's own code (framework, shared body readers).
_STATUS_CODES = {400: "bad_request", 401: "not_authorized", 403: "permission_denied",
                 404: "not_found", 405: "method_not_allowed", 409: "conflict",
                 413: "payload_too_large", 415: "unsupported_media_type",
                 422: "unprocessable_entity"}


def gcs_error(status: int, message: str, detail: Any = None) -> APIError:
    return APIError(status, _STATUS_CODES[status], message, extra={"detail": detail})


def bad_request(message: str) -> APIError:
    return gcs_error(400, message)


def invalid_input(document: str, problems: Iterable[tuple[str, str]]) -> APIError:
    """A document with bad fields: 400, naming each offending property."""
    errors = [{"property": key, "message": f"{key} {text}"} for key, text in problems]
    summary = "; ".join(error["message"] for error in errors)
    return gcs_error(400, f"Invalid {document} document: {summary}",
                     {"DATA_TYPE": "invalid_input#1.0.0", "errors": errors})


def unprocessable(message: str) -> APIError:
    return gcs_error(422, message)


def not_found(what: str, resource_id: object) -> APIError:
    return gcs_error(404, f"{what} {resource_id} not found")


def conflict(message: str, resources: Iterable[str] = ()) -> APIError:
    return gcs_error(409, message,
                     {"DATA_TYPE": "resource_conflict#1.0.0", "resources": list(resources)})


def exists(message: str) -> APIError:
    return APIError(409, "exists", message, extra={"detail": None})


def missing_role(message: str, roles: Iterable[str], collection: str | None = None) -> APIError:
    listed = [{"role": role, **({"collection": collection} if collection else {})}
              for role in roles]
    return gcs_error(403, message, {"DATA_TYPE": "missing_required_role#1.0.0",
                                    "roles": listed})


def not_authorized(message: str, required_scope: str | None = None) -> APIError:
    detail = ({"DATA_TYPE": "missing_required_scopes#1.0.0", "required_scopes": [required_scope]}
              if required_scope else None)
    return APIError(401, "not_authorized", message, extra={"detail": detail},
                    headers={"WWW-Authenticate": 'Bearer realm="globus_connect_server"'})


def from_status(status: int, message: str) -> APIError:
    return APIError(status, _STATUS_CODES.get(status, "error"), message)


def error_document(error: APIError) -> dict[str, Any]:
    """The envelope of an error answer."""
    # Shared helpers raise core's UPPER_SNAKE codes: say them the GCS way.
    code = _STATUS_CODES.get(error.status, "error") if error.code.isupper() else error.code
    return envelope([], code=code, status=error.status, message=error.message,
                    detail=error.extra.get("detail"))
