"""Groups themselves: create, show, list, update, delete, and their policies."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.core.db import utcnow
from isthmus.core.errors import APIError, not_found
from isthmus.groups import access
from isthmus.groups.access import Standing, parse_uuid, unprocessable
from isthmus.groups.documents import Document, group_document, policies_document
from isthmus.groups.models import Group, Membership
from isthmus.groups.service import Caller

INCLUDES = ("memberships", "my_memberships", "policies", "allowed_actions", "child_ids")
SIGNUP_FIELDS = frozenset({
    "institution", "current_project_name", "address", "city", "state", "country",
    "address1", "address2", "zip", "phone", "department", "field_of_science",
})
_VISIBILITIES = ("authenticated", "private")
_MEMBER_VISIBILITIES = ("members", "managers")
MAX_NAME = 200
MAX_TEXT = 20_000


def _text(body: dict[str, Any], key: str, *, required: bool = False,
          limit: int = MAX_TEXT) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise unprocessable(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise unprocessable(f"{key} must be a string")
    value = value.strip()
    if required and not value:
        raise unprocessable(f"{key} must not be empty")
    if len(value) > limit:
        raise unprocessable(f"{key} must be at most {limit} characters")
    return value


def _no_subscription(body: dict[str, Any]) -> None:
    """Isthmus has no Globus subscriptions, so a group can belong to none."""
    if body.get("subscription_admin_verified_id") is not None:
        raise unprocessable("This Isthmus has no subscriptions: "
                            "subscription_admin_verified_id can only be null",
                            code="SUBSCRIPTION_NOT_FOUND")


def subscription_group(subscription_id: str) -> Document:
    """The group providing a subscription: never found, as there are no subscriptions."""
    key = parse_uuid(subscription_id, "subscription_id")
    raise not_found(f"Subscription {key} not found: this Isthmus has no subscriptions")


def set_subscription_admin_verified(found: Standing, body: dict[str, Any]) -> Document:
    found.require("admin", "verify it for a subscription")
    if "subscription_admin_verified_id" not in body:
        raise unprocessable("subscription_admin_verified_id is required")
    _no_subscription(body)
    return {"group_id": str(found.group.id), "subscription_admin_verified_id": None}


def parse_include(value: str | None) -> set[str]:
    wanted = {part.strip() for part in (value or "").split(",") if part.strip()}
    unknown = wanted - set(INCLUDES)
    if unknown:
        raise unprocessable(f"include may hold only {', '.join(INCLUDES)}; "
                            f"not {', '.join(sorted(unknown))}")
    return wanted


def parse_statuses(value: str | None) -> set[str]:
    wanted = {part.strip() for part in (value or "").split(",") if part.strip()}
    unknown = wanted - set(access.STATUSES)
    if unknown:
        raise unprocessable(f"statuses may hold only {', '.join(access.STATUSES)}; "
                            f"not {', '.join(sorted(unknown))}")
    return wanted or {"active"}


def view(session: Session, found: Standing, include: set[str]) -> Document:
    """The group as this caller may see it, with what they asked to include."""
    children: list[uuid.UUID] | None = None
    if "child_ids" in include:
        children = list(session.scalars(
            select(Group.id).where(Group.parent_id == found.group.id).order_by(Group.created)
        ))
    return group_document(
        found.group,
        my_memberships=list(found.mine) if "my_memberships" in include else None,
        memberships=access.visible_memberships(found) if "memberships" in include else None,
        allowed_actions=access.allowed_actions(found) if "allowed_actions" in include else None,
        child_ids=children,
    )


def my_groups(session: Session, caller: Caller, statuses: set[str]) -> list[Document]:
    """Groups where one of the caller's identities has a membership in one of ``statuses``."""
    mine = session.scalars(
        select(Membership)
        .where(Membership.identity_id.in_(caller.identities), Membership.status.in_(statuses))
        .order_by(Membership.created)
    ).all()
    by_group: dict[uuid.UUID, list[Membership]] = {}
    for membership in mine:
        by_group.setdefault(membership.group_id, []).append(membership)
    if not by_group:
        return []
    groups = session.scalars(
        select(Group).where(Group.id.in_(by_group)).order_by(Group.name, Group.created)
    ).all()
    return [group_document(group, my_memberships=by_group[group.id]) for group in groups]


