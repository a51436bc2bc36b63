"""The relying-party side of OpenID Connect: Auth signing users in at an upstream provider.

OpenID Connect Core 1.0 and Discovery 1.0, authorization-code flow with PKCE
(RFC 7636, S256) and ``client_secret_basic``: discovery, the authorization URL,
the code exchange, and validation of the ID token against the provider's JWKS.
Every failure is an `UpstreamError`, a 4xx the sign-in pages show as they show
any refused request.
"""

from __future__ import annotations

import functools
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from isthmus.core.errors import APIError
from isthmus.core.secrets import same_digest

DISCOVERY_PATH = "/.well-known/openid-configuration"
TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 1024 * 1024
# Discovery documents and key sets change rarely; a key set is fetched again at
# once when a token names a key it does not hold (the provider rotated its keys).
CACHE_SECONDS = 300.0
CLOCK_SKEW_SECONDS = 60
# Asymmetric signatures only: the JWKS is what proves the token came from the issuer.
SIGNING_ALGORITHMS = frozenset({
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class UpstreamError(APIError):
    """The upstream provider could not be reached, refused, or answered something invalid."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(status, "UPSTREAM_LOGIN_FAILED", message)


@dataclass(frozen=True)
class RelyingParty:
    """This server as a client of one upstream provider."""

    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    # PEM certificates to trust for the provider's HTTPS instead of the system's.
    ca_certificates: str | None = None


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def check_url(url: str, what: str) -> str:
    """HTTPS, or plain HTTP to this machine only (a provider in development)."""
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS
    )
    if not secure or not parts.hostname or parts.fragment or parts.username:
        raise UpstreamError(f"The {what} must be an https:// URL: {url!r}")
    return url


@functools.lru_cache(maxsize=32)
def _verify(ca_certificates: str | None) -> ssl.SSLContext | bool:
    if ca_certificates is None:
        return True
    try:
        return ssl.create_default_context(cadata=ca_certificates)
    except (ssl.SSLError, ValueError):
        raise UpstreamError("The provider's CA certificates cannot be loaded") from None


async def _fetch_json(
    party: RelyingParty, method: str, url: str, what: str, **options: Any
) -> tuple[int, Any]:
    """Status and JSON body of one request, read up to a size limit."""
    import httpx  # on first use: a restart need not wait for it

    try:
        async with (
            httpx.AsyncClient(verify=_verify(party.ca_certificates), timeout=TIMEOUT_SECONDS,
                              follow_redirects=False) as client,
            client.stream(method, url, **options) as response,
        ):
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise UpstreamError(f"The identity provider's {what} is too large")
            status = response.status_code
    except httpx.HTTPError as error:
        raise UpstreamError(
            f"The identity provider at {party.issuer} could not be reached ({what}): "
            f"{type(error).__name__}"
        ) from None
    try:
        return status, json.loads(body)
    except ValueError:
        if status >= 400:
            return status, None
        raise UpstreamError(f"The identity provider's {what} is not JSON") from None


_discovered: dict[tuple[str, str | None], tuple[float, Discovery]] = {}
_key_sets: dict[tuple[str, str | None], tuple[float, dict[str, Any]]] = {}


async def discover(party: RelyingParty, *, fresh: bool = False) -> Discovery:
    """The provider's discovery document, checked to be its own (Discovery 1.0 §4.3)."""
    cache_key = (party.issuer, party.ca_certificates)
    cached = _discovered.get(cache_key)
    if cached is not None and not fresh and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    status, document = await _fetch_json(
        party, "GET", party.issuer.rstrip("/") + DISCOVERY_PATH, "discovery document"
    )
    if status != 200 or not isinstance(document, dict):
        raise UpstreamError(
            f"The identity provider at {party.issuer} has no OpenID Connect discovery "
            f"document (HTTP {status})"
        )
    # Discovery 1.0 §4.3: the document must name the issuer it was fetched for. A
    # trailing slash typed by an administrator is forgiven; the document's own
    # spelling is then what ID tokens must carry.
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or issuer.rstrip("/") != party.issuer.rstrip("/"):
        raise UpstreamError(
            f"The discovery document names the issuer {issuer!r}, not {party.issuer!r}"
        )
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str):
            raise UpstreamError(f"The discovery document has no {name}")
        endpoints[name] = check_url(value, name)
    found = Discovery(issuer=issuer, **endpoints)
    _discovered[cache_key] = (time.monotonic(), found)
    return found


def authorization_url(
    discovery: Discovery, party: RelyingParty, *, redirect_uri: str, state: str, nonce: str,
    code_challenge: str, prompt_login: bool,
) -> str:
    params = {
        "response_type": "code",
        "client_id": party.client_id,
        "redirect_uri": redirect_uri,
        "scope": party.scopes,
        "state": state,
        "nonce": nonce,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    if prompt_login:
        params["prompt"] = "login"
    separator = "&" if urlsplit(discovery.authorization_endpoint).query else "?"
    return discovery.authorization_endpoint + separator + urlencode(params)


def _basic_credentials(party: RelyingParty) -> tuple[str, str]:
    # RFC 6749 §2.3.1: each part form-urlencoded before Basic encoding.
    return quote(party.client_id, safe=""), quote(party.client_secret, safe="")


async def redeem_code(
    discovery: Discovery, party: RelyingParty, *, code: str, redirect_uri: str,
    code_verifier: str,
) -> str:
    """Exchange the code at the token endpoint; returns the ID token."""
    status, document = await _fetch_json(
        party, "POST", discovery.token_endpoint, "token endpoint",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
              "code_verifier": code_verifier},
        auth=_basic_credentials(party), headers={"Accept": "application/json"},
    )
    if status != 200 or not isinstance(document, dict):
        error = document.get("error") if isinstance(document, dict) else None
        description = document.get("error_description") if isinstance(document, dict) else None
        detail = ": ".join(str(part)[:200] for part in (error, description) if part)
        if error == "invalid_client":
            detail = f"it rejected this server's client credentials ({detail})"
        raise UpstreamError(
            f"The identity provider refused to complete the sign-in (HTTP {status}"
            f"{': ' + detail if detail else ''})"
        )
    id_token = document.get("id_token")
    if not isinstance(id_token, str):
        raise UpstreamError("The identity provider sent no ID token; is 'openid' in its scopes?")
    return id_token


async def _key_set(party: RelyingParty, discovery: Discovery, *, fresh: bool) -> dict[str, Any]:
    cache_key = (discovery.jwks_uri, party.ca_certificates)
    cached = _key_sets.get(cache_key)
    if cached is not None and not fresh and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    status, document = await _fetch_json(party, "GET", discovery.jwks_uri, "key set")
    if status != 200 or not isinstance(document, dict) or not isinstance(
        document.get("keys"), list
    ):
        raise UpstreamError(f"The identity provider's key set is unusable (HTTP {status})")
    _key_sets[cache_key] = (time.monotonic(), document)
    return document


def _matching_key(key_set: dict[str, Any], kid: str | None) -> dict[str, Any] | None:
    keys = [key for key in key_set["keys"]
            if isinstance(key, dict) and key.get("use", "sig") == "sig"]
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.get("kid") == kid), None)


