"""Memberships: who belongs to which group, and the batch actions that change that.

`groups_of` is what other services ask ("which groups is this identity set an
active member of"); `apply_actions` carries out ``POST /v2/groups/{id}``, where
each item either succeeds (its membership comes back under its action) or fails
alone (an entry under ``errors``), as globus-sdk's BatchMembershipActions expects.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.db import reading, utcnow
from isthmus.core.errors import APIError
from isthmus.core.identities import IdentityRecord
from isthmus.groups import access
from isthmus.groups.access import Standing, parse_uuid, unprocessable
from isthmus.groups.documents import Document, membership_document
from isthmus.groups.models import Group, Membership

MAX_ITEMS = 1000
_ENDED = frozenset({"rejected", "left", "removed", "declined"})


def groups_of(session: Session, identity_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """The groups in which any of ``identity_ids`` is an active member."""
    wanted = list(identity_ids)
    if not wanted:
        return set()
    return set(session.scalars(
        select(Membership.group_id).distinct()
        .where(Membership.identity_id.in_(wanted), Membership.status == "active")
    ))


@dataclass
class MembershipDirectory:
    """`core.groups.GroupMembership` for services in this process."""

    sessions: sessionmaker[Session]

    def groups_of(self, identity_ids: Collection[uuid.UUID]) -> frozenset[uuid.UUID]:
        with reading(self.sessions) as session:
            return frozenset(groups_of(session, identity_ids))


# --- parsing a batch ---------------------------------------------------------------


@dataclass(frozen=True)
class ActionItem:
    identity_id: uuid.UUID
    role: str | None
    membership_fields: dict[str, str] | None


def _item(action: str, raw: Any) -> ActionItem:
    if not isinstance(raw, dict):
        raise unprocessable(f"Each {action} item must be an object with an identity_id")
    role = raw.get("role")
    if action == "change_role" and role is None:
        raise unprocessable("Each change_role item needs a role")
    if role is not None and role not in access.ROLES:
        raise unprocessable(f"role must be one of {', '.join(access.ROLES)}")
    fields = raw.get("membership_fields")
    if fields is not None and not (
        isinstance(fields, dict)
        and all(isinstance(k, str) and isinstance(v, str) and len(v) <= 1000
                for k, v in fields.items())
        and len(fields) <= 50
    ):
        raise unprocessable("membership_fields must be an object of strings")
    return ActionItem(parse_uuid(raw.get("identity_id"), f"{action}.identity_id"),
                      role, fields)


def parse_actions(body: dict[str, Any]) -> dict[str, list[ActionItem]]:
    """The batch, in the order it was given; 422 for anything malformed in it."""
    unknown = [key for key in body if key not in access.ACTION_ROLES]
    if unknown:
        raise unprocessable(f"Unknown membership action {unknown[0][:100]!r}; the actions "
                            f"are {', '.join(access.ACTION_ROLES)}")
    actions: dict[str, list[ActionItem]] = {}
    for action, items in body.items():
        if not isinstance(items, list):
            raise unprocessable(f"{action} must be a list of membership items")
        actions[action] = [_item(action, raw) for raw in items]
    if not actions:
        raise unprocessable("Give at least one membership action")
    if sum(len(items) for items in actions.values()) > MAX_ITEMS:
        raise unprocessable(f"A batch may hold at most {MAX_ITEMS} items")
    return actions


def identities_named(actions: dict[str, list[ActionItem]]) -> set[uuid.UUID]:
    return {item.identity_id for items in actions.values() for item in items}


# --- carrying it out -----------------------------------------------------------------


class ItemError(Exception):
    """One item of a batch that could not be carried out; the others go on."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class _Batch:
    session: Session
    found: Standing
    known: dict[uuid.UUID, IdentityRecord]

    @property
    def group(self) -> Group:
        return self.found.group

    def existing(self, identity_id: uuid.UUID) -> Membership | None:
        return self.session.get(Membership, (self.group.id, identity_id))

    def require_existing(self, identity_id: uuid.UUID) -> Membership:
        membership = self.existing(identity_id)
        if membership is None or membership.status in _ENDED:
            raise ItemError("NO_MEMBERSHIP", "Identity has no membership in group.")
        return membership

    def record(self, identity_id: uuid.UUID) -> IdentityRecord:
        identity = self.known.get(identity_id)
        if identity is None:
            raise ItemError("IDENTITY_NOT_FOUND", f"No identity with id {identity_id}")
        return identity

    def own(self, identity_id: uuid.UUID) -> None:
        if identity_id not in self.found.caller.identities:
            raise ItemError("FORBIDDEN", f"Identity {identity_id} is not one of your "
                                         "identities")

    def may_grant(self, role: str) -> None:
        if role != "member" and not self.found.has_role("admin"):
            raise ItemError("FORBIDDEN", "Only admins may make an identity a manager or admin")

    def keeps_an_admin(self, membership: Membership) -> None:
        """Refuse to end or demote the group's last active admin."""
        if membership.role != "admin" or membership.status != "active":
            return
        others = self.session.scalar(
            select(func.count()).select_from(Membership).where(
                Membership.group_id == self.group.id, Membership.role == "admin",
                Membership.status == "active", Membership.identity_id != membership.identity_id,
            )
        )
        if not others:
            raise ItemError("LAST_ADMIN", "The group's last admin cannot leave, be removed "
                                          "or lose the admin role; make another admin first")

    def put(self, identity_id: uuid.UUID, status: str, role: str,
            fields: dict[str, str] | None = None) -> Membership:
        """Create or update the identity's membership with this status and role."""
        now = utcnow()
        membership = self.existing(identity_id)
        if membership is None:
            membership = Membership(
                group_id=self.group.id, identity_id=identity_id,
                username=self.record(identity_id).username, membership_fields={},
            )
            self.session.add(membership)
        membership.status = status
        membership.role = role
        membership.membership_action_time = now
        if status == "invited":
            membership.invite_time = now
        if fields is not None:
            membership.membership_fields = dict(fields)
        self.session.flush()
        return membership

    def change(self, membership: Membership, status: str) -> Membership:
        membership.status = status
        membership.membership_action_time = utcnow()
        self.session.flush()
        return membership


