"""The endpoint's own OpenID Connect provider: the protocol side (`oidc_api` routes it).

OpenID Connect Core 1.0, authorization-code flow only, for one client: Auth
(`oidc register` gave it the client id and secret). The authorization request is
checked (client, exact redirect URI, ``code``, ``openid``, PKCE S256) before any form
is shown, and again when the form comes back; a request naming an unknown client or
redirect URI never redirects anywhere. The password goes to PAM (`pam`), failures are
counted per account and per address (`check_throttle`), and a success gives a code that
lives a minute and is redeemed once, with the client's secret and the PKCE verifier.
The ID token's subject is ``<account>@<domain>``; the access token (a JWT for the
userinfo endpoint only) carries the same.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import pwd
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from isthmus.connect.models import OIDCCode, OIDCLoginFailure, OIDCServer
from isthmus.core.db import utcnow
from isthmus.core.encryption import SealedValueError, SecretBox
from isthmus.core.jwk import rsa_thumbprint
from isthmus.core.secrets import digest, new_secret, same_digest

ISSUER_PATH = "/oidc"
ALGORITHM = "RS256"
CODE_LIFETIME = timedelta(seconds=60)
ID_TOKEN_SECONDS = 300
ACCESS_TOKEN_SECONDS = 600
SCOPES = ("openid", "profile", "email")
# Local accounts only: lower case (Isthmus usernames are), as useradd makes them.
_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_PKCE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
THROTTLE_WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 50


def signing_key_purpose(server: OIDCServer) -> str:
    return f"oidc-signing-key:{server.endpoint_id}"


class ProtocolError(Exception):
    """A refused request. ``redirect``: the client's redirect URI checked out, so the
    error goes back there (RFC 6749 §4.1.2.1); otherwise a page shows it."""

    def __init__(self, error: str, description: str, status: int = 400,
                 redirect: str | None = None, state: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.redirect = redirect
        self.state = state

    def redirect_location(self) -> str | None:
        if self.redirect is None:
            return None
        params = {"error": self.error, "error_description": self.description}
        if self.state is not None:
            params["state"] = self.state
        return _with_query(self.redirect, params)


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def require_server(session: Session, endpoint_id: Any) -> OIDCServer:
    server = session.get(OIDCServer, endpoint_id)
    if server is None:
        raise ProtocolError("not_found", "This endpoint has no OpenID Connect provider", 404)
    return server


# --- keys and documents -------------------------------------------------------------------


def new_signing_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


@dataclass(frozen=True)
class Signer:
    pem: str

    def public_jwk(self) -> dict[str, Any]:
        from jwt.algorithms import RSAAlgorithm

        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self._key().public_key()))
        return {**jwk, "kid": rsa_thumbprint(jwk), "alg": ALGORITHM, "use": "sig"}

    def _key(self) -> Any:
        from cryptography.hazmat.primitives import serialization

        return serialization.load_pem_private_key(self.pem.encode("ascii"), password=None)

    def sign(self, claims: dict[str, Any]) -> str:
        import jwt

        return jwt.encode(claims, self._key(), algorithm=ALGORITHM,
                          headers={"kid": self.public_jwk()["kid"]})

    def verify(self, token: str, audience: str, issuer: str) -> dict[str, Any]:
        import jwt

        claims: dict[str, Any] = jwt.decode(
            token, self._key().public_key(), algorithms=[ALGORITHM], audience=audience,
            issuer=issuer, options={"require": ["iss", "aud", "exp", "sub"]})
        return claims


def signer(server: OIDCServer, box: SecretBox) -> Signer:
    try:
        return Signer(box.open(server.signing_key_sealed, signing_key_purpose(server)))
    except SealedValueError:
        raise ProtocolError("server_error", "The provider's signing key cannot be read with "
                            "this node's key; run 'globus-connect-server oidc delete' and "
                            "'oidc create' again", 503) from None


def discovery_document(server: OIDCServer) -> dict[str, Any]:
    issuer = server.issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "scopes_supported": list(SCOPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
                             "preferred_username", "name"],
    }


def key_set(server: OIDCServer, box: SecretBox) -> dict[str, Any]:
    return {"keys": [signer(server, box).public_jwk()]}


# --- the authorization request ------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str

    def form_fields(self) -> dict[str, str]:
        """What the login form carries back (checked again when it does)."""
        fields = {"client_id": self.client_id, "redirect_uri": self.redirect_uri,
                  "response_type": "code", "scope": self.scope,
                  "code_challenge": self.code_challenge, "code_challenge_method": "S256"}
        if self.state is not None:
            fields["state"] = self.state
        if self.nonce is not None:
            fields["nonce"] = self.nonce
        return fields


def _single(params: dict[str, str], name: str, limit: int = 2048) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if len(value) > limit or any(ord(char) < 0x20 for char in value):
        raise ProtocolError("invalid_request", f"The {name} parameter is malformed")
    return value


def check_request(server: OIDCServer, params: dict[str, str]) -> AuthorizationRequest:
    """The authorization request, or why not (to the client only once it is known)."""
    client_id = _single(params, "client_id", 200)
    if client_id is None or not same_digest(client_id, digest(server.client_id)):
        raise ProtocolError("unauthorized_client",
                            "Unknown client: this provider signs in to Isthmus Auth only")
    redirect_uri = _single(params, "redirect_uri")
    if redirect_uri is None or redirect_uri not in server.redirect_uris:
        raise ProtocolError("invalid_request",
                            "The redirect_uri is not the one registered for this client")
    state = _single(params, "state", 1024)

    def refuse(error: str, description: str) -> ProtocolError:
        return ProtocolError(error, description, redirect=redirect_uri, state=state)

    if params.get("response_type") != "code":
        raise refuse("unsupported_response_type", "Only response_type=code is supported")
    scope = " ".join(dict.fromkeys((_single(params, "scope", 1024) or "").split()))
    if "openid" not in scope.split():
        raise refuse("invalid_scope", "The scope must include openid")
    if not set(scope.split()) <= set(SCOPES):
        raise refuse("invalid_scope", f"Scopes offered: {' '.join(SCOPES)}")
    challenge = params.get("code_challenge") or ""
    if params.get("code_challenge_method") != "S256" or not _PKCE.match(challenge):
        raise refuse("invalid_request", "PKCE is required: a code_challenge with "
                     "code_challenge_method=S256")
    return AuthorizationRequest(client_id=client_id, redirect_uri=redirect_uri, scope=scope,
                                state=state, nonce=_single(params, "nonce", 512),
                                code_challenge=challenge)


# --- signing in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginRefused:
    message: str
    status: int


def _throttle_keys(account: str, address: str | None) -> list[tuple[str, int]]:
    # A name no account can have (NUL, markup, any length) is counted by its digest.
    name = account if _ACCOUNT.match(account) else f"#{digest(account)}"
    keys = [(f"account:{name}", ACCOUNT_LIMIT)]
    if address:
        keys.append((f"address:{address[:100]}", ADDRESS_LIMIT))
    return keys


def check_throttle(session: Session, server: OIDCServer, account: str,
                   address: str | None) -> LoginRefused | None:
    """Too many recent failures for this account or address: refused before PAM is asked."""
    since = utcnow() - THROTTLE_WINDOW
    for key, limit in _throttle_keys(account, address):
        count, oldest = session.execute(
            select(func.count(), func.min(OIDCLoginFailure.at)).where(
                OIDCLoginFailure.endpoint_id == server.endpoint_id,
                OIDCLoginFailure.key == key, OIDCLoginFailure.at > since)).one()
        if count >= limit and oldest is not None:
            seconds = max(1, int((oldest + THROTTLE_WINDOW - utcnow()).total_seconds()))
            return LoginRefused(f"Too many failed logins. Try again in "
                                f"{max(1, math.ceil(seconds / 60))} minute(s).", 429)
    return None


def record_failure(session: Session, server: OIDCServer, account: str,
                   address: str | None) -> None:
    now = utcnow()
    session.execute(delete(OIDCLoginFailure).where(OIDCLoginFailure.at <= now - THROTTLE_WINDOW))
    for key, _limit in _throttle_keys(account, address):
        session.add(OIDCLoginFailure(endpoint_id=server.endpoint_id, key=key, at=now))
    session.flush()


def record_success(session: Session, server: OIDCServer, account: str) -> None:
    session.execute(delete(OIDCLoginFailure).where(
        OIDCLoginFailure.endpoint_id == server.endpoint_id,
        OIDCLoginFailure.key == _throttle_keys(account, None)[0][0]))


def check_account(account: str) -> LoginRefused | None:
    """Names PAM is never asked about: not a local account's name, or the superuser."""
    if not _ACCOUNT.match(account):
        return LoginRefused("Wrong username or password.", 401)
    try:
        if pwd.getpwnam(account).pw_uid == 0:
            return LoginRefused("The superuser cannot sign in here.", 403)
    except KeyError:
        pass  # PAM says no, in the same time and words as for a wrong password
    return None


