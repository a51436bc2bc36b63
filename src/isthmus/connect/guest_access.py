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
  covers the path; where the mapped collection sets ``disable_anonymous_writes`` (always on
  high assurance), an ``anonymous`` rule gives nobody more than ``r``;
- nobody gets more than the owner may share there: the storage gateway's path
  restrictions for the owner's account and the mapped collection's sharing restrictions
  (with the sharing policies that apply to the owner's account) cap every answer, at
  every access, as GCS evaluates them.

Rules only add deeper down, but the caps may take away (a ``none`` pattern inside a shared
folder), so a whole tree (`GuestDecision.least_within`) asks the caps for their least
beneath the path, as `data_paths.DataPaths` answers it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from isthmus.connect import path_restrictions
from isthmus.connect.data_paths import DataPaths, to_permission
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

    def least_within(self, path: str) -> str:
        """The least `reach` anywhere in the tree at a canonical path of the mapped
        collection."""
        return to_permission(min(self._gateway().least_within(_join(self.mapped_base, path)),
                                 self._sharing().least_within(path)))

    def readable_below(self, path: str) -> list[str]:
        """Mapped collection paths strictly beneath canonical ``path`` that a restriction
        names readable (where walking through may lead)."""
        gateway = self._gateway().readable_below(_join(self.mapped_base, path))
        return [*_inside(self.mapped_base, gateway), *self._sharing().readable_below(path)]

    def _gateway(self) -> DataPaths:
        return DataPaths(self.gateway_restrictions, self.gateway_paths)

    def _sharing(self) -> DataPaths:
        return DataPaths(self.sharing_restrictions, self.mapped_paths)


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
    # False when the mapped collection sets disable_anonymous_writes.
    anonymous_writes: bool = True
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

    def floor(self, path: str) -> str:
        """The least `ceiling` anywhere in the tree at a canonical guest path."""
        return self.area.least_within(_join(self.guest_base, path))

    def readable_below(self, path: str) -> list[str]:
        """Guest paths strictly beneath canonical ``path`` that the owner may share."""
        return _inside(self.guest_base, self.area.readable_below(_join(self.guest_base, path)))


def _join(base: str, path: str) -> str:
    return paths.normalize(base.rstrip("/") + "/" + path.lstrip("/"))


def _inside(base: str, named: Iterable[str]) -> list[str]:
    """Canonical paths relative to ``base``, leaving out those outside it."""
    return [found for path in named
            if (found := path_restrictions.within(base, path)) is not None]


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


def naming(rules: Iterable[AccessRule], identity_ids: Collection[uuid.UUID],
           group_ids: Collection[uuid.UUID]) -> list[AccessRule]:
    """The rules that name the caller (``identity_ids`` empty: anonymous rules only)."""
    if not identity_ids:
        return [rule for rule in rules if rule.principal_type == ANONYMOUS]
    return [rule for rule in rules if applies_to(rule, identity_ids, group_ids)]


def granted_by_rules(rules: Iterable[AccessRule], identity_ids: Collection[uuid.UUID],
                     group_ids: Collection[uuid.UUID], path: str, *,
                     anonymous_writes: bool = True) -> str:
    """The strongest permission the rules naming the caller give at ``path`` (additive)."""
    granted = NO_ACCESS
    for rule in rules:
        if applies_to(rule, identity_ids, group_ids) and covers(rule.path, path):
            writes = rule.permissions == READ_WRITE and (
                anonymous_writes or rule.principal_type != ANONYMOUS)
            granted = stronger(granted, READ_WRITE if writes else READ)
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
        granted = weaker(granted_by_rules(naming(rules, (), ()), (), (), canonical), READ)
    elif policy.managed_by(identity_ids, group_ids):
        granted = READ_WRITE
    else:
        granted = granted_by_rules(rules, identity_ids, group_ids, canonical,
                                   anonymous_writes=policy.anonymous_writes)
    if granted == NO_ACCESS:
        return NO_ACCESS
    return weaker(granted, policy.ceiling(canonical))


@dataclass(frozen=True)
class GuestDecision:
    """`effective_permission` for one caller on one guest collection, with what a file
    server also asks: a whole tree's least, and whether a folder leads somewhere readable."""

    policy: GuestPolicy
    rules: tuple[AccessRule, ...]
    identity_ids: frozenset[uuid.UUID]
    group_ids: frozenset[uuid.UUID]

    def permission(self, path: str) -> str:
        return effective_permission(self.policy, self.rules, self.identity_ids,
                                    self.group_ids, path)

    def least_within(self, path: str) -> str:
        """The least permission anywhere in the tree at ``path``: the caller's at ``path``
        (rules only add beneath it) capped by the least the owner may share in the tree."""
        canonical = paths.normalize(path)
        return weaker(self.permission(canonical), self.policy.floor(canonical))

    def leads_to_readable(self, path: str) -> bool:
        """Whether something strictly beneath ``path`` may be read where a rule naming the
        caller, or a restriction letting the owner share, names a path. Nothing else is
        looked for: better to show a folder too few than one too many."""
        canonical = paths.normalize(path)
        candidates = [*(paths.normalize(rule.path) for rule in
                        naming(self.rules, self.identity_ids, self.group_ids)),
                      *self.policy.readable_below(canonical)]
        return any(candidate != canonical
                   and path_restrictions.within(canonical, candidate) is not None
                   and self.permission(candidate) != NO_ACCESS for candidate in candidates)