def _add(batch: _Batch, item: ActionItem) -> Membership:
    role = item.role or "member"
    batch.may_grant(role)
    batch.record(item.identity_id)
    current = batch.existing(item.identity_id)
    if current is not None and current.status == "active":
        raise ItemError("ALREADY_ACTIVE", "The identity is already an active member of the "
                                          "group.")
    return batch.put(item.identity_id, "active", role)


def _invite(batch: _Batch, item: ActionItem) -> Membership:
    role = item.role or "member"
    batch.may_grant(role)
    batch.record(item.identity_id)
    current = batch.existing(item.identity_id)
    if current is not None and current.status == "active":
        raise ItemError("ALREADY_ACTIVE", "The identity is already an active member of the "
                                          "group.")
    return batch.put(item.identity_id, "invited", role)


def _remove(batch: _Batch, item: ActionItem) -> Membership:
    membership = batch.require_existing(item.identity_id)
    if membership.role != "member" and not batch.found.has_role("admin"):
        raise ItemError("FORBIDDEN", "Only admins may remove a manager or admin")
    batch.keeps_an_admin(membership)
    return batch.change(membership, "removed")


def _pending(batch: _Batch, item: ActionItem) -> Membership:
    membership = batch.existing(item.identity_id)
    if membership is None or membership.status != "pending":
        raise ItemError("NOT_PENDING", "The identity has no pending request to join.")
    return membership


def _approve(batch: _Batch, item: ActionItem) -> Membership:
    return batch.change(_pending(batch, item), "active")


def _reject(batch: _Batch, item: ActionItem) -> Membership:
    return batch.change(_pending(batch, item), "rejected")


