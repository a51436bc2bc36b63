"""Auth's JSON routes: discovery, JWK, the OAuth2 token endpoints, userinfo, clients, consents.

Handlers stay thin: read the request, run one unit of work in a worker thread,
shape the response. The rules live in the modules they call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from isthmus.auth import clients, grants, openapi, rfc7662, tokens
from isthmus.auth.builtins import AUTH_RESOURCE_SERVER
from isthmus.auth.claims import user_claims
from isthmus.auth.errors import OAuthError, invalid_request
from isthmus.auth.keys import ID_TOKEN_ALGORITHM
from isthmus.auth.models import BrowserSession, Identity, Token
from isthmus.auth.service import AuthService
from isthmus.core import work as work_units
from isthmus.core.errors import APIError, unauthorized
from isthmus.core.group_commit import GroupCommitter
from isthmus.core.http import bearer_token, read_form

router = APIRouter()
T = TypeVar("T")

# Token responses must never be cached (RFC 6749 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def service(request: Request) -> AuthService:
    auth: AuthService = request.app.state.auth
    return auth


async def in_transaction(request: Request, work: Callable[[Session], T]) -> T:
    return await work_units.in_transaction(request, service(request).sessions, work)


async def in_group_commit(request: Request, work: Callable[[Session], T]) -> T:
    """A short write unit of work, committed together with others waiting (``group_commit``)."""
    committer: GroupCommitter | None = getattr(request.app.state, "group_commit", None)
    if committer is None:
        committer = request.app.state.group_commit = GroupCommitter(service(request).sessions)
    return await committer.run(work)


async def read_only(request: Request, work: Callable[[Session], T]) -> T:
    return await work_units.read_only(request, service(request).sessions, work)


def render_error(error: APIError) -> JSONResponse:
    """The body Globus Auth sends: an ``errors`` array plus the OAuth fields."""
    oauth_error = error.oauth_error or error.code.lower()
    entry: dict[str, Any] = {
        "status": str(error.status),
        "code": error.code,
        "id": error.request_id,
        "title": error.title,
        "detail": error.message,
    }
    body: dict[str, Any] = {
        "errors": [entry],
        "error": oauth_error,
        "error_description": error.message,
    }
    for key, value in error.extra.items():
        if key == "errors_extra":
            entry.update(value)
        else:
            body[key] = value
    return JSONResponse(body, status_code=error.status, headers=error.headers)


# --- discovery --------------------------------------------------------------


@router.get("/.well-known/openid-configuration")
async def openid_configuration(request: Request) -> dict[str, Any]:
    base = service(request).settings.public_url
    return {
        "issuer": service(request).settings.issuer,
        "authorization_endpoint": base + "v2/oauth2/authorize",
        "token_endpoint": base + "v2/oauth2/token",
        "userinfo_endpoint": base + "v2/oauth2/userinfo",
        "revocation_endpoint": base + "v2/oauth2/token/revoke",
        "introspection_endpoint": base + "v2/oauth2/token/introspect",
        "jwks_uri": base + "jwk.json",
        "response_types_supported": ["code"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials", grants.DEPENDENT_TOKEN,
        ],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALGORITHM],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "aud", "email", "exp", "iat", "iss", "name", "nonce", "organization",
            "preferred_username",
            "sub", "identity_provider", "identity_provider_display_name", "identity_set",
            "last_authentication",
        ],
        "subject_types_supported": ["public"],
    }


@router.get("/jwk.json")
async def jwk_set(request: Request) -> dict[str, Any]:
    return service(request).signing_key.jwk_set()


# --- the token endpoint -----------------------------------------------------


@router.post("/v2/oauth2/token", openapi_extra=openapi.TOKEN)
async def token(request: Request) -> JSONResponse:
    form = await read_form(request)
    authorization = request.headers.get("authorization")
    context = service(request).grant_context
    grant_type = form.get("grant_type")
    if not grant_type:
        raise invalid_request("Missing required parameter: grant_type")

    def work(session: Session) -> Any:
        client = clients.authenticate(session, authorization, form, cached=True)
        if grant_type == grants.DEPENDENT_TOKEN:
            return grants.dependent_token(session, context, client, form)
        grant = grants.GRANTS.get(grant_type)
        if grant is None:
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant_type}")
        return grant(session, context, client, form)

    return JSONResponse(await in_group_commit(request, work), headers=NO_STORE)


async def _token_form(request: Request) -> tuple[dict[str, str], str | None, str]:
    """The form of the endpoints that take a ``token``, the client's header, and the token."""
    form = await read_form(request)
    secret = form.get("token")
    if not secret:
        raise invalid_request("Missing required parameter: token")
    return form, request.headers.get("authorization"), secret


@router.post("/v2/oauth2/token/introspect", openapi_extra=openapi.INTROSPECT)
async def introspect(request: Request) -> JSONResponse:
    form, authorization, secret = await _token_form(request)
    include = {part.strip() for part in form.get("include", "").split(",") if part.strip()}
    issuer = service(request).settings.issuer

    def work(session: Session) -> dict[str, Any]:
        caller = clients.authenticate(session, authorization, form, allow_public=False,
                                      cached=True)
        return rfc7662.describe(session, caller, secret, include, issuer)

    return JSONResponse(await read_only(request, work))


# Answered ahead of FastAPI's router (see `core.direct_routes`): the busiest routes.
DIRECT_ROUTES = {
    ("POST", "/v2/oauth2/token"): token,
    ("POST", "/v2/oauth2/token/introspect"): introspect,
}


@router.post("/v2/oauth2/token/revoke", openapi_extra=openapi.REVOKE)
async def revoke(request: Request) -> dict[str, Any]:
    form, authorization, secret = await _token_form(request)

    def work(session: Session) -> None:
        caller = clients.authenticate(session, authorization, form)
        row = tokens.find_active(session, secret)
        # RFC 7009: an unknown token, or another client's, is answered the same way.
        if row is not None and tokens.may_revoke(session, row, caller):
            tokens.revoke(session, row)

    await in_transaction(request, work)
    return {"active": False}


@router.post("/v2/oauth2/token/validate", openapi_extra=openapi.VALIDATE)
async def validate(request: Request) -> dict[str, Any]:
    """Removed from SDK 4 but still called by globus-cli before every command."""
    form, authorization, secret = await _token_form(request)

    def work(session: Session) -> bool:
        caller = clients.authenticate(session, authorization, form)
        row = tokens.find_active(session, secret)
        return row is not None and row.client_id == caller.id

    return {"active": await read_only(request, work)}


# --- bearer-authenticated Auth API ------------------------------------------


def auth_token(session: Session, request: Request) -> Token:
    """The caller's live access token for auth.globus.org, or 401."""
    secret = bearer_token(request)
    row = tokens.find_active(session, secret, kind="access") if secret else None
    if row is None or row.resource_server != AUTH_RESOURCE_SERVER:
        raise unauthorized()
    return row


@router.get("/v2/oauth2/userinfo", openapi_extra=openapi.USERINFO)
@router.post("/v2/oauth2/userinfo", openapi_extra=openapi.USERINFO)
async def userinfo(request: Request) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        row = auth_token(session, request)
        identity = session.get(Identity, row.identity_id)
        if identity is None:
            raise unauthorized()
        browser_session = session.get(BrowserSession, row.session_id) if row.session_id else None
        return user_claims(session, identity, set(row.scope.split()), browser_session)

    return await read_only(request, work)
