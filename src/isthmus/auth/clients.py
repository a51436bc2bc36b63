"""OAuth clients: registration, credentials, authentication and redirect URIs."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from isthmus.auth import lookup_cache
from isthmus.auth.builtins import CLIENTS_DOMAIN, CLIENTS_IDP_ID
from isthmus.auth.errors import invalid_client
from isthmus.auth.models import Client, ClientCredential, Identity, Token
from isthmus.core.errors import APIError, bad_request, not_found
from isthmus.core.secrets import digest, new_secret, same_digest

CLIENT_TYPES = (
    "public_installed_client",
    "confidential_client",
    "client_identity",
    "resource_server",
    "hybrid_confidential_client_resource_server",
)
_TYPES_WITH_SECRETS = frozenset(CLIENT_TYPES) - {"public_installed_client"}
_RESOURCE_SERVER_TYPES = frozenset(
    {"resource_server", "hybrid_confidential_client_resource_server"}
)
GRANT_TYPES: dict[str, list[str]] = {
    "public_installed_client": ["authorization_code", "refresh_token"],
    "confidential_client": [
        "authorization_code", "client_credentials", "refresh_token",
        "urn:globus:auth:grant_type:dependent_token",
    ],
    "client_identity": ["client_credentials", "urn:globus:auth:grant_type:dependent_token"],
    # A service renews the dependent tokens it was given offline (work outliving a request).
    "resource_server": ["urn:globus:auth:grant_type:dependent_token", "refresh_token"],
    "hybrid_confidential_client_resource_server": [
        "authorization_code", "client_credentials", "refresh_token",
        "urn:globus:auth:grant_type:dependent_token",
    ],
}
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class NewClient:
    client: Client
    credential: ClientCredential | None
    secret: str | None


def grant_types(client: Client) -> list[str]:
    return GRANT_TYPES[client.client_type]


def has_secrets(client: Client) -> bool:
    """Whether the client's type authenticates with secrets (all but native apps)."""
    return client.client_type in _TYPES_WITH_SECRETS


def create_client(
    session: Session,
    name: str,
    client_type: str,
    *,
    redirect_uris: list[str] | None = None,
    client_id: uuid.UUID | None = None,
    project_id: uuid.UUID | None = None,
    parent_client_id: uuid.UUID | None = None,
    visibility: str = "private",
    is_template: bool = False,
    builtin: bool = False,
    resource_server: str | None = None,
    credential_name: str = "Auto-created at client creation",
    with_secret: bool = True,
) -> NewClient:
    """Register a client (with its own identity), and a first secret when its type has one."""
    if client_type not in CLIENT_TYPES:
        raise bad_request(f"Unknown client_type {client_type!r}; one of {', '.join(CLIENT_TYPES)}")
    name = name.strip()
    if not name or len(name) > 200:
        raise bad_request("A client name must have 1 to 200 characters")
    uris = [check_redirect_uri_syntax(uri) for uri in (redirect_uris or [])]
    client = Client(
        id=client_id or uuid.uuid4(),
        name=name,
        client_type=client_type,
        project_id=project_id,
        parent_client_id=parent_client_id,
        redirect_uris=uris,
        visibility=visibility,
        is_template=is_template,
        builtin=builtin,
        links={},
        fqdns=[],
    )
    if client_type in _RESOURCE_SERVER_TYPES or resource_server:
        client.resource_server = resource_server or str(client.id)
    session.add(client)
    session.add(Identity(
        id=client.id,
        username=f"{client.id}@{CLIENTS_DOMAIN}",
        name=name,
        identity_provider_id=CLIENTS_IDP_ID,
        identity_type="client",
        status="used",
    ))
    session.flush()
    if client_type not in _TYPES_WITH_SECRETS or not with_secret:
        return NewClient(client, None, None)
    credential, secret = add_credential(session, client, credential_name)
    return NewClient(client, credential, secret)


def add_credential(session: Session, client: Client, name: str) -> tuple[ClientCredential, str]:
    if client.client_type not in _TYPES_WITH_SECRETS:
        raise bad_request("A public client has no credentials")
    secret = new_secret()
    credential = ClientCredential(client_id=client.id, name=name, secret_digest=digest(secret))
    session.add(credential)
    session.flush()
    return credential, secret


