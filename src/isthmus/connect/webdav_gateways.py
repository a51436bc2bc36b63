"""WebDAV storage gateways and their OAuth2 user credentials (``user-credentials oauth-create``).

A WebDAV gateway names an upstream WebDAV folder (Nextcloud, ownCloud, CERNBox, another
Isthmus's collection) and the upstream's OAuth2 authorization server with the client this
endpoint is there. Its client secret is sealed (`SecretBox`) and never shown.

A user grants the endpoint access in their browser (RFC 6749 authorization code with PKCE,
RFC 7636): `start` answers the upstream's authorize URL, whose ``state`` is sealed and holds
everything about the credential-to-be (its id, gateway, identity, connector username, the
PKCE verifier, an expiry), so nothing is stored before the upstream says yes, and a state
that was tampered with, comes from elsewhere or is stale opens to nothing. `finish`, at
``/api/v1/authcallback``, redeems the code and only then creates the credential, its
tokens sealed. `CredentialTokens` gives a credential's access token to the WebDAV
connector, refreshing it when it expires; a refresh the upstream refuses marks the
credential invalid.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from isthmus.connect import authz, documents, gateway_policies, schemas
from isthmus.connect.authz import Caller
from isthmus.connect.connectors import ConnectorLease, ConnectorPool
from isthmus.connect.errors import exists, gcs_error, invalid_input
from isthmus.connect.models import Endpoint, StorageGateway, UserCredential
from isthmus.connect.schemas import InvalidValueError
from isthmus.core.db import reading, transaction
from isthmus.core.encryption import SealedValueError, SecretBox
from isthmus.core.errors import APIError
from isthmus.core.identities import IdentityDirectory
from isthmus.storage.connector import Connector
from isthmus.storage.errors import PermissionDenied, StorageUnavailable

logger = logging.getLogger("isthmus.connect")

CALLBACK_PATH = "/api/v1/authcallback"
COMPLETE_PATH = "/api/v1/authclicomplete"
# Where a gateway keeps its sealed client secret and a credential its sealed tokens: never
# in a document the API shows.
SEALED_SECRET = documents.SEALED_SECRET
SEALED_TOKENS = "sealed_tokens"
TOKEN_EXPIRY = "token_expiry"  # seconds since the epoch; not secret, shown in no document
STATE_SECONDS = 900
# Refresh a little before the upstream would refuse the token.
REFRESH_MARGIN_SECONDS = 60
TIMEOUT_SECONDS = 15.0
MAX_TOKEN_RESPONSE = 64 * 1024
_STATE_PURPOSE = "webdav-oauth-state"


def _https_url(value: Any) -> str:
    url: str = schemas.text(2048, single_line=True, non_empty=True)(value)
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.fragment or parts.username:
        raise InvalidValueError("must be an https:// URL")
    return url


_name = schemas.text(256, single_line=True, non_empty=True)
gateway_policies_schema = schemas.typed_document("webdav_storage_policies", {
    "webdav_url": _https_url,
    "oauth_authorize_url": _https_url,
    "oauth_token_url": _https_url,
    "oauth_client_id": _name,
    "oauth_client_secret": schemas.text(1024, single_line=True, non_empty=True),
    "oauth_scopes": schemas.text_list(64, _name),
    "ca_certificates": schemas.text(65536),
}, required=("webdav_url", "oauth_authorize_url", "oauth_token_url", "oauth_client_id"))
credential_policies_schema = schemas.typed_document("webdav_user_credential_policies", {})


def _secret_purpose(gateway_id: uuid.UUID) -> str:
    return f"webdav-client-secret:{gateway_id}"


def _tokens_purpose(credential_id: uuid.UUID) -> str:
    return f"webdav-tokens:{credential_id}"


def seal_policies(gateway: StorageGateway, stored: dict[str, Any], box: SecretBox | None) -> None:
    """Move a client secret sent in the policies into its sealed place (keeping the sealed
    one when none is sent); a gateway without one, or without policies, is refused."""
    policies = stored.get("policies")
    if not isinstance(policies, dict):
        raise invalid_input("storage_gateway", [("policies", "is required for WebDAV: a "
                                                 "webdav_storage_policies document")])
    if policies.get("ca_certificates"):
        try:
            ssl.create_default_context(cadata=policies["ca_certificates"])
        except (ssl.SSLError, ValueError):
            raise invalid_input("storage_gateway", [(
                "policies", "ca_certificates holds no PEM certificate")]) from None
    secret = policies.pop("oauth_client_secret", None)
    if secret is not None:
        if box is None:
            raise gcs_error(422, "This server cannot keep secrets (no encryption key)")
        stored[SEALED_SECRET] = box.seal(secret, _secret_purpose(gateway.id))
    if not stored.get(SEALED_SECRET):
        raise invalid_input("storage_gateway", [("policies", "needs oauth_client_secret")])


@dataclass(frozen=True)
class Upstream:
    """A WebDAV gateway's upstream: its folder, its OAuth2 server and this endpoint's client."""

    webdav_url: str
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    ca_certificates: str | None

    @classmethod
    def of(cls, gateway: StorageGateway, box: SecretBox) -> Upstream:
        policies = gateway.document.get("policies") or {}
        try:
            secret = box.open(str(gateway.document.get(SEALED_SECRET)),
                              _secret_purpose(gateway.id))
        except SealedValueError:
            raise gcs_error(422, f"Storage gateway {gateway.id}'s client secret cannot be "
                            "opened; set it again") from None
        return cls(webdav_url=policies["webdav_url"],
                   authorize_url=policies["oauth_authorize_url"],
                   token_url=policies["oauth_token_url"], client_id=policies["oauth_client_id"],
                   client_secret=secret, scopes=tuple(policies.get("oauth_scopes") or ()),
                   ca_certificates=policies.get("ca_certificates"))

    def verify(self) -> ssl.SSLContext:
        if self.ca_certificates:
            return ssl.create_default_context(cadata=self.ca_certificates)
        return ssl.create_default_context()

    def token_request(self, form: Mapping[str, str]) -> dict[str, Any]:
        """A token endpoint request (client_secret_basic); its JSON document, or an
        `UpstreamRefusalError` saying what the upstream said."""
        import httpx  # on first use: a server that never reaches WebDAV skips its import

        try:
            with httpx.Client(verify=self.verify(), timeout=TIMEOUT_SECONDS) as client:
                response = client.post(self.token_url, data=dict(form),
                                       auth=(self.client_id, self.client_secret),
                                       headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise UpstreamRefusalError(f"The upstream's token endpoint cannot be reached "
                                  f"({type(error).__name__})") from None
        try:
            document = response.json() if len(response.content) <= MAX_TOKEN_RESPONSE else None
        except ValueError:
            document = None
        if response.status_code != 200 or not isinstance(document, dict):
            said = document.get("error") if isinstance(document, dict) else None
            detail = f": {str(said)[:100]}" if said else ""
            raise UpstreamRefusalError(f"The upstream's token endpoint refused (HTTP "
                                       f"{response.status_code}{detail})",
                                       response.status_code)
        return document


class UpstreamRefusalError(Exception):
    """The upstream refused (``status``) or could not be asked (None); the message is safe
    to show."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# --- starting: the authorize URL ------------------------------------------------------------


