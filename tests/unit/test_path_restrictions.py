"""Path restrictions compiled once for a user answer as the pattern-by-pattern reading of
the GCS document does, for literal patterns (their fast path) and wildcards alike."""

from __future__ import annotations

from fnmatch import fnmatchcase

from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.connect.path_restrictions import (
    UserPaths,
    compile_restrictions,
    permission,
)
from isthmus.storage import paths

USER = UserPaths(home="/home/alice", username="alice")
# Names that are prefixes of each other: "/a" must not reach "/ab".
NAMES = st.sampled_from(["a", "ab", "b", "home", "alice"])
CANONICAL = st.lists(NAMES, max_size=3).map(paths.join_parts)
COMPONENTS = st.one_of(NAMES, st.sampled_from(["a b", "..", ".", ""]))
RAW_PATHS = st.lists(COMPONENTS, max_size=4).map(lambda parts: "/" + "/".join(parts))
PATTERNS = st.one_of(
    CANONICAL,
    RAW_PATHS,
    RAW_PATHS.map(lambda path: path + "/"),
    RAW_PATHS.map(lambda path: path + "/*"),
    RAW_PATHS.map(lambda path: path.replace("a", "?", 1)),
    st.sampled_from(["", "~", "~/a", "$HOME", "$HOME/b", "/$USER", "*", "/[ab]", "a/b"]),
)
DOCUMENTS = st.fixed_dictionaries({}, optional={
    "none": st.lists(PATTERNS, max_size=3),
    "read": st.lists(PATTERNS, max_size=3),
    "read_write": st.lists(PATTERNS, max_size=3),
})

RANK = {"none": 0, "read": 1, "read_write": 2}
LEVEL = {"none": "", "read": "r", "read_write": "rw"}


def reference(document: dict[str, list[str]], path: str) -> str:
    """The document read the slow, literal way: every pattern's longest leading match by
    fnmatch over the path's prefixes, longest first, folded by the override table."""
    matches = []
    for key in ("none", "read", "read_write"):
        for raw in document.get(key, ()):
            text = raw.replace("$USER", USER.username)
            for prefix in ("/~", "~", "$HOME"):
                if text == prefix or text.startswith(prefix + "/"):
                    text = "/home/alice/" + text[len(prefix):].lstrip("/")
                    break
            pattern = text.rstrip("/") or text[:1]
            parts = paths.split(path)
            for count in range(len(parts), -1, -1):
                prefix_path = paths.join_parts(parts[:count])
                if fnmatchcase(prefix_path, pattern):
                    specificity = (len(pattern) - pattern.count("[") - pattern.count("?")
                                   - pattern.count("*"), pattern.count("["), pattern.count("?"))
                    matches.append((len(prefix_path), specificity, -RANK[key], LEVEL[key]))
                    break
    if not matches:
        return ""
    matches.sort(reverse=True)
    result = matches[0][3]
    for *_, level in matches[1:]:
        result = "rw" if result == "r" and level == "rw" else result
    return result


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS, st.lists(CANONICAL, min_size=1, max_size=5))
def test_compiled_restrictions_answer_as_the_document_reads(
        document: dict[str, list[str]], checked: list[str]) -> None:
    compiled = compile_restrictions(document, USER)
    for path in checked:
        expected = reference(document, path)
        assert compiled.permission(path) == expected, (document, path)
        assert permission(document, path, USER) == expected


def test_literal_patterns_match_whole_components_only() -> None:
    compiled = compile_restrictions({"read_write": ["/data/"], "none": ["/data/secret"],
                                     "read": ["/dat"]}, USER)
    assert compiled.permission("/data") == "rw"
    assert compiled.permission("/data/x/y") == "rw"
    assert compiled.permission("/data/secret/z") == ""
    assert compiled.permission("/data/secrets") == "rw"
    assert compiled.permission("/database") == ""  # "/dat" is not a leading part of it
    assert compiled.permission("/dat/x") == "r"
    assert compile_restrictions(None, USER).permission("/anything") == "rw"


def test_normalize_keeps_canonical_paths_and_fixes_the_rest() -> None:
    for canonical in ("/", "/a", "/a/b", "/.x/..y", "/a b/c"):
        assert paths.is_canonical(canonical)
        assert paths.normalize(canonical) == canonical
    for raw, expected in (("a/b", "/a/b"), ("/a//b", "/a/b"), ("/a/./b/", "/a/b"),
                          ("/a/..", "/"), ("/a/b/.", "/a/b"), ("//", "/")):
        assert not paths.is_canonical(raw)
        assert paths.normalize(raw) == expected
