"""Scopes: registering them, and resolving a requested scope string into a tree of rows."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from isthmus.auth import lookup_cache, scope_strings
from isthmus.auth.builtins import TRANSFER_ALL
from isthmus.auth.errors import invalid_scope
from isthmus.auth.models import Client, Scope, ScopeDependency
from isthmus.core.errors import APIError, bad_request

# Matched with fullmatch: "$" would also accept a trailing newline.
_SUFFIX = re.compile(r"[a-z0-9_]{1,100}")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# A collection's data_access scope may depend from these parents even when the
# collection registered long after they did (globus session consent, add_app_data_access_scope).
_DATA_ACCESS = re.compile(rf"https://auth\.globus\.org/scopes/({_UUID})/data_access")
_MANAGE_COLLECTIONS = re.compile(rf"urn:globus:auth:scope:{_UUID}:manage_collections")
_MAX_EXPANSION_DEPTH = 6


@dataclass(frozen=True)
class ScopeInfo:
    """What a token request needs of a scope row: a snapshot that threads may share."""

    id: uuid.UUID
    client_id: uuid.UUID | None
    scope_string: str
    resource_server: str
    name: str
    description: str
    allows_refresh_token: bool

    @classmethod
    def of(cls, scope: Scope) -> ScopeInfo:
        return cls(scope.id, scope.client_id, scope.scope_string, scope.resource_server,
                   scope.name, scope.description, scope.allows_refresh_token)


@dataclass
class ResolvedScope:
    """A requested scope with the dependencies that come with it. Never changed once made:
    resolutions are cached and shared (see ``lookup_cache``)."""

    scope: ScopeInfo
    optional: bool = False
    dependencies: list[ResolvedScope] = field(default_factory=list)

    @property
    def scope_string(self) -> str:
        return self.scope.scope_string

    def walk(self) -> list[ResolvedScope]:
        nodes = [self]
        for dependency in self.dependencies:
            nodes.extend(dependency.walk())
        return nodes

    def serialize(self) -> str:
        node = scope_strings.ScopeNode(self.scope_string, self.optional)
        text = node.serialize()
        if not self.dependencies:
            return text
        return f"{text}[{' '.join(dep.serialize() for dep in self.dependencies)}]"


# Built once, and with the scope's dependencies in the same query (a join rather
# than the relationship's own second SELECT): every token request resolves scopes.
_SCOPE_BY_STRING = (
    select(Scope)
    .where(Scope.scope_string == bindparam("scope_string"))
    .options(joinedload(Scope.dependencies))
)


def scope_by_string(session: Session, scope_string: str) -> Scope | None:
    found: Scope | None = session.scalars(
        _SCOPE_BY_STRING, {"scope_string": scope_string}
    ).unique().first()
    return found


def resolve(session: Session, requested: str) -> list[ResolvedScope]:
    """Check a scope parameter and expand it; raises ``invalid_scope`` for what may not be asked."""
    cache = lookup_cache.cache_for(session, "scopes")
    cached: list[ResolvedScope] | None = cache.get(requested) if cache is not None else None
    if cached is not None:
        return cached
    try:
        roots = scope_strings.parse(requested)
    except scope_strings.ScopeSyntaxError as error:
        raise invalid_scope(f"Malformed scope string: {error}") from None
    if not roots:
        raise invalid_scope("No scopes were requested")
    created: list[Scope] = []
    resolved = []
    for node in roots.values():
        scope = scope_by_string(session, node.scope_string)
        if scope is None:
            raise invalid_scope(f"Unknown scope: {node.scope_string}")
        resolved.append(_resolve_node(session, scope, node, 0, created))
    # A scope made just now exists only if this transaction commits: not cached.
    if cache is not None and not created:
        cache.put(requested, resolved)
    return resolved


def _resolve_node(
    session: Session, scope: Scope, node: scope_strings.ScopeNode | None, depth: int,
    created: list[Scope],
) -> ResolvedScope:
    if depth > _MAX_EXPANSION_DEPTH:
        raise invalid_scope("Scope dependencies are nested too deeply")
    result = ResolvedScope(ScopeInfo.of(scope), optional=node.optional if node else False)
    registered = {dep.dependent_scope.scope_string: dep for dep in scope.dependencies}
    requested = dict(node.dependencies) if node else {}
    for scope_string, dependency in registered.items():
        child = requested.pop(scope_string, None)
        resolved = _resolve_node(session, dependency.dependent_scope, child, depth + 1, created)
        resolved.optional = dependency.optional or (child.optional if child else False)
        result.dependencies.append(resolved)
    for scope_string, child in requested.items():
        dynamic = _dynamic_dependency(session, scope, scope_string, created)
        if dynamic is None:
            raise invalid_scope(
                f"{scope_string} may not be requested as a dependency of {scope.scope_string}"
            )
        result.dependencies.append(_resolve_node(session, dynamic, child, depth + 1, created))
    return result


def _dynamic_dependency(
    session: Session, parent: Scope, scope_string: str, created: list[Scope]
) -> Scope | None:
    match = _DATA_ACCESS.fullmatch(scope_string)
    if match is None:
        return None
    if parent.scope_string != TRANSFER_ALL and not _MANAGE_COLLECTIONS.fullmatch(
        parent.scope_string
    ):
        return None
    existing = scope_by_string(session, scope_string)
    if existing is not None:
        return existing
    collection_id = match.group(1)
    scope = Scope(
        client_id=None,
        resource_server=collection_id,
        scope_string=scope_string,
        scope_suffix="data_access",
        name="Data access",
        description=f"Access data on collection {collection_id}.",
        advertised=False,
        allows_refresh_token=True,
        required_domains=[],
    )
    # Two logins may name the same new collection at once: let one insert win.
    try:
        with session.begin_nested():
            session.add(scope)
    except IntegrityError:
        return scope_by_string(session, scope_string)
    created.append(scope)
    return scope


def create_scope(
    session: Session,
    client: Client,
    suffix: str,
    *,
    name: str,
    description: str,
    dependent_scopes: list[str] | None = None,
    advertised: bool = False,
    allows_refresh_token: bool = True,
) -> Scope:
    """A custom scope ``https://auth.globus.org/scopes/<client_id>/<suffix>``."""
    if client.public_client:
        raise bad_request("A native (public) client cannot own scopes")
    if client.resource_server is None:
        # A confidential client becomes a resource server with its first scope.
        client.resource_server = str(client.id)
    if not _SUFFIX.fullmatch(suffix):
        raise bad_request("A scope suffix is lower-case letters, digits and '_'")
    scope_string = f"https://auth.globus.org/scopes/{client.id}/{suffix}"
    if scope_by_string(session, scope_string) is not None:
        raise APIError(409, "CONFLICT", f"The scope {scope_string} already exists")
    scope = Scope(
        id=uuid.uuid4(),
        client_id=client.id,
        resource_server=client.resource_server,
        scope_string=scope_string,
        scope_suffix=suffix,
        name=name,
        description=description,
        advertised=advertised,
        allows_refresh_token=allows_refresh_token,
        required_domains=[],
    )
    session.add(scope)
    session.flush()
    for dependent in dependent_scopes or []:
        optional = dependent.startswith("*")
        target = scope_by_string(session, dependent.lstrip("*"))
        if target is None:
            raise bad_request(f"Unknown dependent scope {dependent.lstrip('*')}")
        session.add(ScopeDependency(
            scope_id=scope.id, dependent_scope_id=target.id, optional=optional
        ))
    session.flush()
    session.refresh(scope)
    return scope