def is_webdav(gateway: StorageGateway) -> bool:
    return gateway.connector_id == documents.WEBDAV_CONNECTOR_ID


def _gateway(session: Session, endpoint: Endpoint, gateway_id: str) -> StorageGateway:
    try:
        gateway = session.get(StorageGateway, uuid.UUID(gateway_id))
    except ValueError:
        gateway = None
    if gateway is None or gateway.endpoint_id != endpoint.id:
        raise gcs_error(422, f"Storage Gateway {gateway_id} not found",
                        {"DATA_TYPE": "storage_gateway_not_found#1.0.0",
                         "storage_gateway_id": gateway_id})
    if not is_webdav(gateway):
        raise gcs_error(422, f"Storage Gateway {gateway_id}'s connector does not use OAuth "
                        "credentials; on this server only WebDAV gateways do")
    return gateway


def _code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def start(session: Session, endpoint: Endpoint, caller: Caller, form: Mapping[str, str],
          box: SecretBox, directory: IdentityDirectory) -> str:
    """The upstream's authorize URL for a credential-to-be (POST /api/v1/user_credentials)."""
    gateway = _gateway(session, endpoint, form.get("storage_gateway", ""))
    try:
        identity_id = uuid.UUID(form.get("identity_id") or str(caller.identity_id))
    except ValueError:
        raise invalid_input("user_credential", [("identity_id", "must be a UUID")]) from None
    admin = bool(gateway.document.get("admin_managed_credentials")) and authz.caller_roles(
        session, endpoint, caller).endpoint_admin
    if identity_id not in caller.identities and not admin:
        raise gcs_error(403, f"Identity {identity_id} is not in your identity set",
                        {"DATA_TYPE": "id_not_in_identity_set#1.0.0", "id": str(identity_id)})
    found = directory.lookup_identities([identity_id]).get(identity_id)
    if found is None:
        raise invalid_input("user_credential", [("identity_id", "names no identity")])
    allowed = list(gateway.document.get("allowed_domains") or ())
    if not gateway_policies.in_allowed_domains({"id": str(identity_id),
                                                "username": found.username}, allowed):
        error = gateway_policies.NotFromAllowedDomainError(allowed)
        raise gcs_error(403, error.message, error.detail)
    username = (form.get("login_hint") or found.username).strip()
    if not username or len(username) > 256 or not username.isprintable():
        raise invalid_input("user_credential", [("login_hint", "is not a username")])
    redirect_uri = form.get("redirect_uri") or endpoint.manager_url + COMPLETE_PATH
    if not redirect_uri.startswith(endpoint.manager_url + "/") or len(redirect_uri) > 220:
        raise invalid_input("user_credential", [("redirect_uri", "must be a page of this "
                                                 "endpoint")])
    _refuse_duplicate(session, gateway, identity_id, found.username, username)
    upstream = Upstream.of(gateway, box)
    verifier = secrets.token_urlsafe(48)
    state = box.seal(json.dumps({
        "credential_id": str(uuid.uuid4()), "gateway_id": str(gateway.id),
        "identity_id": str(identity_id), "identity_username": found.username,
        "username": username, "verifier": verifier, "redirect_uri": redirect_uri,
        "expires": time.time() + STATE_SECONDS,
    }), _STATE_PURPOSE)
    query = {"response_type": "code", "client_id": upstream.client_id,
             "redirect_uri": callback_url(endpoint), "scope": " ".join(upstream.scopes),
             "state": state, "code_challenge": _code_challenge(verifier),
             "code_challenge_method": "S256", "access_type": "offline",
             "login_hint": username}
    separator = "&" if urlsplit(upstream.authorize_url).query else "?"
    return upstream.authorize_url + separator + urlencode(query)


