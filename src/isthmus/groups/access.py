"""Who may see and do what in a group: the caller's standing and Globus's role rules.

- Admins change the group, its policies and members' roles, and delete it.
- Managers (and admins) add, invite, remove, approve and reject members.
- Anyone acts on their own identities: join, leave, accept, decline, request_join.
- A private group is seen only by its members, invitees and applicants; others
  get 404, as for a group that does not exist. Members see the member list only
  when the policy ``group_members_visibility`` is ``members``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.core.errors import APIError, forbidden, not_found
from isthmus.groups.models import Group, Membership
from isthmus.groups.service import Caller

ROLES = ("member", "manager", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
STATUSES = ("active", "invited", "pending", "rejected", "left", "removed", "declined")
# A membership in one of these lets its identity see a private group.
_SEES_GROUP = frozenset({"active", "invited", "pending"})

# The least role each batch action needs; None: the caller acts on their own identities.
ACTION_ROLES: dict[str, str | None] = {
    "add": "manager", "invite": "manager", "remove": "manager",
    "approve": "manager", "reject": "manager", "change_role": "admin",
    "accept": None, "decline": None, "join": None, "leave": None, "request_join": None,
}


def unprocessable(message: str, code: str = "UNPROCESSABLE_ENTITY") -> APIError:
    """Well-formed JSON whose values make no sense here (FastAPI's 422, as Groups sends)."""
    return APIError(422, code, message)


def parse_uuid(value: Any, what: str) -> uuid.UUID:
    if not isinstance(value, str):
        raise unprocessable(f"{what} must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise unprocessable(f"{what} is not a valid UUID: {value[:100]!r}") from None


@dataclass(frozen=True)
class Standing:
    """One caller in one group: their memberships there and what those allow."""

    group: Group
    caller: Caller
    mine: tuple[Membership, ...]

    @property
    def role(self) -> str | None:
        """The highest role among the caller's active memberships."""
        roles = [m.role for m in self.mine if m.status == "active"]
        return max(roles, key=_RANK.__getitem__) if roles else None

    def has_role(self, least: str) -> bool:
        return self.role is not None and _RANK[self.role] >= _RANK[least]

    @property
    def can_see(self) -> bool:
        return self.group.group_visibility == "authenticated" or any(
            m.status in _SEES_GROUP for m in self.mine
        )

    @property
    def sees_members(self) -> bool:
        return self.has_role("manager") or (
            self.has_role("member") and self.group.group_members_visibility == "members"
        )

    def may(self, action: str) -> bool:
        least = ACTION_ROLES[action]
        return least is None or self.has_role(least)

    def require(self, least: str, doing: str) -> None:
        if not self.has_role(least):
            raise forbidden(f"Only {least}s{' and admins' if least == 'manager' else ''} "
                            f"of this group may {doing}")


def standing(session: Session, group: Group, caller: Caller) -> Standing:
    mine = session.scalars(
        select(Membership)
        .where(Membership.group_id == group.id, Membership.identity_id.in_(caller.identities))
        .order_by(Membership.created)
    ).all()
    return Standing(group, caller, tuple(mine))


def find_group(session: Session, group_id: str | uuid.UUID, caller: Caller,
               *, for_update: bool = False) -> Standing:
    """The caller's standing in a group they can see; 404 for one they cannot, or none."""
    key = group_id if isinstance(group_id, uuid.UUID) else parse_uuid(group_id, "group_id")
    group = session.get(Group, key, with_for_update=for_update)
    found = standing(session, group, caller) if group is not None else None
    if found is None or not found.can_see:
        raise not_found(f"Group {key} not found")
    return found


def visible_memberships(found: Standing) -> list[Membership]:
    """The member list as this caller may see it (always including their own)."""
    if found.has_role("manager"):
        return list(found.group.memberships)
    if found.sees_members:
        return [m for m in found.group.memberships
                if m.status == "active" or m.identity_id in found.caller.identities]
    return list(found.mine)


def allowed_actions(found: Standing) -> dict[str, bool]:
    """What the caller may do here: the batch actions, and the group-level changes."""
    writes = found.caller.may_write
    allowed = {action: writes and found.may(action) for action in ACTION_ROLES}
    for change in ("update_group", "delete_group", "set_policies"):
        allowed[change] = writes and found.has_role("admin")
    return allowed
