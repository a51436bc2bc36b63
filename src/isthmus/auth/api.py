"""Auth's JSON routes: discovery, JWK, the OAuth2 token endpoints, userinfo, clients, consents.

Handlers stay thin: read the request, run one unit of work in a worker thread,
shape the response. The rules live in the modules they call.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from isthmus.auth import clients, consents, documents, grants, rfc7662, tokens
from isthmus.auth.builtins import AUTH_RESOURCE_SERVER
from isthmus.auth.claims import user_claims
from isthmus.auth.errors import OAuthError, invalid_request
from isthmus.auth.identities import identity_set
from isthmus.auth.keys import ID_TOKEN_ALGORITHM
from isthmus.auth.models import BrowserSession, Identity, Token
from isthmus.auth.service import AuthService
from isthmus.core.db import reading, transaction
from isthmus.core.errors import APIError, bad_request, forbidden, not_found, unauthorized
from isthmus.core.http import bearer_token, read_form, read_json_object

router = APIRouter()
T = TypeVar("T")

# Token responses must never be cached (RFC 6749 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def service(request: Request) -> AuthService:
    auth: AuthService = request.app.state.auth
    return auth


async def in_transaction(request: Request, work: Callable[[Session], T]) -> T:
    def run() -> T:
        with transaction(service(request).sessions) as session:
            return work(session)

    return await run_in_threadpool(run)


async def read_only(request: Request, work: Callable[[Session], T]) -> T:
    def run() -> T:
        with reading(service(request).sessions) as session:
            return work(session)

    return await run_in_threadpool(run)


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
            "aud", "email", "exp", "iat", "iss", "name", "organization", "preferred_username",
            "sub", "identity_provider", "identity_provider_display_name", "identity_set",
            "last_authentication",
        ],
        "subject_types_supported": ["public"],
    }


@router.get("/jwk.json")
async def jwk_set(request: Request) -> dict[str, Any]:
    return service(request).signing_key.jwk_set()


# --- the token endpoint -----------------------------------------------------


@router.post("/v2/oauth2/token")
async def token(request: Request) -> JSONResponse:
    form = await read_form(request)
    authorization = request.headers.get("authorization")
    context = service(request).grant_context
    grant_type = form.get("grant_type")
    if not grant_type:
        raise invalid_request("Missing required parameter: grant_type")

    def work(session: Session) -> Any:
        client = clients.authenticate(session, authorization, form)
        if grant_type == grants.DEPENDENT_TOKEN:
            return grants.dependent_token(session, context, client, form)
        grant = grants.GRANTS.get(grant_type)
        if grant is None:
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant_type}")
        return grant(session, context, client, form)

    return JSONResponse(await in_transaction(request, work), headers=NO_STORE)


@router.post("/v2/oauth2/token/introspect")
async def introspect(request: Request) -> dict[str, Any]:
    form = await read_form(request)
    authorization = request.headers.get("authorization")
    secret = form.get("token")
    if not secret:
        raise invalid_request("Missing required parameter: token")
    include = {part.strip() for part in form.get("include", "").split(",") if part.strip()}
    issuer = service(request).settings.issuer

    def work(session: Session) -> dict[str, Any]:
        caller = clients.authenticate(session, authorization, form, allow_public=False)
        return rfc7662.describe(session, caller, secret, include, issuer)

    return await read_only(request, work)


@router.post("/v2/oauth2/token/revoke")
async def revoke(request: Request) -> dict[str, Any]:
    form = await read_form(request)
    authorization = request.headers.get("authorization")
    secret = form.get("token")
    if not secret:
        raise invalid_request("Missing required parameter: token")

    def work(session: Session) -> None:
        caller = clients.authenticate(session, authorization, form)
        row = tokens.find_active(session, secret)
        # RFC 7009: an unknown token, or another client's, is answered the same way.
        if row is not None and row.client_id == caller.id:
            tokens.revoke(session, row)

    await in_transaction(request, work)
    return {"active": False}


@router.post("/v2/oauth2/token/validate")
async def validate(request: Request) -> dict[str, Any]:
    """Removed from SDK 4 but still called by globus-cli before every command."""
    form = await read_form(request)
    authorization = request.headers.get("authorization")
    secret = form.get("token")
    if not secret:
        raise invalid_request("Missing required parameter: token")

    def work(session: Session) -> bool:
        caller = clients.authenticate(session, authorization, form)
        row = tokens.find_active(session, secret)
        return row is not None and row.client_id == caller.id

    return {"active": await read_only(request, work)}


# --- bearer-authenticated Auth API ------------------------------------------


def _auth_token(session: Session, request: Request) -> Token:
    secret = bearer_token(request)
    row = tokens.find_active(session, secret, kind="access") if secret else None
    if row is None or row.resource_server != AUTH_RESOURCE_SERVER:
        raise unauthorized()
    return row


@router.api_route("/v2/oauth2/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        row = _auth_token(session, request)
        identity = session.get(Identity, row.identity_id)
        if identity is None:
            raise unauthorized()
        browser_session = session.get(BrowserSession, row.session_id) if row.session_id else None
        return user_claims(session, identity, set(row.scope.split()), browser_session)

    return await read_only(request, work)


@router.get("/v2/api/identities")
async def get_identities(request: Request) -> dict[str, Any]:
    ids = request.query_params.get("ids")
    usernames = request.query_params.get("usernames")
    if ids is None and usernames is None:
        raise bad_request("Provide ids or usernames")

    def work(session: Session) -> dict[str, Any]:
        _auth_token(session, request)
        found: list[Identity] = []
        if ids is not None:
            keys = []
            for part in ids.split(","):
                try:
                    keys.append(uuid.UUID(part.strip()))
                except ValueError:
                    raise bad_request(f"Invalid identity id {part!r}") from None
            found += session.scalars(select(Identity).where(Identity.id.in_(keys)))
        if usernames is not None:
            names = [part.strip().lower() for part in usernames.split(",") if part.strip()]
            found += session.scalars(select(Identity).where(Identity.username.in_(names)))
        return {"identities": [documents.identity_document(identity) for identity in found]}

    return await read_only(request, work)


@router.get("/v2/api/identities/{identity_id}/consents")
async def get_consents(request: Request, identity_id: str) -> dict[str, Any]:
    show_all = request.query_params.get("all", "False").lower() == "true"

    def work(session: Session) -> dict[str, Any]:
        row = _auth_token(session, request)
        try:
            wanted = uuid.UUID(identity_id)
        except ValueError:
            raise not_found(f"No identity {identity_id}") from None
        caller = session.get(Identity, row.identity_id)
        if caller is None:
            raise unauthorized()
        if wanted not in {member.id for member in identity_set(session, caller)}:
            raise forbidden("You may only view your own consents")
        if show_all and "urn:globus:auth:scope:auth.globus.org:view_consents" not in (
            row.scope.split()
        ):
            raise forbidden("Viewing all consents needs the view_consents scope")
        rows = consents.list_for(
            session, wanted, client_ids=None if show_all else [row.client_id]
        )
        return {"consents": [documents.consent_document(consent) for consent in rows]}

    return await read_only(request, work)


# --- clients ----------------------------------------------------------------


@router.post("/v2/api/clients")
async def create_client(request: Request) -> dict[str, Any]:
    document = await read_json_object(request)
    body = document.get("client")
    if not isinstance(body, dict):
        raise bad_request("The body must be {\"client\": {...}}")
    template_id = body.get("template_id")
    if template_id is None:
        raise APIError(
            403, "FORBIDDEN",
            "Creating clients in projects needs the Auth management API; "
            "only native-app instances (template_id) can be created here",
        )
    name = body.get("name")
    if not isinstance(template_id, str) or not isinstance(name, str):
        raise bad_request("template_id and name must be strings")

    def work(session: Session) -> dict[str, Any]:
        template = clients.get_client(session, template_id)
        if template is None or not template.is_template:
            raise bad_request(f"{template_id} is not a native app template")
        created = clients.create_client(
            session, name, "confidential_client", parent_client_id=template.id,
            redirect_uris=list(template.redirect_uris),
        )
        assert created.credential is not None
        return {
            "client": documents.client_document(session, created.client),
            "included": {
                "client_credential": documents.credential_document(
                    created.credential, created.secret
                )
            },
        }

    return await in_transaction(request, work)


@router.delete("/v2/api/clients/{client_id}")
async def delete_client(request: Request, client_id: str) -> dict[str, Any]:
    authorization = request.headers.get("authorization")

    def work(session: Session) -> dict[str, Any]:
        basic = clients.parse_basic(authorization)
        if basic is None:
            raise unauthorized()
        caller = clients.authenticate_confidential(session, *basic)
        target = clients.get_client(session, client_id)
        if target is None:
            raise not_found(f"No client with id {client_id}")
        if target.id != caller.id:
            raise forbidden("A client may delete only itself with its own credentials")
        document = documents.client_document(session, target)
        clients.delete_client(session, target)
        return {"client": document}

    return await in_transaction(request, work)