def callback_url(endpoint: Endpoint) -> str:
    return endpoint.manager_url + CALLBACK_PATH


def _refuse_duplicate(session: Session, gateway: StorageGateway, identity_id: uuid.UUID,
                      identity_username: str, username: str) -> None:
    duplicate = session.scalar(select(UserCredential.id).where(
        UserCredential.storage_gateway_id == gateway.id,
        UserCredential.identity_id == identity_id, UserCredential.username == username))
    if duplicate is not None:
        raise exists(f"Identity {identity_username} already has user credential {duplicate} "
                     f"for {username} on storage gateway {gateway.id}")


# --- finishing: the callback ----------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """A credential-to-be, as the sealed state says."""

    credential_id: uuid.UUID
    gateway_id: uuid.UUID
    identity_id: uuid.UUID
    identity_username: str
    username: str
    verifier: str
    redirect_uri: str


class CallbackError(Exception):
    """A callback that cannot make a credential; the message is for the user's browser."""


def open_state(box: SecretBox, state: str) -> Pending:
    try:
        values = json.loads(box.open(state, _STATE_PURPOSE))
        pending = Pending(
            credential_id=uuid.UUID(values["credential_id"]),
            gateway_id=uuid.UUID(values["gateway_id"]),
            identity_id=uuid.UUID(values["identity_id"]),
            identity_username=str(values["identity_username"]),
            username=str(values["username"]), verifier=str(values["verifier"]),
            redirect_uri=str(values["redirect_uri"]))
        expires = float(values["expires"])
    except (SealedValueError, ValueError, KeyError, TypeError):
        raise CallbackError("This sign-in cannot be completed: its state is not one this "
                            "endpoint issued.") from None
    if expires < time.time():
        raise CallbackError("This sign-in took too long; run oauth-create again.")
    return pending


