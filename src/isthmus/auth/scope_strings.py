"""Globus scope strings: ``root[dep *optional_dep[nested]]``, space-separated.

The SDK sends roots in any order, sometimes twice, sometimes once bare and once
with dependencies; `parse` merges all of that into one tree per root.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ScopeSyntaxError(ValueError):
    pass


@dataclass
class ScopeNode:
    scope_string: str
    optional: bool = False
    dependencies: dict[str, ScopeNode] = field(default_factory=dict)

    def merge(self, other: ScopeNode) -> None:
        # Required wins over optional when the same scope is asked for twice.
        self.optional = self.optional and other.optional
        for key, child in other.dependencies.items():
            if key in self.dependencies:
                self.dependencies[key].merge(child)
            else:
                self.dependencies[key] = child

    def serialize(self) -> str:
        prefix = "*" if self.optional else ""
        if not self.dependencies:
            return prefix + self.scope_string
        inner = " ".join(dep.serialize() for dep in self.dependencies.values())
        return f"{prefix}{self.scope_string}[{inner}]"


_MAX_LENGTH = 16_384
_MAX_DEPTH = 8


def parse(text: str) -> dict[str, ScopeNode]:
    """Parse a scope parameter into merged root nodes, keyed by scope string."""
    if len(text) > _MAX_LENGTH:
        raise ScopeSyntaxError("scope parameter is too long")
    nodes, position = _parse_list(text, 0, depth=0)
    if position != len(text):
        raise ScopeSyntaxError(f"unexpected ']' at position {position}")
    roots: dict[str, ScopeNode] = {}
    for node in nodes:
        if node.optional:
            raise ScopeSyntaxError(f"a requested scope cannot be optional: {node.scope_string}")
        _add(roots, node)
    return roots


def serialize(roots: dict[str, ScopeNode]) -> str:
    return " ".join(node.serialize() for node in roots.values())


def _add(into: dict[str, ScopeNode], node: ScopeNode) -> None:
    existing = into.get(node.scope_string)
    if existing is None:
        into[node.scope_string] = node
    else:
        existing.merge(node)


def _parse_list(text: str, position: int, depth: int) -> tuple[list[ScopeNode], int]:
    if depth > _MAX_DEPTH:
        raise ScopeSyntaxError("scope dependencies are nested too deeply")
    nodes: list[ScopeNode] = []
    length = len(text)
    while position < length:
        char = text[position]
        if char.isspace():
            position += 1
            continue
        if char == "]":
            return nodes, position
        optional = char == "*"
        if optional:
            position += 1
        start = position
        while position < length and not text[position].isspace() and text[position] not in "[]*":
            position += 1
        name = text[start:position]
        if not name:
            raise ScopeSyntaxError(f"a scope name is missing at position {start}")
        if not name.isprintable():
            raise ScopeSyntaxError(f"a control character in the scope name at position {start}")
        node = ScopeNode(name, optional)
        if position < length and text[position] == "[":
            children, position = _parse_list(text, position + 1, depth + 1)
            if position >= length or text[position] != "]":
                raise ScopeSyntaxError("unbalanced '[' in scope string")
            position += 1
            for child in children:
                _add(node.dependencies, child)
        if position < length and text[position] == "*":
            raise ScopeSyntaxError(f"misplaced '*' at position {position}")
        nodes.append(node)
    if depth > 0:
        raise ScopeSyntaxError("unbalanced '[' in scope string")
    return nodes, position
