"""What a caller may do where on a collection's files over HTTPS and WebDAV.

`path_restrictions.permission` answers for one path: nothing, ``r`` or ``rw``. A file
server needs two more answers, built on it here:

- walking through: a folder above a readable path may be looked at and listed, showing
  only what leads somewhere readable (so at the root of "<host> files" each user sees
  their own folder and nobody else's), and nothing may be written there;
- a whole tree: a recursive delete, a move or a copy needs its permission everywhere
  beneath the path too, so a restriction deeper down (a ``none`` or ``read`` pattern
  inside a writable folder) refuses it. Where a pattern's wildcards make "beneath" hard to
  know, the pattern's own level is assumed to apply: the answer errs towards refusing.

Paths here are in the gateway's namespace, where the restrictions are written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from typing import Any

from isthmus.connect import path_restrictions
from isthmus.connect.path_restrictions import LEVELS, UserPaths
from isthmus.core.access_rules import NO_ACCESS, READ, READ_WRITE
from isthmus.storage import paths
from isthmus.storage.errors import InvalidPath

_WILDCARD = re.compile(r"[*?\[]")


class Access(IntEnum):
    """What may be done at a path, each level including those below it."""

    NONE = 0
    TRAVERSE = 1  # stat, and list showing only what leads somewhere readable
    READ = 2
    READ_WRITE = 3


_FROM_PERMISSION = {NO_ACCESS: Access.NONE, READ: Access.READ, READ_WRITE: Access.READ_WRITE}
_TO_PERMISSION = {access: permission for permission, access in _FROM_PERMISSION.items()}


def from_permission(permission: str) -> Access:
    """``""``, ``r`` or ``rw`` as an `Access`."""
    return _FROM_PERMISSION[permission]


def to_permission(access: Access) -> str:
    """An `Access` as the permission it includes (walking through is no permission)."""
    return NO_ACCESS if access is Access.TRAVERSE else _TO_PERMISSION[access]


@dataclass(frozen=True)
class _Pattern:
    text: str  # interpolated; canonical when literal
    level: Access
    # The deepest folder every match lies in or under: the pattern itself when it has no
    # wildcard, else the folder holding its first wildcard.
    anchor: str
    literal: bool

    def leads_below(self, path: str) -> bool:
        """Whether this pattern surely names something strictly beneath ``path`` (for
        walking through: better to show a folder too few than one too many)."""
        return self.text != path and path_restrictions.within(path, self.anchor) is not None

    def may_match_below(self, path: str) -> bool:
        """Whether some path this pattern matches may lie strictly beneath ``path`` (for
        whole trees: better to consider a pattern too many)."""
        if self.literal:
            return self.leads_below(path)
        return (path_restrictions.within(path, self.anchor) is not None
                or path_restrictions.within(self.anchor, path) is not None)


@dataclass(frozen=True)
class DataPaths:
    """A gateway's ``restrict_paths`` for one user (None: unrestricted)."""

    restrictions: Mapping[str, Any] | None
    user: UserPaths

    @cached_property
    def _patterns(self) -> list[_Pattern]:
        found = []
        for key, permission in LEVELS:
            for raw in (self.restrictions or {}).get(key) or ():
                text = path_restrictions.interpolate(str(raw), self.user)
                if text is None:
                    continue
                wildcard = _WILDCARD.search(text)
                if not text.startswith("/") and (wildcard is None or wildcard.start() > 0):
                    continue  # it matches no absolute path
                if wildcard is None:
                    try:
                        canonical = paths.normalize(text)
                    except InvalidPath:
                        continue
                    found.append(_Pattern(canonical, _FROM_PERMISSION[permission], canonical,
                                          literal=True))
                    continue
                # A leading wildcard ("*.key", as fnmatch's "*" crosses "/") may match
                # anywhere: its anchor is the root.
                folder = text[:wildcard.start()].rsplit("/", 1)[0] or "/"
                try:
                    anchor = paths.normalize(folder)
                except InvalidPath:
                    anchor = paths.ROOT
                found.append(_Pattern(text, _FROM_PERMISSION[permission], anchor,
                                      literal=False))
        return found

    @cached_property
    def _compiled(self) -> path_restrictions.CompiledRestrictions:
        return path_restrictions.compile_restrictions(self.restrictions, self.user)

    def access(self, path: str) -> Access:
        """What may be done at canonical ``path``."""
        level = _FROM_PERMISSION[self._compiled.permission(path)]
        if level >= Access.READ:
            return level
        if any(pattern.level >= Access.READ and pattern.leads_below(path)
               for pattern in self._patterns):
            return Access.TRAVERSE
        return level

    def readable_below(self, path: str) -> list[str]:
        """The paths strictly beneath canonical ``path`` that a literal ``read`` or
        ``read_write`` pattern names (where walking through may lead)."""
        return [pattern.text for pattern in self._patterns
                if pattern.literal and pattern.level >= Access.READ
                and pattern.leads_below(path)]

    def least_within(self, path: str) -> Access:
        """The least access anywhere in the tree at canonical ``path``."""
        least = self.access(path)
        for pattern in self._patterns:
            if pattern.may_match_below(path):
                least = min(least, self.access(pattern.text) if pattern.literal
                            else pattern.level)
        return least
