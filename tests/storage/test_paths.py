"""Collection paths are canonicalised in one place, and never climb above the root."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isthmus.storage.errors import InvalidPath, PathEscape
from isthmus.storage.paths import join, normalize, parent_and_name, relative_link_text, split


@pytest.mark.parametrize(
    ("given_path", "canonical"),
    [
        ("", "/"),
        ("/", "/"),
        ("//", "/"),
        ("a", "/a"),
        ("a//b/./c/", "/a/b/c"),
        ("/a/../b", "/b"),
        ("/a/b/..", "/a"),
        ("/...", "/..."),
        ("/~/x", "/~/x"),
        ("/ spaced /x ", "/ spaced /x "),
    ],
)
def test_paths_are_made_canonical(given_path: str, canonical: str) -> None:
    assert normalize(given_path) == canonical


@pytest.mark.parametrize("escaping", ["..", "/..", "../x", "/../x", "/a/../../x", "a/b/../../.."])
def test_climbing_above_the_root_is_refused(escaping: str) -> None:
    with pytest.raises(PathEscape):
        normalize(escaping)


def test_nul_bytes_and_non_strings_are_refused() -> None:
    with pytest.raises(InvalidPath) as raised:
        normalize("/a\x00b")
    assert "\x00" not in str(raised.value.path)
    with pytest.raises(InvalidPath):
        normalize(b"/a")  # type: ignore[arg-type]


def test_parents_names_and_joins() -> None:
    assert parent_and_name("/a/b/c") == ("/a/b", "c")
    assert parent_and_name("x") == ("/", "x")
    with pytest.raises(InvalidPath):
        parent_and_name("/")
    assert join("/a/", "b") == "/a/b"
    for bad in ("", ".", "..", "a/b", "a\x00"):
        with pytest.raises(InvalidPath):
            join("/a", bad)


def test_symlink_text_is_relative_to_the_links_directory() -> None:
    assert relative_link_text("/a/link", "/a/file") == "file"
    assert relative_link_text("/a/b/link", "/c/d") == "../../c/d"
    assert relative_link_text("/link", "/") == "."


@given(st.lists(st.sampled_from(["a", "b", ".", "..", "", "ü", "x y"]), max_size=10))
def test_canonical_paths_are_stable_and_never_hold_dot_dot(parts: list[str]) -> None:
    path = "/".join(parts)
    try:
        canonical = normalize(path)
    except PathEscape:
        return
    assert canonical.startswith("/")
    assert normalize(canonical) == canonical
    assert ".." not in split(canonical) and "." not in split(canonical)