def finish(sessions: sessionmaker[Session], endpoint_id: uuid.UUID, box: SecretBox,
           query: Mapping[str, str]) -> tuple[UserCredential, str]:
    """The credential a callback completes, and where the browser goes next."""
    pending = open_state(box, query.get("state", ""))
    if query.get("error"):
        raise CallbackError(f"The upstream refused access: {query['error'][:100]}.")
    code = query.get("code")
    if not code:
        raise CallbackError("The upstream sent no authorization code.")
    with reading(sessions) as session:
        endpoint = session.get(Endpoint, endpoint_id)
        gateway = session.get(StorageGateway, pending.gateway_id)
        if endpoint is None or gateway is None or not is_webdav(gateway) or \
                gateway.endpoint_id != endpoint_id:
            raise CallbackError("The storage gateway of this sign-in no longer exists.")
        if session.get(UserCredential, pending.credential_id) is not None:
            raise CallbackError("This sign-in was already completed.")
        upstream = Upstream.of(gateway, box)
        redirect = callback_url(endpoint)
    # The code is redeemed outside any transaction: the upstream may be slow.
    try:
        tokens = _tokens(upstream.token_request({
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "code_verifier": pending.verifier}), None)
    except UpstreamRefusalError as refusal:
        raise CallbackError(f"{refusal}.") from None
    with transaction(sessions) as session:
        gateway = session.get(StorageGateway, pending.gateway_id)
        if gateway is None or session.get(UserCredential, pending.credential_id) is not None:
            raise CallbackError("This sign-in was already completed.")
        try:
            _refuse_duplicate(session, gateway, pending.identity_id, pending.identity_username,
                              pending.username)
        except APIError as duplicate:
            raise CallbackError(duplicate.message) from None
        credential = UserCredential(
            id=pending.credential_id, endpoint_id=endpoint_id, storage_gateway_id=gateway.id,
            identity_id=pending.identity_id, identity_username=pending.identity_username,
            username=pending.username, display_name=None, invalid=False,
            document={"policies": {"DATA_TYPE": "webdav_user_credential_policies#1.0.0"},
                      "home_directory": None})
        _store(credential, tokens, box)
        session.add(credential)
        session.flush()
    separator = "&" if "?" in pending.redirect_uri else "?"
    return credential, (f"{pending.redirect_uri}{separator}"
                        f"{urlencode({'user_credential_id': str(credential.id)})}")


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: float


def _tokens(document: Mapping[str, Any], previous: Tokens | None) -> Tokens:
    access = document.get("access_token")
    if not isinstance(access, str) or not access:
        raise UpstreamRefusalError("The upstream sent no access token")
    refresh = document.get("refresh_token")
    expires_in = document.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
    return Tokens(access, refresh if isinstance(refresh, str) and refresh else
                  (previous.refresh_token if previous else None), time.time() + lifetime)


def _store(credential: UserCredential, tokens: Tokens, box: SecretBox) -> None:
    sealed = box.seal(json.dumps({"access_token": tokens.access_token,
                                  "refresh_token": tokens.refresh_token}),
                      _tokens_purpose(credential.id))
    credential.document = {**credential.document, SEALED_TOKENS: sealed,
                           TOKEN_EXPIRY: tokens.expires_at}


def _load(credential: UserCredential, box: SecretBox) -> Tokens:
    try:
        values = json.loads(box.open(str(credential.document.get(SEALED_TOKENS)),
                                     _tokens_purpose(credential.id)))
    except (SealedValueError, ValueError):
        raise PermissionDenied(f"User credential {credential.id}'s tokens cannot be opened; "
                               "create it again") from None
    return Tokens(values["access_token"], values.get("refresh_token"),
                  float(credential.document.get(TOKEN_EXPIRY) or 0))