def check_redirect_uri_syntax(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise bad_request(f"Invalid redirect URI {uri!r}: an absolute http(s) URI without fragment")
    return uri


def get_client(session: Session, client_id: str | uuid.UUID) -> Client | None:
    try:
        key = client_id if isinstance(client_id, uuid.UUID) else uuid.UUID(str(client_id))
    except ValueError:
        return None
    return session.get(Client, key)


def require_client(session: Session, client_id: str | uuid.UUID) -> Client:
    client = get_client(session, client_id)
    if client is None:
        raise not_found(f"No client with id {client_id}")
    return client


def list_clients(session: Session) -> list[Client]:
    return list(session.scalars(select(Client).order_by(Client.created, Client.name)))


def delete_client(session: Session, client: Client) -> None:
    """Remove a client; its credentials, tokens and child instances go with it."""
    if client.builtin:
        raise APIError(403, "FORBIDDEN", "Built-in clients cannot be deleted")
    for token in session.scalars(select(Token).where(Token.client_id == client.id)):
        token.revoked = True
    session.flush()
    identity = session.get(Identity, client.id)
    session.delete(client)
    if identity is not None:
        identity.status = "closed"
    session.flush()


# --- client authentication -------------------------------------------------


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``Basic base64(id:secret)`` as the SDK sends it (the parts are not URL-encoded)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client("Malformed Basic authorization header") from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise invalid_client("Malformed Basic authorization header")
    return client_id, secret


# The client and its secrets' digests in one query, built once: this runs on
# every token, introspection and revocation request.
_CLIENT_AND_DIGESTS = (
    select(Client, ClientCredential.secret_digest)
    .outerjoin(ClientCredential, ClientCredential.client_id == Client.id)
    .where(Client.id == bindparam("client_id"))
)


@dataclass(frozen=True)
class _KnownClient:
    """A client and its secrets' digests as a recent successful authentication saw them."""

    client: Client
    digests: tuple[str, ...]


def authenticate_confidential(
    session: Session, client_id: str, secret: str, *, cached: bool = False
) -> Client:
    """The client these credentials belong to, or ``invalid_client``.

    With ``cached``, a client that authenticated within the last second is
    checked against the digests seen then (see ``lookup_cache``); the client
    returned is then a detached copy, fit for reading only.
    """
    try:
        key = uuid.UUID(str(client_id))
    except ValueError:
        key = None
    cache = lookup_cache.cache_for(session, "clients") if cached and key else None
    known: _KnownClient | None = cache.get(key) if cache is not None else None
    if known is not None and any(same_digest(secret, stored) for stored in known.digests):
        return known.client
    rows = session.execute(_CLIENT_AND_DIGESTS, {"client_id": key}).all() if key else []
    client = rows[0][0] if rows else None
    if client is None or client.client_type not in _TYPES_WITH_SECRETS:
        # Spend the same digest work as a real check, so timing tells nothing.
        same_digest(secret, "0" * 64)
        raise invalid_client()
    digests = tuple(stored for _, stored in rows if stored is not None)
    if not any(same_digest(secret, stored) for stored in digests):
        raise invalid_client()
    if cache is not None:
        cache.put(key, _KnownClient(lookup_cache.detached_copy(client), digests))
    return client


def authenticate(
    session: Session,
    authorization: str | None,
    form: dict[str, Any],
    *,
    allow_public: bool = True,
    cached: bool = False,
) -> Client:
    """Who is calling a token endpoint: Basic credentials, or a public client's id in the body.

    ``cached`` is for callers that only read the client (see ``authenticate_confidential``).
    """
    basic = parse_basic(authorization)
    if basic is not None:
        return authenticate_confidential(session, *basic, cached=cached)
    if authorization:
        raise invalid_client("Unsupported authorization scheme")
    client_id = form.get("client_id")
    if isinstance(client_id, str) and client_id:
        if "client_secret" in form:
            secret = form.get("client_secret")
            if not isinstance(secret, str):
                raise invalid_client()
            return authenticate_confidential(session, client_id, secret, cached=cached)
        client = get_client(session, client_id)
        if client is None:
            raise invalid_client("Unknown client")
        if not client.public_client:
            raise invalid_client("This client must authenticate with its secret")
        if not allow_public:
            raise invalid_client("This call needs a confidential client")
        return client
    raise invalid_client("Call must be authenticated")


# --- redirect URIs ---------------------------------------------------------


def behaves_as_native(session: Session, client: Client) -> bool:
    """Native clients and instances of a native template follow RFC 8252's rules."""
    if client.public_client:
        return True
    if client.parent_client_id is None:
        return False
    parent = session.get(Client, client.parent_client_id)
    return parent is not None and parent.is_template


def redirect_uri_allowed(
    session: Session, client: Client, redirect_uri: str, own_hosts: set[str], auth_code_path: str
) -> bool:
    if redirect_uri in client.redirect_uris:
        return True
    # Control characters (NUL above all) are never part of a URI a native app listens on.
    if not redirect_uri.isprintable() or not behaves_as_native(session, client):
        return False
    try:
        parts = urlsplit(redirect_uri)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return False
    if parts.fragment or parts.username or parts.password or parts.hostname is None:
        return False
    host = unquote(parts.hostname).lower()
    # RFC 8252 7.3: any port on the loopback interface.
    if parts.scheme == "http" and _is_loopback(host):
        return True
    # The page that shows the code, on any of this server's names.
    return parts.scheme in ("http", "https") and host in own_hosts and (
        parts.path == auth_code_path
    )


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def find_credential(
    session: Session, client: Client, credential_id: str
) -> ClientCredential | None:
    try:
        key = uuid.UUID(credential_id)
    except ValueError:
        return None
    credential = session.get(ClientCredential, key)
    return credential if credential is not None and credential.client_id == client.id else None
