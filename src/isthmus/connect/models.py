"""Connect's tables: endpoints, their nodes, storage gateways, collections and roles.

Each resource keeps the columns that queries select on, and its settable GCS
document fields as JSON (``document``), so a field the Manager API adds in a
later version needs no migration.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from isthmus.core.db import Base, UTCDateTime, new_id, utcnow


class Endpoint(Base):
    __tablename__ = "connect_endpoints"

    # Also the endpoint's Auth client id and resource server.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(128))
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    # The identity holding the owner role; None until the first user exists.
    owner_identity_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # What Transfer shows as the owner: a username, or <id>@clients.auth.globus.org.
    owner_string: Mapped[str] = mapped_column(String(320))
    # The HTTPS base the Manager API is served under (`gcs_manager_url`).
    manager_url: Mapped[str] = mapped_column(String(1024))
    # The custom domain (see `CustomDomain`) its Manager is advertised under, if any.
    custom_domain: Mapped[str | None] = mapped_column(String(253))
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The collection first start made over <data dir>/files (no foreign key: the
    # collection refers to the endpoint, and either may be deleted first).
    default_collection_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Node(Base):
    """A process serving the endpoint's Manager API and data (`node#1.x` fields in document)."""

    __tablename__ = "connect_nodes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connect_endpoints.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default="active")
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StorageGateway(Base):
    __tablename__ = "connect_storage_gateways"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connect_endpoints.id", ondelete="CASCADE"), index=True
    )
    display_name: Mapped[str] = mapped_column(String(128))
    connector_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    high_assurance: Mapped[bool] = mapped_column(Boolean, default=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Collection(Base):
    __tablename__ = "connect_collections"
    __table_args__ = (Index("ix_connect_collections_endpoint_created",
                            "endpoint_id", "created", "id"),)

    # Also the collection's Auth client id and resource server.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connect_endpoints.id", ondelete="CASCADE")
    )
    collection_type: Mapped[str] = mapped_column(String(10))  # mapped | guest
    storage_gateway_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connect_storage_gateways.id"), index=True
    )
    mapped_collection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("connect_collections.id", ondelete="CASCADE"), index=True
    )
    display_name: Mapped[str] = mapped_column(String(128))
    # The owner (an administrator) whose identity Transfer's my-endpoints matches.
    identity_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    # The custom domain (see `CustomDomain`) its files are advertised under, if any.
    custom_domain: Mapped[str | None] = mapped_column(String(253))
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_access: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Role(Base):
    """A role on the endpoint (``collection_id`` NULL) or on one collection."""

    __tablename__ = "connect_roles"
    __table_args__ = (Index("ix_connect_roles_endpoint_collection",
                            "endpoint_id", "collection_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connect_endpoints.id", ondelete="CASCADE")
    )
    collection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("connect_collections.id", ondelete="CASCADE")
    )
    # urn:globus:auth:identity:<id> or urn:globus:groups:id:<id>
    principal: Mapped[str] = mapped_column(String(100), index=True)
    role: Mapped[str] = mapped_column(String(40))
    # The endpoint's owner role and a collection creator's administrator role:
    # not deletable through the roles API.
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserCredential(Base):
    """A user's credential on a storage gateway (`user_credential#1.0.0`): for POSIX, the
    local account their identity maps to, which their guest collections act as."""

    __tablename__ = "connect_user_credentials"
    __table_args__ = (Index("ix_connect_user_credentials_identity_created",
                            "identity_id", "created", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connect_endpoints.id", ondelete="CASCADE")
    )
    storage_gateway_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connect_storage_gateways.id", ondelete="CASCADE"), index=True
    )
    identity_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The identity's username when the credential was made (what identity mapping and
    # the home folder were computed from).
    identity_username: Mapped[str] = mapped_column(String(320))
    # The connector username: for POSIX, the local account.
    username: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str | None] = mapped_column(String(128))
    # `policies` and the computed `home_directory`.
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SharingPolicy(Base):
    """Where users of a mapped collection may share from (`sharing_policy#1.0.0`)."""

    __tablename__ = "connect_sharing_policies"
    __table_args__ = (Index("ix_connect_sharing_policies_collection_created",
                            "collection_id", "created", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connect_endpoints.id", ondelete="CASCADE")
    )
    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connect_collections.id", ondelete="CASCADE")
    )
    # Storage usernames the policy applies to; None: everyone.
    users: Mapped[list[str] | None] = mapped_column(JSON)
    sharing_restrict_paths: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomDomain(Base):
    """A DNS name the endpoint's Manager or one collection is advertised under, with the
    certificate that proves it (`domain#1.0.0`). A wildcard domain covers one label below
    it (``*.<domain_name>``): collections of the endpoint may take such names without a
    certificate of their own. A DNS name names one host, so it is unique deployment-wide."""

    __tablename__ = "connect_domains"
    __table_args__ = (UniqueConstraint("domain_name", "wildcard"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connect_endpoints.id", ondelete="CASCADE"), index=True
    )
    # None: the endpoint's own domain; else the one collection it names.
    collection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("connect_collections.id", ondelete="CASCADE"), unique=True
    )
    domain_name: Mapped[str] = mapped_column(String(253))
    wildcard: Mapped[bool] = mapped_column(Boolean, default=False)
    # PEM; None for a collection's name under one of the endpoint's wildcard domains.
    certificate: Mapped[str | None] = mapped_column(Text)
    certificate_chain: Mapped[str | None] = mapped_column(Text)
    # Sealed with the deployment's SecretBox (core/encryption.py).
    private_key: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditRecord(Base):
    """One data operation on the endpoint (HTTPS, or Transfer through `TransferAccess`):
    who, where, what, how many bytes, and how it ended (``ok`` or the error code)."""

    __tablename__ = "connect_audit_records"
    __table_args__ = (Index("ix_connect_audit_records_endpoint_time", "endpoint_id", "time"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    # No foreign keys: the record outlives the endpoint, collection and identity it names.
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    collection_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    identity_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    username: Mapped[str | None] = mapped_column(String(320))
    local_account: Mapped[str | None] = mapped_column(String(320))
    # "https" or "transfer"
    channel: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)
    destination: Mapped[str | None] = mapped_column(Text)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(64))


