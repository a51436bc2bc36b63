"""Upstream OpenID Connect identity providers: their registration, sign-ins, and identities.

An administrator registers a provider (`add_oidc_provider`): an `IdentityProvider`
of kind "oidc" owning some domains, and how to reach it, its client secret sealed
with the data dir's key. A sign-in through it is recorded while the browser is
away (`begin_sign_in`, single use, ten minutes, bound to that browser) and, when
the browser returns, consumed (`finish_sign_in`). The verified ID token then
names an identity (`sign_in_identity`): the one its subject signed in as before,
else ``<sub>@<domain>`` (or the ``preferred_username``, see `upstream_username`),
made on first login or taken over from an ``unused`` provisioned identity.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from isthmus.auth import identity_sets, rfc7636
from isthmus.auth.models import (
    Identity,
    IdentityProvider,
    UpstreamLoginState,
    UpstreamProvider,
    UpstreamSubject,
)
from isthmus.auth.oidc_client import RelyingParty, UpstreamError, check_url
from isthmus.auth.sign_in import Destination
from isthmus.core.db import utcnow
from isthmus.core.encryption import SealedValueError, SecretBox
from isthmus.core.errors import APIError, bad_request, not_found
from isthmus.core.secrets import digest, new_secret, same_digest

USERNAME_CLAIMS = ("sub", "preferred_username")

# Where a provider sends the browser back, under Auth's public URL: the redirect URI an
# administrator registers at the provider (`upstream_pages` serves it).
CALLBACK_PATH = "v2/web/oidc/callback"

DEFAULT_SCOPES = "openid profile email"
SIGN_IN_LIFETIME = timedelta(minutes=10)
_SHORT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                     r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_USERNAME_LOCAL = re.compile(r"^[^\s@\x00-\x1f\x7f]{1,200}$")


def _secret_purpose(provider_id: uuid.UUID) -> str:
    return f"upstream-client-secret:{provider_id}"


def _verifier_purpose(state_digest: str) -> str:
    return f"upstream-code-verifier:{state_digest}"


# --- registration ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderSettings:
    short_name: str
    display_name: str
    issuer: str
    client_id: str
    client_secret: str
    domains: list[str]
    username_claim: str = "sub"
    scopes: str = DEFAULT_SCOPES
    ca_certificates: str | None = None

    def relying_party(self) -> RelyingParty:
        return RelyingParty(issuer=self.issuer, client_id=self.client_id,
                            client_secret=self.client_secret, scopes=self.scopes,
                            ca_certificates=self.ca_certificates)


def validated(settings: ProviderSettings) -> ProviderSettings:
    """The settings normalised, or a 400 naming what is wrong."""
    short_name = settings.short_name.strip().lower()
    if not _SHORT_NAME.match(short_name):
        raise bad_request("A provider's name is 1-100 lower-case letters, digits, '.', '_' "
                          "or '-', starting with a letter or digit")
    domains = list(dict.fromkeys(domain.strip().lower() for domain in settings.domains))
    if not domains or not all(_DOMAIN.match(domain) for domain in domains):
        raise bad_request("Give at least one --domain, each a DNS name such as example.org")
    if settings.username_claim not in USERNAME_CLAIMS:
        raise bad_request(f"The username claim must be one of {', '.join(USERNAME_CLAIMS)}")
    scopes = " ".join(settings.scopes.split())
    if "openid" not in scopes.split():
        raise bad_request("The scopes must include openid")
    if not settings.client_id.strip() or len(settings.client_id) > 500:
        raise bad_request("The client id must have 1 to 500 characters")
    if not settings.client_secret or len(settings.client_secret) > 2000:
        raise bad_request("The client secret must have 1 to 2000 characters")
    try:
        issuer = check_url(settings.issuer.strip(), "issuer")
    except UpstreamError as error:
        raise bad_request(error.message) from None
    if len(issuer) > 500 or urlsplit(issuer).query:
        raise bad_request("The issuer must be a URL without a query, at most 500 characters")
    return ProviderSettings(
        short_name=short_name, display_name=settings.display_name.strip()[:200] or short_name,
        issuer=issuer, client_id=settings.client_id.strip(),
        client_secret=settings.client_secret, domains=domains,
        username_claim=settings.username_claim, scopes=scopes,
        ca_certificates=settings.ca_certificates,
    )


@dataclass(frozen=True)
class ListedProvider:
    provider: IdentityProvider
    upstream: UpstreamProvider | None  # None: retired, kept for its identities
    identities: int


def add_oidc_provider(
    session: Session, box: SecretBox, settings: ProviderSettings
) -> ListedProvider:
    """Register a provider; a retired one of the same name gets its configuration back."""
    provider = session.scalar(
        select(IdentityProvider).where(IdentityProvider.short_name == settings.short_name)
    )
    if provider is not None and (
        provider.kind != "oidc" or session.get(UpstreamProvider, provider.id) is not None
    ):
        raise APIError(409, "CONFLICT", f"An identity provider named {settings.short_name} "
                       "already exists")
    for other in session.scalars(select(IdentityProvider)):
        taken = set(other.domains) & set(settings.domains)
        if other is not provider and taken:
            raise APIError(409, "CONFLICT", f"The domain {sorted(taken)[0]} belongs to the "
                           f"identity provider {other.short_name}")
    if provider is None:
        provider = IdentityProvider(short_name=settings.short_name, kind="oidc",
                                    alternative_names=[])
        session.add(provider)
    provider.name = settings.display_name
    provider.domains = settings.domains
    session.flush()
    configuration = UpstreamProvider(
        identity_provider_id=provider.id, issuer=settings.issuer, client_id=settings.client_id,
        client_secret_sealed=box.seal(settings.client_secret, _secret_purpose(provider.id)),
        username_claim=settings.username_claim, scopes=settings.scopes,
        ca_certificates=settings.ca_certificates,
    )
    session.add(configuration)
    session.flush()
    return ListedProvider(provider, configuration, _identity_count(session, provider.id))


def _identity_count(session: Session, provider_id: uuid.UUID) -> int:
    return session.scalar(select(func.count()).select_from(Identity)
                          .where(Identity.identity_provider_id == provider_id)) or 0


def list_oidc_providers(session: Session) -> list[ListedProvider]:
    counts = dict(session.execute(
        select(Identity.identity_provider_id, func.count()).group_by(Identity.identity_provider_id)
    ).tuples().all())
    upstreams = {row.identity_provider_id: row for row in session.scalars(select(UpstreamProvider))}
    return [
        ListedProvider(provider, upstreams.get(provider.id), counts.get(provider.id, 0))
        for provider in session.scalars(
            select(IdentityProvider).where(IdentityProvider.kind == "oidc")
            .order_by(IdentityProvider.short_name)
        )
    ]


def delete_oidc_provider(session: Session, short_name: str) -> int:
    """Stop sign-ins through a provider; returns how many of its identities are kept.

    Identities are never deleted (grants and tokens name them): while any exist the
    provider stays as a record without configuration, and adding it again restores it.
    """
    provider = session.scalar(select(IdentityProvider).where(
        IdentityProvider.short_name == short_name.strip().lower(),
        IdentityProvider.kind == "oidc",
    ))
    if provider is None:
        raise not_found(f"No upstream identity provider named {short_name}")
    session.execute(delete(UpstreamProvider)
                    .where(UpstreamProvider.identity_provider_id == provider.id))
    session.execute(delete(UpstreamLoginState)
                    .where(UpstreamLoginState.identity_provider_id == provider.id))
    kept = _identity_count(session, provider.id)
    if not kept:
        session.delete(provider)
    session.flush()
    return kept


def sign_in_choices(session: Session) -> list[IdentityProvider]:
    """The providers a login page offers: every configured one, by name."""
    return list(session.scalars(
        select(IdentityProvider).join(
            UpstreamProvider, UpstreamProvider.identity_provider_id == IdentityProvider.id
        ).order_by(IdentityProvider.name)
    ))


@dataclass(frozen=True)
class ConfiguredProvider:
    id: uuid.UUID
    name: str
    domains: list[str]
    username_claim: str
    party: RelyingParty


def configured(session: Session, box: SecretBox, provider_id: uuid.UUID) -> ConfiguredProvider:
    upstream = session.get(UpstreamProvider, provider_id)
    if upstream is None:
        raise bad_request("That identity provider is not available for sign-in")
    try:
        secret = box.open(upstream.client_secret_sealed, _secret_purpose(provider_id))
    except SealedValueError:
        raise bad_request(
            f"The client secret of {upstream.identity_provider.name} cannot be read with this "
            "server's key; an administrator must add the provider again"
        ) from None
    provider = upstream.identity_provider
    return ConfiguredProvider(
        id=provider.id, name=provider.name, domains=list(provider.domains),
        username_claim=upstream.username_claim,
        party=RelyingParty(issuer=upstream.issuer, client_id=upstream.client_id,
                           client_secret=secret, scopes=upstream.scopes,
                           ca_certificates=upstream.ca_certificates),
    )


# --- sign-ins in flight -----------------------------------------------------------------


@dataclass(frozen=True)
class StartedSignIn:
    state: str
    nonce: str
    code_challenge: str


@dataclass(frozen=True)
class ReturnedSignIn:
    provider: ConfiguredProvider
    nonce_digest: str
    code_verifier: str
    destination: Destination


def begin_sign_in(
    session: Session, box: SecretBox, provider_id: uuid.UUID, browser_secret: str,
    going: Destination,
) -> StartedSignIn:
    now = utcnow()
    session.execute(delete(UpstreamLoginState).where(UpstreamLoginState.expires_at <= now))
    state, nonce, verifier = new_secret(), new_secret(), new_secret()
    state_digest = digest(state)
    session.add(UpstreamLoginState(
        digest=state_digest, identity_provider_id=provider_id,
        browser_digest=digest(browser_secret), nonce_digest=digest(nonce),
        code_verifier_sealed=box.seal(verifier, _verifier_purpose(state_digest)),
        **going.columns(), expires_at=now + SIGN_IN_LIFETIME, created=now,
    ))
    session.flush()
    return StartedSignIn(state=state, nonce=nonce, code_challenge=rfc7636.s256_challenge(verifier))


def finish_sign_in(
    session: Session, box: SecretBox, state: str, browser_secret: str | None
) -> ReturnedSignIn:
    """Consume the record of a sign-in: once, in the browser that started it, in time."""
    state_digest = digest(state)
    row = session.get(UpstreamLoginState, state_digest) if len(state) <= 256 else None
    if row is None or row.expires_at <= utcnow():
        raise bad_request("This sign-in is unknown, expired or already used; start it again "
                          "from the login page.")
    if not browser_secret or not same_digest(browser_secret, row.browser_digest):
        raise bad_request("This sign-in was started in another browser; start it again from "
                          "the login page.")
    session.delete(row)
    session.flush()
    try:
        verifier = box.open(row.code_verifier_sealed, _verifier_purpose(state_digest))
    except SealedValueError:
        raise bad_request("This sign-in cannot be completed; start it again.") from None
    return ReturnedSignIn(
        provider=configured(session, box, row.identity_provider_id),
        nonce_digest=row.nonce_digest, code_verifier=verifier,
        destination=Destination.kept(row.purpose, row.authorize_query, row.next_path,
                                     row.account_id),
    )


# --- identities -------------------------------------------------------------------------


def upstream_username(provider: ConfiguredProvider, claims: dict[str, Any]) -> str:
    """The username an upstream identity gets here.

    ``sub``: ``<sub>@<first domain>``. ``preferred_username``: a value with no
    ``@`` gets the first domain; a value with one keeps its own domain, which must
    be one of the provider's (an Isthmus upstream sends ``alice@its.domain``, so
    register it with that domain). Never the part before the ``@`` of a foreign
    domain: two upstream users would then share one name here.
    """
    claim = provider.username_claim
    value = claims.get(claim)
    if not isinstance(value, str) or not value:
        raise UpstreamError(f"{provider.name} did not send the {claim} claim this server needs")
    local, at, domain = value.rpartition("@") if claim == "preferred_username" else (value, "", "")
    if not at:
        local, domain = value, provider.domains[0]
    if domain.lower() not in provider.domains:
        raise UpstreamError(f"{provider.name} names the user {value!r}, outside its domains "
                            f"({', '.join(provider.domains)})", status=403)
    if not _USERNAME_LOCAL.match(local):
        raise UpstreamError(f"{provider.name} sent a {claim} that cannot be a username here: "
                            f"{value[:100]!r}")
    return f"{local}@{domain}".lower()


def find_identity(session: Session, provider_id: uuid.UUID, subject: str) -> Identity | None:
    link = session.get(UpstreamSubject, (provider_id, subject))
    return session.get(Identity, link.identity_id) if link is not None else None


def sign_in_identity(
    session: Session, provider: ConfiguredProvider, claims: dict[str, Any]
) -> Identity:
    """The identity the verified claims sign in as, made or taken over on first login."""
    subject = claims["sub"]
    identity = find_identity(session, provider.id, subject)
    if identity is None:
        username = upstream_username(provider, claims)
        identity = session.scalar(select(Identity).where(Identity.username == username))
        if identity is None:
            identity = Identity(username=username, identity_provider_id=provider.id,
                                identity_type="login", status="used")
            session.add(identity)
            session.flush()
        elif identity.status != "unused" or identity.identity_provider_id != provider.id:
            raise UpstreamError(f"The username {username} already belongs to another identity "
                                "here; an administrator must resolve the clash.", status=409)
        identity.status = "used"
        if identity.account_id is None:
            identity_sets.new_account(session, identity)
        session.add(UpstreamSubject(identity_provider_id=provider.id, subject=subject,
                                    identity_id=identity.id))
    if identity.status == "closed":
        raise UpstreamError(f"The identity {identity.username} is closed", status=403)
    _update_profile(identity, claims)
    session.flush()
    return identity


def _claim(claims: dict[str, Any], name: str, limit: int) -> str | None:
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        return None
    return value.strip()[:limit]


def _update_profile(identity: Identity, claims: dict[str, Any]) -> None:
    """The provider is the authority on its users' names and addresses: keep them current."""
    identity.name = (_claim(claims, "name", 200) or identity.name
                     or identity.username.rsplit("@", 1)[0])
    identity.email = _claim(claims, "email", 320) or identity.email
    identity.organization = _claim(claims, "organization", 200) or identity.organization
