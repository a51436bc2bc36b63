"""Auth's domain errors, and their rendering in the Globus Auth error format."""

from __future__ import annotations

from typing import Any

from isthmus.core.errors import APIError


class OAuthError(APIError):
    """An RFC 6749 error from the token endpoints (`error` is the RFC's name)."""

    def __init__(self, error: str, description: str, status: int = 400, **extra: Any) -> None:
        super().__init__(status, error.upper(), description, oauth_error=error, extra=extra)


def invalid_client(description: str = "Basic auth failed") -> OAuthError:
    # globus-cli and the SDK key on code UNAUTHORIZED for a bad client login.
    error = OAuthError("invalid_client", description, status=401)
    error.code = "UNAUTHORIZED"
    error.headers = {"WWW-Authenticate": 'Basic realm="isthmus"'}
    return error


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description)


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def unauthorized_client(description: str) -> OAuthError:
    return OAuthError("unauthorized_client", description)