class OIDCServer(Base):
    """The endpoint's own OpenID Connect provider (`oidc create`): local accounts via PAM.

    Auth is its one client: ``client_id`` and the digest of the secret Auth signs in with
    (the secret itself is handed to Auth at `oidc register`, never kept here in the clear).
    """

    __tablename__ = "connect_oidc_servers"

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("connect_endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    # Usernames are <account>@<domain>: the DNS name the provider is served from.
    domain: Mapped[str] = mapped_column(String(253))
    display_name: Mapped[str] = mapped_column(String(200))
    pam_service: Mapped[str] = mapped_column(String(64))
    # The public URL its issuer is under (the node's, or the endpoint's custom domain).
    issuer: Mapped[str] = mapped_column(String(1024))
    client_id: Mapped[str] = mapped_column(String(64))
    client_secret_digest: Mapped[str] = mapped_column(String(64))
    # The RSA key ID tokens are signed with, PEM sealed with the data dir's key.
    signing_key_sealed: Mapped[str] = mapped_column(Text)
    # Where Auth's sign-ins come back to: the only redirect URIs the provider accepts.
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The identity provider Auth knows it as (None until `oidc register`).
    registered_provider_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OIDCCode(Base):
    """An authorization code: single use, short lived, stored as its digest."""

    __tablename__ = "connect_oidc_codes"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("connect_endpoints.id", ondelete="CASCADE"), index=True
    )
    username: Mapped[str] = mapped_column(String(320))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    nonce: Mapped[str | None] = mapped_column(String(512))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OIDCLoginFailure(Base):
    """A failed password at the provider's login form, counted to throttle guessing."""

    __tablename__ = "connect_oidc_login_failures"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("connect_endpoints.id", ondelete="CASCADE")
    )
    # "account:<name>" or "address:<ip>".
    key: Mapped[str] = mapped_column(String(400))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_connect_oidc_login_failures_key", "endpoint_id", "key", "at"),)
