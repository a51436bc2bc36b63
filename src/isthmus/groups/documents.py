"""The JSON documents the Groups API returns, shaped as globus-sdk and globus-cli read them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from isthmus.groups.models import Group, Membership

Document = dict[str, Any]


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def membership_document(membership: Membership) -> Document:
    return {
        "group_id": str(membership.group_id),
        "identity_id": str(membership.identity_id),
        "username": membership.username,
        "role": membership.role,
        "status": membership.status,
        "invite_email_address": None,
        "invite_time": _time(membership.invite_time),
        "membership_action_time": _time(membership.membership_action_time),
        "membership_fields": dict(membership.membership_fields or {}),
    }


def policies_document(group: Group) -> Document:
    return {
        "is_high_assurance": group.is_high_assurance,
        "authentication_assurance_timeout": group.authentication_assurance_timeout,
        "group_visibility": group.group_visibility,
        "group_members_visibility": group.group_members_visibility,
        "join_requests": group.join_requests,
        "signup_fields": list(group.signup_fields or []),
    }


def group_document(
    group: Group,
    *,
    my_memberships: Sequence[Membership] | None = None,
    memberships: Sequence[Membership] | None = None,
    allowed_actions: dict[str, bool] | None = None,
    child_ids: Sequence[uuid.UUID] | None = None,
) -> Document:
    """The group with its policies, plus the parts the caller asked to ``include``."""
    document: Document = {
        "id": str(group.id),
        "name": group.name,
        "description": group.description,
        "parent_id": str(group.parent_id) if group.parent_id else None,
        "group_type": "regular",
        # Isthmus has no subscriptions, so no group is high assurance and none
        # enforces a session (see `groups.set_policies`).
        "enforce_session": group.is_high_assurance,
        "session_limit": group.authentication_assurance_timeout,
        "session_timeouts": {},
        "terms_and_conditions": group.terms_and_conditions,
        "subscription_id": None,
        "subscription_info": None,
        "subscription_admin_verified_id": None,
        "policies": policies_document(group),
    }
    if my_memberships is not None:
        document["my_memberships"] = [membership_document(m) for m in my_memberships]
    if memberships is not None:
        document["memberships"] = [membership_document(m) for m in memberships]
    if allowed_actions is not None:
        document["allowed_actions"] = allowed_actions
    if child_ids is not None:
        document["child_ids"] = [str(child) for child in child_ids]
    return document