async def verify_id_token(
    discovery: Discovery, party: RelyingParty, id_token: str, nonce_digest: str
) -> dict[str, Any]:
    """The ID token's claims, once its signature, issuer, audience, times and nonce check out."""
    import jwt

    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise UpstreamError("The identity provider's ID token is malformed") from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in SIGNING_ALGORITHMS:
        raise UpstreamError(f"The ID token is signed with an algorithm not accepted: {algorithm}")
    if kid is not None and not isinstance(kid, str):
        raise UpstreamError("The ID token's key id is malformed")
    jwk = _matching_key(await _key_set(party, discovery, fresh=False), kid)
    if jwk is None:
        jwk = _matching_key(await _key_set(party, discovery, fresh=True), kid)
    if jwk is None:
        raise UpstreamError("The ID token is signed with a key the provider does not publish")
    try:
        key = jwt.PyJWK(jwk, algorithm=algorithm).key
        claims: dict[str, Any] = jwt.decode(
            id_token, key, algorithms=[algorithm], audience=party.client_id,
            issuer=discovery.issuer, leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise UpstreamError(f"The identity provider's ID token is not valid: {error}") from None
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != party.client_id:
        raise UpstreamError("The ID token was issued to another client (azp)")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not same_digest(nonce, nonce_digest):
        raise UpstreamError("The ID token does not answer this sign-in (nonce mismatch)")
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= 255 or not subject.isprintable():
        raise UpstreamError("The ID token's subject is malformed")
    return claims
