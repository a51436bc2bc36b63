"""Transfer's tables: the registry of endpoints and collections that Connect publishes,
access rules on guest collections, and bookmarks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from isthmus.core.db import Base, UTCDateTime, utcnow


class RegistryEntity(Base):
    """An endpoint or collection as `get_endpoint` and `endpoint_search` show it."""

    __tablename__ = "transfer_registry_entities"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # GCSv5_endpoint | GCSv5_mapped_collection | GCSv5_guest_collection
    entity_type: Mapped[str] = mapped_column(String(40), index=True)
    # The GCS endpoint: the documents' `owner_id` for an endpoint and its collections.
    endpoint_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    # A guest collection's mapped collection.
    host_endpoint_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    display_name: Mapped[str] = mapped_column(String(256))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_string: Mapped[str] = mapped_column(String(320))
    # Lower-cased text that `filter_fulltext` matches: names, description, keywords...
    search_text: Mapped[str] = mapped_column(Text, default="")
    # The rest of the endpoint document, in Transfer's field names.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    grants: Mapped[list[RegistryGrant]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )
    owners: Mapped[list[RegistryOwner]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )


class RegistryGrant(Base):
    """A role a principal (`urn:globus:auth:identity:<id>`, `urn:globus:groups:id:<id>`) holds."""

    __tablename__ = "transfer_registry_grants"

    entity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transfer_registry_entities.id", ondelete="CASCADE"), primary_key=True
    )
    principal: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(40), primary_key=True)


class RegistryOwner(Base):
    """Who is behind an entity: the endpoint's owner, a collection's creator."""

    __tablename__ = "transfer_registry_owners"

    entity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transfer_registry_entities.id", ondelete="CASCADE"), primary_key=True
    )
    identity_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)


class RegistryUsage(Base):
    """An identity's use of an entity in tasks, for the recently-used and in-use searches."""

    __tablename__ = "transfer_registry_usage"

    identity_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    entity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transfer_registry_entities.id", ondelete="CASCADE"), primary_key=True
    )
    last_used: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class EndpointAccessRule(Base):
    """An access rule (``DATA_TYPE: access``) on a guest collection: a principal's ``r`` or
    ``rw`` on a folder and everything below it."""

    __tablename__ = "transfer_access_rules"
    __table_args__ = (Index("ix_transfer_access_rules_entity_created",
                            "entity_id", "created", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    entity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transfer_registry_entities.id", ondelete="CASCADE")
    )
    # identity | group | all_authenticated_users | anonymous
    principal_type: Mapped[str] = mapped_column(String(32))
    # An identity or group id; "" for all_authenticated_users and anonymous.
    principal: Mapped[str] = mapped_column(String(64))
    # Absolute in the guest collection, ending in "/".
    path: Mapped[str] = mapped_column(String(2048))
    permissions: Mapped[str] = mapped_column(String(2))
    expiration_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who made it (an identity of the caller's set).
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid)


class Bookmark(Base):
    """A user's bookmark: a named location (collection and folder), private to its owner."""

    __tablename__ = "transfer_bookmarks"
    __table_args__ = (UniqueConstraint("owner_id", "name"),
                      Index("ix_transfer_bookmarks_owner_created", "owner_id", "created", "id"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # The identity that made it; any identity linked to it sees it too.
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(128))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # A folder, ending in "/" ("/~/..." stays as given).
    path: Mapped[str] = mapped_column(String(2048))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
