"""Collection-relative paths: the one place where a client's path string is made canonical.

A canonical path is ``/`` or ``/a/b``: absolute (relative to the collection root), no empty,
``.`` or ``..`` components, no trailing slash. ``..`` is resolved lexically and may not climb
above the root; a client path never reaches the filesystem with a ``..`` in it.
"""

from __future__ import annotations

import posixpath

from isthmus.storage.errors import InvalidPath, PathEscape

ROOT = "/"


def normalize(path: str) -> str:
    """``"a//b/./c/"`` -> ``"/a/b/c"``; ``"/a/../b"`` -> ``"/b"``; ``"/../x"`` is refused."""
    if is_canonical(path):  # most are, and paths are normalized at every layer
        return path
    return join_parts(split(path))


def is_canonical(path: str) -> bool:
    """Whether `normalize` would return ``path`` as it is."""
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        return False
    return path == ROOT or not (path.endswith(("/", "/.", "/..")) or "//" in path
                                or "/./" in path or "/../" in path)


def split(path: str) -> list[str]:
    """The canonical components of ``path`` (``[]`` for the root)."""
    if not isinstance(path, str):
        raise InvalidPath("A path must be a string")
    if "\x00" in path:
        raise InvalidPath("A path may not contain a NUL byte", _printable(path))
    parts: list[str] = []
    for component in path.split("/"):
        if component in ("", "."):
            continue
        if component == "..":
            if not parts:
                raise PathEscape(f"'{path}' leads outside the collection", _printable(path))
            parts.pop()
            continue
        parts.append(component)
    return parts


def join_parts(parts: list[str]) -> str:
    return "/" + "/".join(parts)


def parent_and_name(path: str) -> tuple[str, str]:
    """``"/a/b"`` -> ``("/a", "b")``; the root has no name and is refused."""
    parts = split(path)
    if not parts:
        raise InvalidPath("The collection root has no parent", ROOT)
    return join_parts(parts[:-1]), parts[-1]


def join(directory: str, name: str) -> str:
    """A child's canonical path; ``name`` must be a single component."""
    if not name or name in (".", "..") or "/" in name or "\x00" in name:
        raise InvalidPath(f"'{name}' is not a file name", _printable(name))
    return posixpath.join(normalize(directory), name)


def relative_link_text(link_path: str, target_path: str) -> str:
    """The text of a symlink at ``link_path`` that points at ``target_path``, relative to the
    link's directory, so the link keeps working wherever the collection root is mounted."""
    link_dir, _ = parent_and_name(link_path)
    return posixpath.relpath(normalize(target_path), link_dir)


def _printable(path: str) -> str:
    return path.replace("\x00", "\\0")