def _invited(batch: _Batch, item: ActionItem) -> Membership:
    batch.own(item.identity_id)
    membership = batch.existing(item.identity_id)
    if membership is None or membership.status != "invited":
        raise ItemError("NOT_INVITED", "The identity has no invitation to this group.")
    return membership


def _accept(batch: _Batch, item: ActionItem) -> Membership:
    return batch.change(_invited(batch, item), "active")


def _decline(batch: _Batch, item: ActionItem) -> Membership:
    return batch.change(_invited(batch, item), "declined")


def _join(batch: _Batch, item: ActionItem) -> Membership:
    """Join with an invitation, or as another identity of someone already a member."""
    batch.own(item.identity_id)
    current = batch.existing(item.identity_id)
    if current is not None and current.status == "active":
        raise ItemError("ALREADY_ACTIVE", "The identity is already an active member of the "
                                          "group.")
    if current is not None and current.status == "invited":
        return batch.put(item.identity_id, "active", current.role, item.membership_fields)
    if batch.found.has_role("member"):
        return batch.put(item.identity_id, "active", "member", item.membership_fields)
    raise ItemError("JOIN_NOT_ALLOWED", "Joining this group needs an invitation; "
                                        "request to join instead (request_join)")


def _request_join(batch: _Batch, item: ActionItem) -> Membership:
    batch.own(item.identity_id)
    if not batch.group.join_requests:
        raise ItemError("JOIN_REQUESTS_DISABLED", "This group does not take requests to join.")
    current = batch.existing(item.identity_id)
    if current is not None and current.status in ("active", "invited"):
        raise ItemError(
            "ALREADY_ACTIVE" if current.status == "active" else "ALREADY_INVITED",
            f"The identity is already {current.status} in the group.",
        )
    return batch.put(item.identity_id, "pending", "member", item.membership_fields)


def _leave(batch: _Batch, item: ActionItem) -> Membership:
    batch.own(item.identity_id)
    membership = batch.existing(item.identity_id)
    if membership is None or membership.status != "active":
        raise ItemError("NO_MEMBERSHIP", "Identity has no active membership in group.")
    batch.keeps_an_admin(membership)
    return batch.change(membership, "left")


def _change_role(batch: _Batch, item: ActionItem) -> Membership:
    membership = batch.require_existing(item.identity_id)
    if membership.status not in ("active", "invited"):
        raise ItemError("NO_MEMBERSHIP", "Only an active or invited membership has a role.")
    assert item.role is not None  # parse_actions demands it
    if item.role != "admin":
        batch.keeps_an_admin(membership)
    membership.role = item.role
    membership.membership_action_time = utcnow()
    batch.session.flush()
    return membership


_HANDLERS: dict[str, Callable[[_Batch, ActionItem], Membership]] = {
    "add": _add, "invite": _invite, "remove": _remove, "approve": _approve,
    "reject": _reject, "accept": _accept, "decline": _decline, "join": _join,
    "request_join": _request_join, "leave": _leave, "change_role": _change_role,
}


def apply_actions(
    session: Session, found: Standing, actions: dict[str, list[ActionItem]],
    known: dict[uuid.UUID, IdentityRecord],
) -> Document:
    """Carry out a batch in order; ``known`` holds the named identities that exist."""
    for action in actions:
        least = access.ACTION_ROLES[action]
        if least is not None and not found.has_role(least):
            raise APIError(
                403, "FORBIDDEN",
                f"Only {'managers and admins' if least == 'manager' else 'admins'} of this "
                f"group may {action.replace('_', ' ')} members",
            )
    batch = _Batch(session, found, known)
    result: Document = {}
    errors: dict[str, list[Document]] = {}
    for action, items in actions.items():
        done = result.setdefault(action, [])
        for item in items:
            try:
                done.append(membership_document(_HANDLERS[action](batch, item)))
            except ItemError as error:
                errors.setdefault(action, []).append({
                    "code": error.code, "detail": error.detail,
                    "identity_id": str(item.identity_id),
                })
    if errors:
        result["errors"] = errors
    return result
