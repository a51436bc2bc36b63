"""Auth's tables: identities, clients, scopes, consents, sessions and tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from isthmus.core.db import Base, UTCDateTime, new_id, utcnow


class IdentityProvider(Base):
    __tablename__ = "identity_providers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(100), unique=True)
    # "local" (username and password), "clients" (client identities), "oidc" (upstream).
    kind: Mapped[str] = mapped_column(String(20))
    domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    alternative_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Account(Base):
    """A person's set of linked identities (Globus's "identity set")."""

    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # The identity the account was made for; it cannot be unlinked. A plain column,
    # not a foreign key: identities already refer to accounts, and SQLite cannot
    # add the second half of such a cycle to an existing table.
    primary_identity_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Identity(Base):
    __tablename__ = "identities"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Canonical lower-case "name@domain"; IdentityMap keys on it exactly.
    username: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    organization: Mapped[str | None] = mapped_column(String(200))
    identity_provider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity_providers.id"))
    # used | unused | private | closed
    status: Mapped[str] = mapped_column(String(20), default="used")
    # login (a person) | client (a client's own identity)
    identity_type: Mapped[str] = mapped_column(String(20), default="login")
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    identity_provider: Mapped[IdentityProvider] = relationship(lazy="joined")


class LocalUser(Base):
    """Credentials of an identity of the local identity provider."""

    __tablename__ = "local_users"

    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str | None] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    identity: Mapped[Identity] = relationship(lazy="joined")


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    client_type: Mapped[str] = mapped_column(String(60))
    project_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    parent_client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE")
    )
    # A native client others may instantiate without credentials (globus login does).
    is_template: Mapped[bool] = mapped_column(Boolean, default=False)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    visibility: Mapped[str] = mapped_column(String(20), default="private")
    # What tokens for this client's scopes are keyed by (auth.globus.org, or the id).
    resource_server: Mapped[str | None] = mapped_column(String(200), unique=True)
    required_idp: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    preselect_idp: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    links: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fqdns: Mapped[list[str]] = mapped_column(JSON, default=list)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    credentials: Mapped[list[ClientCredential]] = relationship(
        back_populates="client", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def public_client(self) -> bool:
        return self.client_type == "public_installed_client"


class ClientCredential(Base):
    __tablename__ = "client_credentials"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 hex digest of the secret; the secret itself is never stored.
    secret_digest: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(back_populates="credentials")


class Scope(Base):
    __tablename__ = "scopes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # NULL for a collection's data_access scope requested before the collection
    # registered its client; registration adopts the row.
    client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    resource_server: Mapped[str] = mapped_column(String(200))
    scope_string: Mapped[str] = mapped_column(String(400), unique=True)
    scope_suffix: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    advertised: Mapped[bool] = mapped_column(Boolean, default=False)
    allows_refresh_token: Mapped[bool] = mapped_column(Boolean, default=True)
    required_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    dependencies: Mapped[list[ScopeDependency]] = relationship(
        foreign_keys="ScopeDependency.scope_id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )


class ScopeDependency(Base):
    __tablename__ = "scope_dependencies"

    scope_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scopes.id", ondelete="CASCADE"), primary_key=True
    )
    dependent_scope_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scopes.id", ondelete="CASCADE"), primary_key=True
    )
    optional: Mapped[bool] = mapped_column(Boolean, default=False)
    requires_refresh_token: Mapped[bool] = mapped_column(Boolean, default=False)

    dependent_scope: Mapped[Scope] = relationship(
        foreign_keys=[dependent_scope_id], lazy="joined"
    )


class Consent(Base):
    """One approved scope in a tree: the root names the app, children the services."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_identity_client", "identity_id", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    # The client this scope was granted to: the app at the root, then the
    # resource server that may use the dependent scope on the user's behalf.
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    scope_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scopes.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("consents.id", ondelete="CASCADE"), index=True
    )
    dependency_path: Mapped[list[int]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="approved")
    allows_refresh: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    atomically_revocable: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    scope: Mapped[Scope] = relationship(lazy="joined")


class BrowserSession(Base):
    """A login kept by a browser cookie; may hold several identities' authentications."""

    __tablename__ = "browser_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # The identity acting in this session (the last one to log in).
    primary_identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE")
    )

    authentications: Mapped[list[SessionAuthentication]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )


class SessionAuthentication(Base):
    __tablename__ = "session_authentications"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("browser_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True
    )
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    identity_provider_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    mfa: Mapped[bool] = mapped_column(Boolean, default=False)


