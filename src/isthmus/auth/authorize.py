"""The authorization endpoint's rules: which requests are valid and how codes are made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy.orm import Session

from isthmus.auth import clients, rfc7636, scopes, session_requirements
from isthmus.auth.models import AuthorizationCode, BrowserSession, Client, Identity
from isthmus.auth.scopes import ResolvedScope
from isthmus.auth.session_requirements import SessionRequirements
from isthmus.core.config import Settings
from isthmus.core.db import utcnow
from isthmus.core.errors import APIError
from isthmus.core.secrets import digest, new_secret

MAX_NONCE_LENGTH = 512


class AuthorizePageError(APIError):
    """A request that cannot be sent back to the client: shown to the user instead."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "BAD_REQUEST", message, oauth_error="invalid_request")


class AuthorizeRedirectError(Exception):
    """A request error the client learns of through its redirect URI (RFC 6749 4.1.2.1)."""

    def __init__(self, request_redirect: str, state: str | None, error: str, description: str):
        super().__init__(description)
        self.location = with_params(
            request_redirect, error=error, error_description=description, state=state
        )


@dataclass
class AuthorizationRequest:
    client: Client
    redirect_uri: str
    roots: list[ResolvedScope]
    state: str | None
    offline: bool
    code_challenge: str | None
    prompt_login: bool
    # The query string as received, carried through the login and consent forms.
    query: str
    # OpenID Connect: repeated in the ID token, so the client knows it answers this request.
    nonce: str | None = None
    # session_required_* and session_message: what the browser session must show.
    requirements: SessionRequirements = field(default_factory=SessionRequirements)

    @property
    def scope_tree(self) -> str:
        return " ".join(root.serialize() for root in self.roots)


def with_params(uri: str, **params: str | None) -> str:
    parts = urlsplit(uri)
    extra = urlencode({key: value for key, value in params.items() if value is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def own_hosts(settings: Settings) -> set[str]:
    public_host = urlsplit(settings.public_url).hostname or ""
    return {public_host.lower(), settings.host.lower(), "localhost", "127.0.0.1", "::1"}


def auth_code_path(settings: Settings) -> str:
    return urlsplit(settings.public_url).path + "v2/web/auth-code"


def parse_request(
    session: Session, params: Mapping[str, str], query: str, settings: Settings
) -> AuthorizationRequest:
    client = clients.get_client(session, params.get("client_id", ""))
    if client is None:
        raise AuthorizePageError("Unknown client_id: this application is not registered.")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or not clients.redirect_uri_allowed(
        session, client, redirect_uri, own_hosts(settings), auth_code_path(settings)
    ):
        raise AuthorizePageError(
            "The redirect_uri is not registered for this client; no redirect was made."
        )
    state = params.get("state")

    def fail(error: str, description: str) -> AuthorizeRedirectError:
        return AuthorizeRedirectError(redirect_uri, state, error, description)

    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "Only response_type=code is supported")
    if "authorization_code" not in clients.grant_types(client):
        raise fail("unauthorized_client", "This client may not use the authorization code grant")
    challenge = params.get("code_challenge")
    if challenge is not None:
        if params.get("code_challenge_method", "plain") != "S256":
            raise fail("invalid_request", "code_challenge_method must be S256")
        if not rfc7636.is_valid_challenge(challenge):
            raise fail("invalid_request", "Malformed code_challenge")
    elif client.public_client:
        raise fail("invalid_request", "Native apps must use PKCE (code_challenge, S256)")
    nonce = params.get("nonce")
    if nonce is not None and not 0 < len(nonce) <= MAX_NONCE_LENGTH:
        raise fail("invalid_request", f"nonce must have 1 to {MAX_NONCE_LENGTH} characters")
    try:
        requirements = session_requirements.parse(session, params)
    except session_requirements.RequirementError as error:
        raise fail("invalid_request", str(error)) from None
    access_type = params.get("access_type", "online")
    if access_type not in ("online", "offline"):
        raise fail("invalid_request", "access_type must be online or offline")
    try:
        roots = scopes.resolve(session, params.get("scope", ""))
    except APIError as error:
        raise fail("invalid_scope", error.message) from None
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        roots=roots,
        state=state,
        offline=access_type == "offline",
        code_challenge=challenge,
        prompt_login=params.get("prompt") == "login",
        query=query,
        nonce=nonce,
        requirements=requirements,
    )


def issue_code(
    session: Session,
    request: AuthorizationRequest,
    identity: Identity,
    browser_session: BrowserSession,
    lifetime: int,
) -> str:
    """Store a single-use code and return the redirect that delivers it."""
    code = new_secret()
    session.add(AuthorizationCode(
        digest=digest(code),
        client_id=request.client.id,
        identity_id=identity.id,
        session_id=browser_session.id,
        redirect_uri=request.redirect_uri,
        scope=request.scope_tree,
        code_challenge=request.code_challenge,
        nonce=request.nonce,
        offline=request.offline,
        expires_at=utcnow() + timedelta(seconds=lifetime),
    ))
    session.flush()
    return with_params(request.redirect_uri, code=code, state=request.state)