def create_group(session: Session, body: dict[str, Any], caller: Caller) -> Standing:
    """A new group whose only member is its creator, as an admin."""
    _no_subscription(body)
    parent_id = None
    if body.get("parent_id") is not None:
        parent = access.find_group(session, parse_uuid(body["parent_id"], "parent_id"), caller)
        parent.require("admin", "create subgroups of it")
        parent_id = parent.group.id
    group = Group(
        id=uuid.uuid4(),
        name=_text(body, "name", required=True, limit=MAX_NAME),
        description=_text(body, "description") or "",
        parent_id=parent_id,
        terms_and_conditions=_text(body, "terms_and_conditions"),
        signup_fields=[],
    )
    session.add(group)
    now = utcnow()
    session.add(Membership(
        group_id=group.id, identity_id=caller.identity_id, username=caller.username,
        role="admin", status="active", membership_action_time=now, membership_fields={},
    ))
    session.flush()
    return access.standing(session, group, caller)


def update_group(session: Session, found: Standing, body: dict[str, Any]) -> Standing:
    found.require("admin", "change it")
    _no_subscription(body)
    group = found.group
    if "name" in body:
        group.name = _text(body, "name", required=True, limit=MAX_NAME) or group.name
    if "description" in body:
        group.description = _text(body, "description") or ""
    if "terms_and_conditions" in body:
        group.terms_and_conditions = _text(body, "terms_and_conditions")
    group.updated = utcnow()
    session.flush()
    return found


def delete_group(session: Session, found: Standing) -> Document:
    """Delete a group with its memberships; the answer is the group as it was."""
    found.require("admin", "delete it")
    if session.scalar(select(Group.id).where(Group.parent_id == found.group.id).limit(1)):
        raise APIError(409, "CONFLICT", "This group has subgroups: delete them first")
    document = group_document(found.group)
    session.delete(found.group)
    session.flush()
    return document


def policies(found: Standing) -> Document:
    return policies_document(found.group)


def set_policies(session: Session, found: Standing, body: dict[str, Any]) -> Document:
    found.require("admin", "change its policies")
    group = found.group
    for flag in ("is_high_assurance", "join_requests"):
        if flag in body and not isinstance(body[flag], bool):
            raise unprocessable(f"{flag} must be true or false")
    if body.get("is_high_assurance"):
        # High assurance is a subscription feature at Globus; Isthmus has none to
        # grant it, so it refuses rather than claim an assurance it does not enforce.
        raise unprocessable("A high-assurance group needs a subscription, which this "
                            "Isthmus does not have", code="SUBSCRIPTION_REQUIRED")
    if "join_requests" in body:
        group.join_requests = body["join_requests"]
    for key, allowed in (("group_visibility", _VISIBILITIES),
                         ("group_members_visibility", _MEMBER_VISIBILITIES)):
        if key in body:
            if body[key] not in allowed:
                raise unprocessable(f"{key} must be one of {', '.join(allowed)}")
            setattr(group, key, body[key])
    if body.get("authentication_assurance_timeout") is not None:
        timeout = body["authentication_assurance_timeout"]
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
            raise unprocessable("authentication_assurance_timeout must be a positive integer")
        group.authentication_assurance_timeout = timeout
    if "signup_fields" in body:
        fields = body["signup_fields"]
        if not isinstance(fields, list) or not all(
            isinstance(item, str) and item in SIGNUP_FIELDS for item in fields
        ):
            raise unprocessable("signup_fields must be a list drawn from "
                                f"{', '.join(sorted(SIGNUP_FIELDS))}")
        group.signup_fields = list(dict.fromkeys(fields))
    group.updated = utcnow()
    session.flush()
    return policies_document(group)
