"""Identity lookups: identities, identity providers, and an identity's consents."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from isthmus.auth import clients, consents, documents, identities, openapi
from isthmus.auth.api import auth_token, in_transaction, read_only
from isthmus.auth.models import Identity
from isthmus.core.errors import bad_request, forbidden, not_found, unauthorized

router = APIRouter(prefix="/v2/api")

VIEW_CONSENTS = "urn:globus:auth:scope:auth.globus.org:view_consents"


def _authenticate(session: Session, request: Request) -> None:
    """Any live auth.globus.org token, or (SDK 3.x) a client's own Basic credentials."""
    basic = clients.parse_basic(request.headers.get("authorization"))
    if basic is None:
        auth_token(session, request)
    else:
        clients.authenticate_confidential(session, *basic)


@router.get("/identities", openapi_extra=openapi.GET_IDENTITIES)
async def get_identities(request: Request) -> dict[str, Any]:
    ids = request.query_params.get("ids")
    usernames = request.query_params.get("usernames")
    if (ids is None) == (usernames is None):
        raise bad_request("Give either ids or usernames")
    provision = request.query_params.get("provision", "false").lower() == "true"

    def work(session: Session) -> dict[str, Any]:
        _authenticate(session, request)
        found = identities.find_identities(
            session, ids=ids, usernames=usernames, provision=provision and usernames is not None
        )
        return {"identities": [documents.identity_document(identity) for identity in found]}

    # Provisioning writes; a plain lookup never waits for the write lock.
    return await (in_transaction if provision else read_only)(request, work)


@router.get("/identity_providers", openapi_extra=openapi.GET_IDENTITY_PROVIDERS)
async def get_identity_providers(request: Request) -> dict[str, Any]:
    domains = request.query_params.get("domains")
    ids = request.query_params.get("ids")

    def work(session: Session) -> dict[str, Any]:
        _authenticate(session, request)
        return {"identity_providers": [
            documents.identity_provider_document(idp)
            for idp in identities.find_identity_providers(session, domains=domains, ids=ids)
        ]}

    return await read_only(request, work)


@router.get("/identities/{identity_id}/consents", openapi_extra=openapi.GET_CONSENTS)
async def get_consents(request: Request, identity_id: str) -> dict[str, Any]:
    show_all = request.query_params.get("all", "False").lower() == "true"

    def work(session: Session) -> dict[str, Any]:
        row = auth_token(session, request)
        try:
            wanted = uuid.UUID(identity_id)
        except ValueError:
            raise not_found(f"No identity {identity_id}") from None
        caller = session.get(Identity, row.identity_id)
        if caller is None:
            raise unauthorized()
        if wanted not in {member.id for member in identities.identity_set(session, caller)}:
            raise forbidden("You may only view your own consents")
        if show_all and VIEW_CONSENTS not in row.scope.split():
            raise forbidden("Viewing all consents needs the view_consents scope")
        rows = consents.list_for(
            session, wanted, client_ids=None if show_all else [row.client_id]
        )
        return {"consents": [documents.consent_document(consent) for consent in rows]}

    return await read_only(request, work)
