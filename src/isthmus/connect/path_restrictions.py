"""GCS path restrictions (``path_restrictions#1.0.0``) evaluated for one user and one path.

A storage gateway's ``restrict_paths``, a mapped collection's ``sharing_restrict_paths``
and sharing policies are all this document: ``read_write``, ``read`` and ``none`` lists of
fnmatch(3) patterns (flags 0: ``*`` matches ``/`` too), where a leading ``~`` or ``$HOME``
stands for the user's home folder and ``$USER`` for their storage account. As the GCS
PathRestrictions schema says, patterns are applied from the longest leading match of the
path to the shortest (a literal character outranks a bracket expression, which outranks
``?``, which outranks ``*``), folded with its override table: a longer ``none`` wins, a
longer ``read_write`` wins, a longer ``read`` gives way only to a shorter ``read_write``.
A path no pattern matches is not reachable. Pure functions: the Manager API (guest
creation), the guest decision and the data plane share them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from isthmus.core.access_rules import NO_ACCESS, READ, READ_WRITE
from isthmus.storage import paths
from isthmus.storage.errors import InvalidPath

# The document's lists and the permission each grants, most restrictive first (ties
# between equally specific patterns go to the more restrictive).
LEVELS = (("none", NO_ACCESS), ("read", READ), ("read_write", READ_WRITE))
_RANK = {NO_ACCESS: 0, READ: 1, READ_WRITE: 2}


@dataclass(frozen=True)
class UserPaths:
    """What the interpolations stand for: a home folder (in the namespace the patterns are
    written in) and the storage account."""

    # None: the user has no home in this namespace, and ~ / $HOME patterns match nothing.
    home: str | None
    username: str


def weaker(first: str, second: str) -> str:
    return first if _RANK[first] <= _RANK[second] else second


def stronger(first: str, second: str) -> str:
    return first if _RANK[first] >= _RANK[second] else second


def interpolate(pattern: str, user: UserPaths) -> str | None:
    """``~/x``, ``/~/x`` and ``$HOME/x`` -> ``<home>/x``; ``$USER`` anywhere -> the account.

    None for a home-relative pattern when the user has no home here.
    """
    text = pattern.replace("$USER", user.username)
    for prefix in ("/~", "~", "$HOME"):
        if text == prefix or text.startswith(prefix + "/"):
            if user.home is None:
                return None
            return user.home.rstrip("/") + "/" + text[len(prefix):].lstrip("/")
    return text


def resolve_path(path: str, user: UserPaths) -> str:
    """A user-given path (a guest's ``collection_base_path``) made canonical, with ``~``,
    ``$HOME`` and ``$USER`` expanded; `storage.errors.InvalidPath` when it climbs out or
    names a home the user does not have here."""
    expanded = interpolate(path, user)
    if expanded is None:
        raise InvalidPath(f"'{path}' names your home folder, which is not in this collection",
                          path)
    return paths.normalize(expanded)


def _pattern_path(pattern: str) -> str:
    # "/a/" and "/a" name the same folder; "/" stays the root.
    return pattern.rstrip("/") or pattern[:1]


def _leading_match(pattern: str, path: str) -> str | None:
    """The longest leading part of canonical ``path`` (whole components) the pattern matches."""
    parts = paths.split(path)
    for count in range(len(parts), -1, -1):
        prefix = paths.join_parts(parts[:count])
        if fnmatchcase(prefix, pattern):
            return prefix
    return None


def _specificity(pattern: str) -> tuple[int, int, int]:
    """Literal characters, then bracket expressions, then ``?``: more is more specific."""
    brackets = pattern.count("[")
    questions = pattern.count("?")
    literal = len(pattern) - brackets - questions - pattern.count("*")
    return literal, brackets, questions


def _fold(longer: str, shorter: str) -> str:
    # The override table: only a longer "read" gives way, and only to "read_write".
    return READ_WRITE if longer == READ and shorter == READ_WRITE else longer


@dataclass(frozen=True)
class _Rule:
    pattern: str  # interpolated, without a trailing slash
    level: str
    specificity: tuple[int, int, int]
    literal: bool  # canonical, without wildcards: its leading match is itself or nothing

    def leading_match(self, path: str) -> str | None:
        if not self.literal:
            return _leading_match(self.pattern, path)
        return self.pattern if within(self.pattern, path) is not None else None


@dataclass(frozen=True)
class CompiledRestrictions:
    """A restriction document interpolated for one user, ready to answer for many paths
    (None rules: no restrictions set, everything allowed)."""

    rules: tuple[_Rule, ...] | None

    def permission(self, path: str) -> str:
        """What the restrictions allow on canonical ``path``: "" (nothing), "r" or "rw"."""
        if self.rules is None:
            return READ_WRITE
        matches: list[tuple[int, tuple[int, int, int], int, str]] = []
        for rule in self.rules:
            matched = rule.leading_match(path)
            if matched is not None:
                matches.append((len(matched), rule.specificity, -_RANK[rule.level], rule.level))
        if not matches:
            return NO_ACCESS
        matches.sort(reverse=True)
        result = matches[0][3]
        for *_, level in matches[1:]:
            result = _fold(result, level)
        return result


def compile_restrictions(restrictions: Mapping[str, Any] | None,
                         user: UserPaths) -> CompiledRestrictions:
    if restrictions is None:
        return CompiledRestrictions(None)
    rules = []
    for key, level in LEVELS:
        for raw in restrictions.get(key) or ():
            expanded = interpolate(str(raw), user)
            if expanded is None:
                continue
            pattern = _pattern_path(expanded)
            rules.append(_Rule(pattern, level, _specificity(pattern),
                               literal=paths.is_canonical(pattern)
                               and not any(char in pattern for char in "*?[")))
    return CompiledRestrictions(tuple(rules))


def permission(restrictions: Mapping[str, Any] | None, path: str, user: UserPaths) -> str:
    """What ``restrictions`` allow on canonical ``path``: "" (nothing), "r" or "rw".

    ``None`` (no restrictions set) allows everything.
    """
    return compile_restrictions(restrictions, user).permission(path)


def combine(documents: Iterable[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """Several restriction documents as one (their lists joined); None when all are None."""
    merged: dict[str, Any] | None = None
    for document in documents:
        if document is None:
            continue
        if merged is None:
            merged = {"DATA_TYPE": "path_restrictions#1.0.0",
                      **{key: [] for key, _ in LEVELS}}
        for key, _ in LEVELS:
            merged[key].extend(document.get(key) or ())
    return merged


def within(base: str, path: str) -> str | None:
    """Canonical ``path`` relative to canonical ``base`` (``/`` for base itself), or None
    when it lies outside."""
    if base == "/":
        return path
    if path == base:
        return "/"
    if path.startswith(base + "/"):
        return path[len(base):]
    return None


def home_directory(gateway_root: str, account_home: str, identity_username: str) -> str:
    """A user's ``~`` in a gateway's namespace.

    The account's own home when it lies under the gateway's root; otherwise (a shared
    account, like the one the server's default gateway maps its users to) a folder of the
    identity's own under the root, keyed by the full username so ``alice@campus.edu``
    never shares ``alice@lab.org``'s. ValueError when the username cannot name a folder.
    """
    root = posixpath.normpath(gateway_root)
    home = posixpath.normpath(account_home or "/")
    relative = within(root, home) if home.startswith("/") else None
    if relative is not None:
        return relative
    if not identity_username or identity_username in (".", "..") or any(
            char in identity_username for char in "/\x00"):
        raise ValueError(f"{identity_username!r} cannot name a home folder")
    return "/" + identity_username
