"""A storage gateway's path restrictions (``path_restrictions#1.0.0``), as pure functions.

The document lists paths in the gateway's namespace under ``read``, ``read_write`` and
``none``; ``$HOME`` (or a leading ``~``) stands for the user's home and ``$USER`` for the
local account. The most specific (longest) listed path that contains a path decides what may
be done there; a path no listed path contains is out of reach. Directories above a readable
path may be walked through and listed, but show only what leads somewhere readable (so a
user sees their own folder at the collection root, never their neighbours'), and nothing may
be written there. With no document, or one that lists nothing, every path is read-write.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from isthmus.storage import paths
from isthmus.storage.errors import InvalidPath

logger = logging.getLogger("isthmus.connect")

HOME = "$HOME"
USER = "$USER"
# The document's lists, from the least to the most access (ties go to the least).
_LISTS = ("none", "read", "read_write")


class Access(IntEnum):
    """What may be done at a path, each level including those below it."""

    NONE = 0
    TRAVERSE = 1  # stat, and list showing only what leads somewhere readable
    READ = 2
    READ_WRITE = 3


def within(path: str, ancestor: str) -> bool:
    """Whether canonical ``path`` is ``ancestor`` or lies under it."""
    return ancestor == paths.ROOT or path == ancestor or path.startswith(ancestor + "/")


@dataclass(frozen=True)
class PathRules:
    """Access by canonical gateway path; ``rules`` None means unrestricted."""

    rules: tuple[tuple[str, Access], ...] | None

    @classmethod
    def unrestricted(cls) -> PathRules:
        return cls(None)

    @classmethod
    def from_document(
        cls, document: Mapping[str, Any] | None, *, home: str | None, user: str
    ) -> PathRules:
        """The rules of a ``path_restrictions`` document for one user. ``home`` is the
        user's home in the gateway's namespace (None: rules naming it grant nothing)."""
        if not document:
            return cls.unrestricted()
        rules: dict[str, Access] = {}
        for access, key in ((Access.NONE, "none"), (Access.READ, "read"),
                            (Access.READ_WRITE, "read_write")):
            for listed in document.get(key) or ():
                path = _expand(str(listed), home, user)
                if path is not None:
                    rules[path] = min(rules.get(path, access), access)
        if not any(document.get(key) for key in _LISTS):
            return cls.unrestricted()
        return cls(tuple(sorted(rules.items())))

    def access(self, path: str) -> Access:
        """What may be done at canonical gateway ``path``."""
        if self.rules is None:
            return Access.READ_WRITE
        deciding = max((rule for rule in self.rules if within(path, rule[0])),
                       key=lambda rule: len(rule[0]), default=None)
        if deciding is not None and deciding[1] >= Access.READ:
            return deciding[1]
        leads_on = any(rule_path != path and within(rule_path, path) and level >= Access.READ
                       for rule_path, level in self.rules)
        return Access.TRAVERSE if leads_on else Access.NONE

    def least_within(self, path: str) -> Access:
        """The least access anywhere in the tree at ``path``: what an operation on the whole
        tree (a recursive delete, a move, a copy) needs to have everywhere."""
        least = self.access(path)
        for rule_path, level in self.rules or ():
            if rule_path != path and within(rule_path, path):
                least = min(least, level)
        return least

    def mentions(self, path: str) -> bool:
        """Whether some rule grants access at or under ``path`` (e.g. the user's home)."""
        return any(within(rule_path, path) and level >= Access.READ
                   for rule_path, level in self.rules or ())


def _expand(listed: str, home: str | None, user: str) -> str | None:
    """A listed path with ``$HOME``, ``~`` and ``$USER`` replaced, made canonical; None when it
    names a home the user has not got, or cannot be a path at all."""
    text = listed
    if text == "~" or text.startswith("~/"):
        text = HOME + text[1:]
    if HOME in text:
        if home is None:
            return None
        text = text.replace(HOME, home)
    text = text.replace(USER, user)
    if not text.startswith("/"):
        logger.warning("ignoring path restriction %r: it is not an absolute path", listed)
        return None
    try:
        return paths.normalize(text)
    except InvalidPath:
        logger.warning("ignoring path restriction %r: it is not a usable path", listed)
        return None
