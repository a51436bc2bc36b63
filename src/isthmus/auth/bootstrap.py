"""First start: the identity providers, built-in resource servers, scopes and public clients."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.auth import clients
from isthmus.auth.builtins import (
    CLIENTS_DOMAIN,
    CLIENTS_IDP_ID,
    DEFAULT_LOCAL_DOMAIN,
    LOCAL_IDP_ID,
    PUBLIC_CLIENTS,
    RESOURCE_SERVERS,
)
from isthmus.auth.models import Client, IdentityProvider, Scope, ScopeDependency


def ensure_builtins(session: Session, local_domain: str | None = None) -> bool:
    """Create whatever built-in record is missing; True when anything was made."""
    wanted = {spec.client_id for spec in RESOURCE_SERVERS} | {
        spec.client_id for spec in PUBLIC_CLIENTS
    }
    present = set(session.scalars(select(Client.id).where(Client.id.in_(wanted))))
    if present == wanted and session.get(IdentityProvider, LOCAL_IDP_ID) is not None:
        return False
    _ensure_identity_providers(session, local_domain or DEFAULT_LOCAL_DOMAIN)
    _ensure_resource_servers(session, present)
    for spec in PUBLIC_CLIENTS:
        if spec.client_id not in present:
            clients.create_client(
                session, spec.name, "public_installed_client", client_id=spec.client_id,
                is_template=spec.is_template, builtin=True, visibility="public",
            )
    return True


def _ensure_identity_providers(session: Session, local_domain: str) -> None:
    if session.get(IdentityProvider, LOCAL_IDP_ID) is None:
        session.add(IdentityProvider(
            id=LOCAL_IDP_ID, name="Isthmus", short_name="local", kind="local",
            domains=[local_domain.lower()], alternative_names=[],
        ))
    if session.get(IdentityProvider, CLIENTS_IDP_ID) is None:
        session.add(IdentityProvider(
            id=CLIENTS_IDP_ID, name="Globus Auth clients", short_name="clients", kind="clients",
            domains=[CLIENTS_DOMAIN], alternative_names=[],
        ))
    session.flush()


def _ensure_resource_servers(session: Session, present: set[uuid.UUID]) -> None:
    by_string: dict[str, Scope] = {}
    for spec in RESOURCE_SERVERS:
        if spec.client_id not in present:
            clients.create_client(
                session, spec.name, "resource_server", client_id=spec.client_id,
                builtin=True, resource_server=spec.resource_server, visibility="public",
                # Built-in services are reached in process; nobody holds a secret for them.
                with_secret=False,
            )
        for scope_spec in spec.scopes:
            scope_string = spec.scope_string(scope_spec)
            scope = session.scalar(select(Scope).where(Scope.scope_string == scope_string))
            if scope is None:
                scope = Scope(
                    client_id=spec.client_id, resource_server=spec.resource_server,
                    scope_string=scope_string, scope_suffix=scope_spec.suffix,
                    name=scope_spec.name, description=scope_spec.description,
                    advertised=True, allows_refresh_token=True, required_domains=[],
                )
                session.add(scope)
                session.flush()
            by_string[scope_string] = scope
    for spec in RESOURCE_SERVERS:
        for scope_spec in spec.scopes:
            scope = by_string[spec.scope_string(scope_spec)]
            for dependency in scope_spec.dependencies:
                target = by_string[dependency]
                if session.get(ScopeDependency, (scope.id, target.id)) is None:
                    session.add(ScopeDependency(scope_id=scope.id, dependent_scope_id=target.id))
    session.flush()
