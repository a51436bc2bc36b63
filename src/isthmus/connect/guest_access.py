"""What a caller may do at one path of a guest collection: the decision, as a pure function.

As Globus decides it (Transfer's "Guest Collection Permission Management"):
- the guest collection's owner, and whoever holds an effective ``administrator`` or
  ``access_manager`` role on it (directly, or as a member of a group holding it), have
  ``rw`` on all of it (the implicit rules a rule list shows);
- access rules are additive: a rule on ``/a/`` covers ``/a`` and everything below it, and
  a caller gets the strongest permission of all rules that cover the path and name them,
  a group they are in, ``all_authenticated_users`` (any caller with an identity) or
  ``anonymous`` (anyone);
- an anonymous caller (no identity) reads at most, and only where an ``anonymous`` rule
  covers the path;
- nobody gets more than the owner may share there: the storage gateway's path
  restrictions for the owner's account and the mapped collection's sharing restrictions
  (with the sharing policies that apply to the owner's account) cap every answer, at
  every access, as GCS evaluates them.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from isthmus.connect import path_restrictions
from isthmus.connect.path_restrictions import UserPaths, stronger, weaker
from isthmus.core.access_rules import (
    ALL_AUTHENTICATED_USERS,
    ANONYMOUS,
    GROUP,
    IDENTITY,
    NO_ACCESS,
    READ,
    READ_WRITE,
    AccessRule,
)
from isthmus.storage import paths


@dataclass(frozen=True)
class ShareableArea:
    """What a storage account may share from a mapped collection.

    ``mapped_base`` is the mapped collection's root in the gateway's namespace (canonical);
    ``gateway_paths`` interpolates the gateway's restrictions (gateway namespace) and
    ``mapped_paths`` the sharing restrictions (mapped collection namespace).
    """

    mapped_base: str
    gateway_restrictions: Mapping[str, Any] | None
    sharing_restrictions: Mapping[str, Any] | None
    gateway_paths: UserPaths
    mapped_paths: UserPaths

    def reach(self, path: str) -> str:
        """At most what may be shared at a canonical path of the mapped collection: what
        the account reaches there (the gateway's restrictions) and may share."""
        return weaker(
            path_restrictions.permission(self.gateway_restrictions,
                                         _join(self.mapped_base, path), self.gateway_paths),
            path_restrictions.permission(self.sharing_restrictions, path, self.mapped_paths))


@dataclass(frozen=True)
class GuestPolicy:
    """Everything about one guest collection that the decision needs, whoever asks."""

    owner_identity_id: uuid.UUID | None
    # Identities with an effective administrator or access_manager role on the guest.
    managers: frozenset[uuid.UUID]
    # The guest's root in the mapped collection's namespace (canonical).
    guest_base: str
    # What its owner's account may share from the mapped collection.
    area: ShareableArea
    # Groups with such a role: their members manage the guest too.
    manager_groups: frozenset[uuid.UUID] = frozenset()

    def managed_by(self, identity_ids: Collection[uuid.UUID],
                   group_ids: Collection[uuid.UUID]) -> bool:
        return (self.owner_identity_id in identity_ids
                or bool(self.managers & set(identity_ids))
                or bool(self.manager_groups & set(group_ids)))

    def ceiling(self, path: str) -> str:
        """What the owner may share at a guest path: at most this, for anyone."""
        return self.area.reach(_join(self.guest_base, path))


def _join(base: str, path: str) -> str:
    return paths.normalize(base.rstrip("/") + "/" + path.lstrip("/"))


def covers(rule_path: str, path: str) -> bool:
    """A rule on ``/a/`` covers ``/a`` and its subtree (canonical ``path``)."""
    root = paths.normalize(rule_path)
    return root == "/" or path == root or path.startswith(root + "/")


def applies_to(rule: AccessRule, identity_ids: Collection[uuid.UUID],
               group_ids: Collection[uuid.UUID]) -> bool:
    if rule.principal_type == ANONYMOUS:
        return True
    if rule.principal_type == ALL_AUTHENTICATED_USERS:
        return bool(identity_ids)
    try:
        principal = uuid.UUID(rule.principal)
    except ValueError:
        return False
    if rule.principal_type == IDENTITY:
        return principal in identity_ids
    return rule.principal_type == GROUP and principal in group_ids


def granted_by_rules(rules: Iterable[AccessRule], identity_ids: Collection[uuid.UUID],
                     group_ids: Collection[uuid.UUID], path: str) -> str:
    """The strongest permission the rules naming the caller give at ``path`` (additive)."""
    granted = NO_ACCESS
    for rule in rules:
        if applies_to(rule, identity_ids, group_ids) and covers(rule.path, path):
            granted = stronger(granted, READ_WRITE if rule.permissions == READ_WRITE
                               else READ)
    return granted


def effective_permission(
    policy: GuestPolicy, rules: Iterable[AccessRule], identity_ids: Collection[uuid.UUID],
    group_ids: Collection[uuid.UUID], path: str,
) -> str:
    """"" (no access), "r" or "rw" for a caller at a path of the guest collection.

    ``identity_ids`` is the caller's identity set (empty: an anonymous caller); ``path`` is
    absolute in the guest collection (made canonical here; `storage.errors.InvalidPath`
    when it climbs out of the root).
    """
    canonical = paths.normalize(path)
    if not identity_ids:
        anonymous = [rule for rule in rules if rule.principal_type == ANONYMOUS]
        granted = weaker(granted_by_rules(anonymous, (), (), canonical), READ)
    elif policy.managed_by(identity_ids, group_ids):
        granted = READ_WRITE
    else:
        granted = granted_by_rules(rules, identity_ids, group_ids, canonical)
    if granted == NO_ACCESS:
        return NO_ACCESS
    return weaker(granted, policy.ceiling(canonical))
