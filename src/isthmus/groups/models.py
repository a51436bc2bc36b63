"""Groups' tables: groups with their policies, and memberships of identities in them.

Identity ids are Auth's; Groups keeps no foreign key to Auth's tables (the
services meet through `core` interfaces only) and remembers each member's
username as it was looked up, which is what membership documents show.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from isthmus.core.db import Base, UTCDateTime, new_id, utcnow

# Globus's default for authentication_assurance_timeout (and session_limit): 8 hours.
DEFAULT_ASSURANCE_TIMEOUT = 28800


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="RESTRICT"), index=True
    )
    terms_and_conditions: Mapped[str | None] = mapped_column(Text)
    # Policies (GET/PUT /v2/groups/{id}/policies).
    is_high_assurance: Mapped[bool] = mapped_column(Boolean, default=False)
    authentication_assurance_timeout: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_ASSURANCE_TIMEOUT
    )
    # private (members, invitees and applicants only) | authenticated (anyone signed in)
    group_visibility: Mapped[str] = mapped_column(String(20), default="private")
    # managers (only managers and admins see the member list) | members
    group_members_visibility: Mapped[str] = mapped_column(String(20), default="managers")
    join_requests: Mapped[bool] = mapped_column(Boolean, default=False)
    signup_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="group", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Membership.created",
    )


class Membership(Base):
    """One identity's standing in one group; kept after it ends (left, removed, ...)."""

    __tablename__ = "group_memberships"
    # groups_of: "which groups is this identity an active member of".
    __table_args__ = (Index("ix_group_memberships_identity_status", "identity_id", "status"),)

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    identity_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    username: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(10))  # member | manager | admin
    # active | invited | pending | rejected | left | removed | declined
    status: Mapped[str] = mapped_column(String(10))
    invite_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    membership_action_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    membership_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    group: Mapped[Group] = relationship(back_populates="memberships")