# --- using a credential ---------------------------------------------------------------------


_refreshing = threading.Lock()  # one refresh at a time: refresh tokens may rotate


class CredentialTokens:
    """A credential's current access token (the WebDAV connector's token source)."""

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox,
                 credential_id: uuid.UUID) -> None:
        self.sessions = sessions
        self.box = box
        self.credential_id = credential_id

    def _current(self) -> tuple[Tokens, Upstream]:
        with reading(self.sessions) as session:
            credential = session.get(UserCredential, self.credential_id)
            if credential is None or credential.invalid:
                raise PermissionDenied(f"User credential {self.credential_id} is no longer "
                                       "valid; create it again with oauth-create")
            gateway = session.get(StorageGateway, credential.storage_gateway_id)
            assert gateway is not None  # a foreign key keeps it
            return _load(credential, self.box), Upstream.of(gateway, self.box)

    def __call__(self) -> str:
        tokens, upstream = self._current()
        if tokens.expires_at > time.time() + REFRESH_MARGIN_SECONDS:
            return tokens.access_token
        with _refreshing:
            tokens, upstream = self._current()  # another thread may have refreshed it
            if tokens.expires_at > time.time() + REFRESH_MARGIN_SECONDS:
                return tokens.access_token
            return self._refresh(tokens, upstream).access_token

    def _refresh(self, tokens: Tokens, upstream: Upstream) -> Tokens:
        if tokens.refresh_token is None:
            self._invalidate("its access token expired and the upstream gave no refresh token")
        try:
            fresh = _tokens(upstream.token_request({
                "grant_type": "refresh_token", "refresh_token": str(tokens.refresh_token)}),
                tokens)
        except UpstreamRefusalError as refusal:
            if refusal.status is not None and 400 <= refusal.status < 500:
                self._invalidate(f"the upstream refused to refresh it ({refusal})")
            raise StorageUnavailable(str(refusal)) from None
        with transaction(self.sessions) as session:
            credential = session.get(UserCredential, self.credential_id)
            if credential is None:
                raise PermissionDenied(f"User credential {self.credential_id} was deleted")
            _store(credential, fresh, self.box)
        return fresh

    def _invalidate(self, why: str) -> None:
        with transaction(self.sessions) as session:
            credential = session.get(UserCredential, self.credential_id)
            if credential is not None:
                credential.invalid = True
        logger.info("user credential %s is now invalid: %s", self.credential_id, why)
        raise PermissionDenied(f"User credential {self.credential_id} cannot be used: {why}; "
                               "create it again with oauth-create")


def credential_for(session: Session, gateway: StorageGateway,
                   identities: frozenset[uuid.UUID] | set[uuid.UUID]) -> UserCredential | None:
    """The caller's valid credential on a gateway (their own identity's first)."""
    rows = list(session.scalars(select(UserCredential).where(
        UserCredential.storage_gateway_id == gateway.id,
        UserCredential.identity_id.in_(identities),
        UserCredential.invalid.is_(False)).order_by(UserCredential.created)))
    return rows[0] if rows else None


def lease_connector(pool: ConnectorPool, sessions: sessionmaker[Session], box: SecretBox,
                    gateway: StorageGateway, credential: UserCredential,
                    base_path: str) -> ConnectorLease:
    """The gateway's upstream folder (below ``base_path``) as the credential's holder, from
    the pool: one connector per (folder URL, credential, trusted CAs), so its keep-alive
    HTTPS connections serve one session after another. Only the credential's holder is lent
    it, and its token source reads the credential afresh for each request (a revoked or
    deleted one stops it at once)."""
    upstream = Upstream.of(gateway, box)
    url = (upstream.webdav_url.rstrip("/") + "/" + quote(base_path.strip("/"))).rstrip("/")
    trusted = hashlib.sha256((upstream.ca_certificates or "").encode()).hexdigest()

    def open_connector() -> Connector:
        from isthmus.storage.webdav import WebDAVConnector  # imports httpx: on first use

        return WebDAVConnector(url, CredentialTokens(sessions, box, credential.id),
                               verify=upstream.verify())

    return pool.lease_webdav((url, credential.id, trusted), open_connector)