def issue_code(session: Session, server: OIDCServer, request: AuthorizationRequest,
               account: str) -> str:
    """Where the browser goes back to, with a new code for the account that signed in."""
    now = utcnow()
    session.execute(delete(OIDCCode).where(OIDCCode.expires_at <= now))
    code = new_secret()
    session.add(OIDCCode(digest=digest(code), endpoint_id=server.endpoint_id,
                         username=account, redirect_uri=request.redirect_uri,
                         code_challenge=request.code_challenge, nonce=request.nonce,
                         expires_at=now + CODE_LIFETIME))
    session.flush()
    params = {"code": code}
    if request.state is not None:
        params["state"] = request.state
    return _with_query(request.redirect_uri, params)


# --- the token and userinfo endpoints -----------------------------------------------------


class TokenError(Exception):
    """RFC 6749 §5.2: the JSON error of the token endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def authenticate_client(server: OIDCServer, basic: tuple[str, str] | None,
                        form: dict[str, str]) -> None:
    if basic is not None:
        client_id, secret = basic
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not (client_id and secret and same_digest(client_id, digest(server.client_id))
            and same_digest(secret, server.client_secret_digest)):
        raise TokenError("invalid_client", "Unknown client or wrong client secret", 401)


def redeem(session: Session, server: OIDCServer, box: SecretBox,
           form: dict[str, str]) -> dict[str, Any] | TokenError:
    """The tokens for a code: once, in time, by the redirect URI and verifier it was for.
    A refusal after the code was found is returned, not raised, so the caller commits the
    code's deletion: a code is spent by any attempt to redeem it."""
    if form.get("grant_type") != "authorization_code":
        return TokenError("unsupported_grant_type", "Only grant_type=authorization_code")
    code = form.get("code") or ""
    row = session.get(OIDCCode, digest(code)) if 0 < len(code) <= 256 else None
    if row is None or row.endpoint_id != server.endpoint_id:
        return TokenError("invalid_grant", "The code is unknown, expired or already used")
    session.delete(row)
    session.flush()
    if row.expires_at <= utcnow():
        return TokenError("invalid_grant", "The code is unknown, expired or already used")
    if form.get("redirect_uri") != row.redirect_uri:
        return TokenError("invalid_grant", "The redirect_uri differs from the authorization "
                          "request's")
    verifier = form.get("code_verifier") or ""
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    if not _PKCE.match(verifier) or not same_digest(
            expected.rstrip(b"=").decode(), digest(row.code_challenge or "")):
        return TokenError("invalid_grant", "The code_verifier does not match the "
                          "code_challenge")
    username = f"{row.username}@{server.domain}"
    now = int(time.time())
    sign = signer(server, box)
    identity = {"sub": username, "preferred_username": username,
                "name": _full_name(row.username)}
    id_claims = {**identity, "iss": server.issuer, "aud": server.client_id, "iat": now,
                 "exp": now + ID_TOKEN_SECONDS, "auth_time": now}
    if row.nonce is not None:
        id_claims["nonce"] = row.nonce
    access = sign.sign({"sub": username, "iss": server.issuer, "aud": userinfo_audience(server),
                        "iat": now, "exp": now + ACCESS_TOKEN_SECONDS,
                        "client_id": server.client_id})
    return {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_SECONDS,
            "id_token": sign.sign(id_claims), "scope": " ".join(SCOPES)}


def userinfo_audience(server: OIDCServer) -> str:
    return f"{server.issuer}/userinfo"


def userinfo(server: OIDCServer, box: SecretBox, token: str | None) -> dict[str, Any]:
    import jwt

    if not token:
        raise TokenError("invalid_token", "A bearer access token is required", 401)
    try:
        claims = signer(server, box).verify(token, userinfo_audience(server), server.issuer)
    except jwt.PyJWTError:
        raise TokenError("invalid_token", "The access token is not valid", 401) from None
    username = str(claims["sub"])
    return {"sub": username, "preferred_username": username,
            "name": _full_name(username.rsplit("@", 1)[0])}


def _full_name(account: str) -> str:
    try:
        gecos = pwd.getpwnam(account).pw_gecos.split(",")[0].strip()
    except KeyError:
        gecos = ""
    return gecos or account