class MfaCredential(Base):
    """An identity's TOTP authenticator: pending until a first code confirms it."""

    __tablename__ = "mfa_credentials"

    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True
    )
    # The base32 secret, sealed with the data dir's encryption key (core.encryption).
    sealed_secret: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The newest time step a code was accepted for: no code of it or before works again.
    last_used_step: Mapped[int | None] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MfaRecoveryCode(Base):
    """A single-use recovery code, kept only as a SHA-256 digest (codes carry 80 bits)."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PendingLogin(Base):
    """A password login waiting for its second factor, bound to one browser by a cookie."""

    __tablename__ = "pending_logins"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    # Where the login goes on, as `sign_in.Destination` keeps it.
    purpose: Mapped[str] = mapped_column(String(20))
    authorize_query: Mapped[str | None] = mapped_column(Text)
    next_path: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    identity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("browser_sessions.id", ondelete="SET NULL")
    )
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    # The OpenID Connect nonce of the request, repeated in the ID token.
    nonce: Mapped[str | None] = mapped_column(String(512))
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Token(Base):
    """An access or refresh token for one resource server, kept only as a digest."""

    __tablename__ = "tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # access | refresh
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    identity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    resource_server: Mapped[str] = mapped_column(String(200))
    # Space-joined root scope strings, as the token response's `scope`.
    scope: Mapped[str] = mapped_column(Text)
    # The granted scope tree, dependencies included: what the dependent-token
    # grant lets this resource server do on the identity's behalf.
    scope_tree: Mapped[str] = mapped_column(Text, default="")
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("browser_sessions.id", ondelete="SET NULL")
    )
    # Access tokens issued from a refresh token die with it.
    refresh_token_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tokens.id", ondelete="CASCADE"), index=True
    )
    # The code a token was issued for: a replayed code revokes them (RFC 6749 4.1.2).
    authorization_code_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Project(Base):
    """A group of clients with a shared list of administrators."""

    __tablename__ = "projects"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(320))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    admins: Mapped[list[ProjectAdmin]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )

    def admin_ids(self, kind: str) -> list[uuid.UUID]:
        return [admin.principal_id for admin in self.admins if admin.kind == kind]


class ProjectAdmin(Base):
    """An identity, or every member of a group, administering a project."""

    __tablename__ = "project_admins"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)  # identity | group
    principal_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)


class Policy(Base):
    """Authentication requirements a project's resources can demand of a session."""

    __tablename__ = "policies"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    display_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    high_assurance: Mapped[bool] = mapped_column(Boolean, default=False)
    authentication_assurance_timeout: Mapped[int | None] = mapped_column(Integer)
    required_mfa: Mapped[bool] = mapped_column(Boolean, default=False)
    domain_constraints_include: Mapped[list[str] | None] = mapped_column(JSON)
    domain_constraints_exclude: Mapped[list[str] | None] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginFailure(Base):
    """A failed password login, kept for the throttling window (see `throttle`)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # "account:<username>" or "address:<client address>"
    key: Mapped[str] = mapped_column(String(400), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UpstreamProvider(Base):
    """How to reach an upstream OpenID Connect provider (an `IdentityProvider` of kind "oidc")."""

    __tablename__ = "upstream_providers"

    identity_provider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identity_providers.id", ondelete="CASCADE"), primary_key=True
    )
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(500))
    # Sealed with the data dir's encryption key (core.encryption); never stored in clear.
    client_secret_sealed: Mapped[str] = mapped_column(Text)
    # Which ID-token claim names the identity: "sub" or "preferred_username".
    username_claim: Mapped[str] = mapped_column(String(40))
    scopes: Mapped[str] = mapped_column(String(500))
    # PEM certificates trusted for the provider's HTTPS (a private CA), else the system's.
    ca_certificates: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    identity_provider: Mapped[IdentityProvider] = relationship(lazy="joined")


class UpstreamSubject(Base):
    """The identity an upstream provider's subject signs in as, fixed at its first login.

    Keyed on the exact ``sub`` (case-sensitive, never reassigned by the provider), so
    a username reused upstream, or two subjects equal but for case, can never sign
    in as someone else's identity here.
    """

    __tablename__ = "upstream_subjects"

    identity_provider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identity_providers.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), unique=True
    )
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UpstreamLoginState(Base):
    """A sign-in sent to an upstream provider and not yet back: single use, short-lived."""

    __tablename__ = "upstream_login_states"

    # SHA-256 of the `state` parameter; the parameter itself is only in the browser.
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    identity_provider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identity_providers.id", ondelete="CASCADE")
    )
    # SHA-256 of the cookie that binds the sign-in to the browser that started it.
    browser_digest: Mapped[str] = mapped_column(String(64))
    nonce_digest: Mapped[str] = mapped_column(String(64))
    code_verifier_sealed: Mapped[str] = mapped_column(Text)
    # Where the sign-in goes on, as `sign_in.Destination` keeps it: authorize (an OAuth
    # request), account (a page of this site, next_path) or link (join account_id).
    purpose: Mapped[str] = mapped_column(String(20))
    authorize_query: Mapped[str | None] = mapped_column(Text)
    next_path: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
