"""The endpoint's OpenID Connect provider as the Manager API manages it (`oidc ...`).

One per endpoint, managed by its owner and administrators. `create` makes its signing
key (sealed at rest) and its one client, Auth; `prepare_registration` gives that client
a fresh secret, kept here as a digest only and handed once to Auth through
`core.identity_providers` (the route calls the registrar between two units of work);
Auth then offers the provider on its login page for the provider's domain, the DNS name
it is served from. The protocol itself is `oidc_provider`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy
from sqlalchemy.orm import Session

from isthmus.connect import authz, schemas
from isthmus.connect.authz import Caller
from isthmus.connect.errors import bad_request, exists, gcs_error, unprocessable
from isthmus.connect.models import Endpoint, OIDCCode, OIDCLoginFailure, OIDCServer
from isthmus.connect.oidc_provider import ISSUER_PATH, new_signing_key, signing_key_purpose
from isthmus.core.encryption import SecretBox
from isthmus.core.identity_providers import EndpointProvider
from isthmus.core.secrets import digest, new_secret

DEFAULT_PAM_SERVICE = "login"


def issuer_of(public_url: str) -> str:
    return public_url.rstrip("/") + ISSUER_PATH


def document(server: OIDCServer) -> dict[str, Any]:
    """Never the client secret (only its digest is kept) nor the signing key."""
    return {
        "DATA_TYPE": schemas.OIDC_SERVER.data_type,
        "domain": server.domain,
        "display_name": server.display_name,
        "pam_service": server.pam_service,
        "issuer": server.issuer,
        "client_id": server.client_id,
        "redirect_uris": list(server.redirect_uris),
        "registered": server.registered_provider_id is not None,
        "identity_provider_id": (str(server.registered_provider_id)
                                 if server.registered_provider_id else None),
    }


def _require(session: Session, endpoint: Endpoint, caller: Caller, action: str) -> OIDCServer:
    authz.require_endpoint_admin(session, endpoint, caller, action)
    server = session.get(OIDCServer, endpoint.id)
    if server is None:
        raise gcs_error(404, "This endpoint has no OIDC server: create it with "
                        "'globus-connect-server oidc create'")
    return server


def get_document(session: Session, endpoint: Endpoint, caller: Caller) -> dict[str, Any]:
    return document(_require(session, endpoint, caller, "read the OIDC server"))


def create(session: Session, endpoint: Endpoint, caller: Caller, body: Mapping[str, Any],
           box: SecretBox, public_url: str) -> dict[str, Any]:
    authz.require_endpoint_admin(session, endpoint, caller, "create the OIDC server")
    values = schemas.OIDC_SERVER.parse(body, creating=True)
    if session.get(OIDCServer, endpoint.id) is not None:
        raise exists("This endpoint already has an OIDC server: use 'oidc update' or "
                     "'oidc delete'")
    issuer = issuer_of(public_url)
    host = (urlsplit(issuer).hostname or "").lower()
    domain = values.get("domain") or host
    if domain != host:
        raise unprocessable(f"The domain must be {host}, the DNS name the OIDC server is "
                            f"served from: Auth lets an endpoint register no other")
    server = OIDCServer(
        endpoint_id=endpoint.id, domain=domain,
        display_name=values.get("display_name") or f"{endpoint.display_name} accounts",
        pam_service=values.get("pam_service") or DEFAULT_PAM_SERVICE, issuer=issuer,
        # Unusable until `register` gives Auth a secret.
        client_id=str(uuid.uuid4()), client_secret_digest=digest(new_secret()),
        signing_key_sealed="", redirect_uris=[])
    server.signing_key_sealed = box.seal(new_signing_key(), signing_key_purpose(server))
    session.add(server)
    session.flush()
    return document(server)


def update(session: Session, endpoint: Endpoint, caller: Caller,
           body: Mapping[str, Any]) -> dict[str, Any]:
    server = _require(session, endpoint, caller, "update the OIDC server")
    values = schemas.OIDC_SERVER.parse(body, creating=False, stored=document(server))
    if "display_name" in values:
        server.display_name = values["display_name"] or f"{endpoint.display_name} accounts"
    if "pam_service" in values:
        server.pam_service = values["pam_service"] or DEFAULT_PAM_SERVICE
    session.flush()
    return document(server)


def registered_provider(session: Session, endpoint: Endpoint, caller: Caller) -> bool:
    """Whether the provider about to be deleted is registered with Auth (checked first)."""
    return _require(session, endpoint, caller,
                    "delete the OIDC server").registered_provider_id is not None


def delete(session: Session, endpoint: Endpoint, caller: Caller) -> None:
    server = _require(session, endpoint, caller, "delete the OIDC server")
    for model in (OIDCCode, OIDCLoginFailure):
        session.execute(sqlalchemy.delete(model).where(model.endpoint_id == endpoint.id))
    session.delete(server)
    session.flush()


def _certificates(pem: str) -> str:
    from cryptography import x509

    try:
        if x509.load_pem_x509_certificates(pem.encode("ascii")):
            return pem
    except ValueError:
        pass
    raise bad_request("ca_certificates must hold PEM certificates")


def prepare_registration(session: Session, endpoint: Endpoint, caller: Caller,
                         body: Mapping[str, Any], redirect_uri: str) -> EndpointProvider:
    """What Auth is to be told: a fresh client secret, kept here only once Auth has it
    (`record_registration`), so a refused registration leaves the old one working."""
    server = _require(session, endpoint, caller, "register the OIDC server")
    values = schemas.OIDC_REGISTRATION.parse(body, creating=True)
    ca_certificates = values.get("ca_certificates")
    if ca_certificates is not None:
        ca_certificates = _certificates(ca_certificates)
    return EndpointProvider(
        endpoint_id=endpoint.id, display_name=server.display_name, issuer=server.issuer,
        domain=server.domain, client_id=server.client_id, client_secret=new_secret(),
        ca_certificates=ca_certificates, redirect_uri=redirect_uri)


def record_registration(session: Session, endpoint: Endpoint, caller: Caller,
                        provider: EndpointProvider, provider_id: uuid.UUID) -> dict[str, Any]:
    """Auth has the secret: from now on it is the one the token endpoint accepts, and Auth's
    callback the one redirect URI."""
    server = _require(session, endpoint, caller, "register the OIDC server")
    server.client_secret_digest = digest(provider.client_secret)
    server.redirect_uris = [provider.redirect_uri]
    server.registered_provider_id = provider_id
    session.flush()
    return document(server)
