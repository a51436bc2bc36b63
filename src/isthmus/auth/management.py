"""Who may see and change clients, credentials and scopes through the Auth API.

The registry primitives live in `clients` and `scopes`; this module adds the
API's rules: project admins manage their projects' resources, a public client
can be read by anyone with the scope, everything else looks missing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.auth import clients, identities, projects, scopes
from isthmus.auth.models import (
    Client,
    ClientCredential,
    Identity,
    Project,
    Scope,
    ScopeDependency,
    Token,
)
from isthmus.core.errors import APIError, bad_request, forbidden, not_found
from isthmus.core.groups import GroupMembership

MANAGE_PROJECTS = "urn:globus:auth:scope:auth.globus.org:manage_projects"
_VISIBILITIES = ("public", "private")


@dataclass(frozen=True)
class Caller:
    """The identity behind a bearer token, with every principal it acts as."""

    identity_id: uuid.UUID
    # The client the token was issued to; None for a user on Isthmus's own pages.
    client_id: uuid.UUID | None
    scopes: frozenset[str]
    principals: frozenset[uuid.UUID]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise forbidden(f"This call needs a token with the scope {scope}")


def _principals(
    session: Session, identity_id: uuid.UUID, groups: GroupMembership
) -> frozenset[uuid.UUID]:
    """The identity's identity set, and the groups it is an active member of: a project
    whose ``admin_group_ids`` name one of those groups is administered by this caller."""
    identity = session.get(Identity, identity_id)
    members = {member.id for member in identities.identity_set(session, identity)} \
        if identity else set()
    return frozenset(members) | groups.groups_of(members)


def caller_of(session: Session, token: Token, groups: GroupMembership) -> Caller:
    return Caller(
        identity_id=token.identity_id,
        client_id=token.client_id,
        scopes=frozenset(token.scope.split()),
        principals=_principals(session, token.identity_id, groups),
    )


def signed_in_caller(
    session: Session, identity_id: uuid.UUID, groups: GroupMembership
) -> Caller:
    """A user signed in to the developer page: what a manage_projects token would allow."""
    return Caller(
        identity_id=identity_id,
        client_id=None,
        scopes=frozenset({MANAGE_PROJECTS}),
        principals=_principals(session, identity_id, groups),
    )


# --- clients --------------------------------------------------------------------


def _project_of(session: Session, client: Client) -> Project | None:
    return session.get(Project, client.project_id) if client.project_id else None


def administers_client(session: Session, client: Client, caller: Caller) -> bool:
    project = _project_of(session, client)
    return project is not None and projects.administers(project, set(caller.principals))


def readable_client(session: Session, client_id: str, caller: Caller) -> Client:
    client = clients.get_client(session, projects.parse_uuid(client_id, "client_id"))
    if client is None or not (
        client.visibility == "public" or administers_client(session, client, caller)
    ):
        raise not_found(f"No client with id {client_id}")
    return client


def manageable_client(session: Session, client_id: str, caller: Caller) -> Client:
    client = readable_client(session, client_id, caller)
    if not administers_client(session, client, caller):
        raise forbidden("Only the admins of this client's project may change it")
    return client


def clients_of(session: Session, caller: Caller) -> list[Client]:
    owned = [project.id for project in projects.projects_of(session, set(caller.principals))]
    if not owned:
        return []
    return list(session.scalars(
        select(Client).where(Client.project_id.in_(owned)).order_by(Client.created)
    ))


def client_by_fqdn(session: Session, fqdn: str, caller: Caller) -> Client:
    wanted = fqdn.strip().lower()
    for client in session.scalars(select(Client).where(Client.fqdns.is_not(None))):
        if wanted in client.fqdns and (
            client.visibility == "public" or administers_client(session, client, caller)
        ):
            return client
    raise not_found(f"No client with fqdn {fqdn}")


def _client_type(body: dict[str, Any], default: str | None) -> str:
    if "client_type" in body and body["client_type"] is not None:
        if body["client_type"] not in clients.CLIENT_TYPES:
            raise bad_request(f"Unknown client_type {body['client_type']!r}")
        return str(body["client_type"])
    if "public_client" in body and body["public_client"] is not None:
        if not isinstance(body["public_client"], bool):
            raise bad_request("public_client must be true or false")
        return "public_installed_client" if body["public_client"] else "confidential_client"
    if default is None:
        raise bad_request("Give public_client or client_type")
    return default


def _string_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_request(f"{what} must be a list of strings")
    return value


def _apply_client_fields(session: Session, client: Client, body: dict[str, Any]) -> None:
    if "name" in body:
        if not isinstance(body["name"], str) or not body["name"].strip():
            raise bad_request("name must be a non-empty string")
        client.name = body["name"].strip()[:200]
    if "visibility" in body:
        if body["visibility"] not in _VISIBILITIES:
            raise bad_request("visibility must be public or private")
        client.visibility = body["visibility"]
    if "redirect_uris" in body:
        client.redirect_uris = [
            clients.check_redirect_uri_syntax(uri)
            for uri in _string_list(body["redirect_uris"], "redirect_uris")
        ]
    for field in ("required_idp", "preselect_idp"):
        if field in body:
            value = body[field]
            setattr(client, field, projects.parse_uuid(value, field) if value else None)
    if "links" in body:
        links = body["links"] or {}
        if not isinstance(links, dict):
            raise bad_request("links must be an object")
        merged = dict(client.links)
        for key in ("terms_and_conditions", "privacy_policy"):
            if key in links:
                if links[key] is not None and not isinstance(links[key], str):
                    raise bad_request(f"links.{key} must be a URL or null")
                merged[key] = links[key]
        client.links = merged
    if "fqdns" in body:
        client.fqdns = [name.lower() for name in _string_list(body["fqdns"], "fqdns")]
    session.flush()


def create_client(session: Session, body: dict[str, Any], caller: Caller) -> Client:
    project = projects.require_project(session, body.get("project", ""), set(caller.principals))
    created = clients.create_client(
        session, _required_name(body), _client_type(body, None), project_id=project.id,
        with_secret=False,
    )
    _apply_client_fields(session, created.client, body)
    return created.client


def create_child_client(session: Session, body: dict[str, Any], parent: Client) -> Client:
    created = clients.create_client(
        session, _required_name(body), _client_type(body, "confidential_client"),
        parent_client_id=parent.id, project_id=parent.project_id, with_secret=False,
    )
    _apply_client_fields(session, created.client, body)
    return created.client


def _required_name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("name is required")
    return name


def update_client(session: Session, client: Client, body: dict[str, Any]) -> Client:
    changes_type = "client_type" in body or "public_client" in body
    if changes_type and _client_type(body, client.client_type) != client.client_type:
        raise bad_request("A client's type cannot change")
    if "project" in body and body["project"] != str(client.project_id):
        raise bad_request("A client cannot move between projects")
    _apply_client_fields(session, client, body)
    return client


# --- credentials ----------------------------------------------------------------


def credentials_of(session: Session, client: Client) -> list[ClientCredential]:
    return list(session.scalars(
        select(ClientCredential).where(ClientCredential.client_id == client.id)
        .order_by(ClientCredential.created)
    ))


def require_credential(session: Session, client: Client, credential_id: str) -> ClientCredential:
    credential = clients.find_credential(session, client, credential_id)
    if credential is None:
        raise not_found(f"No credential with id {credential_id}")
    return credential


def create_credential(
    session: Session, client: Client, body: dict[str, Any]
) -> tuple[ClientCredential, str]:
    """A new secret for the client; the secret is returned now and never stored."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("credential.name is required")
    return clients.add_credential(session, client, name.strip()[:200])


def delete_credential(session: Session, credential: ClientCredential) -> None:
    session.delete(credential)
    session.flush()


# --- scopes ---------------------------------------------------------------------


def require_scope(session: Session, scope_id: str) -> Scope:
    scope = session.get(Scope, projects.parse_uuid(scope_id, "scope id"))
    if scope is None:
        raise not_found(f"No scope with id {scope_id}")
    return scope


def manageable_scope(session: Session, scope_id: str, caller: Caller) -> Scope:
    scope = require_scope(session, scope_id)
    owner = session.get(Client, scope.client_id) if scope.client_id else None
    if owner is None or not administers_client(session, owner, caller):
        raise forbidden("Only the admins of the scope's client may change it")
    return scope


def find_scopes(session: Session, *, ids: str | None, scope_strings: str | None,
                caller: Caller) -> list[Scope]:
    if ids is not None:
        keys = [projects.parse_uuid(part.strip(), "ids") for part in ids.split(",") if part]
        return list(session.scalars(select(Scope).where(Scope.id.in_(keys))))
    if scope_strings is not None:
        wanted = [part.strip() for part in scope_strings.split(",") if part.strip()]
        return list(session.scalars(select(Scope).where(Scope.scope_string.in_(wanted))))
    owned = [client.id for client in clients_of(session, caller)]
    return list(session.scalars(select(Scope).where(Scope.client_id.in_(owned))))


def _dependencies(session: Session, value: Any) -> list[ScopeDependency]:
    if not isinstance(value, list):
        raise bad_request("dependent_scopes must be a list")
    result = []
    for item in value:
        if not isinstance(item, dict):
            raise bad_request("each dependent scope is an object with a scope id")
        target = require_scope(session, str(item.get("scope", "")))
        flags = {key: item.get(key, False) for key in ("optional", "requires_refresh_token")}
        if not all(isinstance(flag, bool) for flag in flags.values()):
            raise bad_request("optional and requires_refresh_token must be true or false")
        result.append(ScopeDependency(dependent_scope_id=target.id, **flags))
    return result


def _apply_scope_fields(session: Session, scope: Scope, body: dict[str, Any]) -> None:
    for field, limit in (("name", 200), ("description", 2000)):
        if field in body:
            if not isinstance(body[field], str) or not body[field].strip():
                raise bad_request(f"{field} must be a non-empty string")
            setattr(scope, field, body[field].strip()[:limit])
    for flag in ("advertised", "allows_refresh_token"):
        if flag in body:
            if not isinstance(body[flag], bool):
                raise bad_request(f"{flag} must be true or false")
            setattr(scope, flag, body[flag])
    if "required_domains" in body:
        scope.required_domains = _string_list(body["required_domains"], "required_domains")
    if "dependent_scopes" in body:
        dependencies = _dependencies(session, body["dependent_scopes"])
        if any(dep.dependent_scope_id == scope.id for dep in dependencies):
            raise bad_request("A scope cannot depend on itself")
        scope.dependencies = [
            ScopeDependency(scope_id=scope.id, dependent_scope_id=dep.dependent_scope_id,
                            optional=dep.optional,
                            requires_refresh_token=dep.requires_refresh_token)
            for dep in dependencies
        ]
    session.flush()


def create_scope(session: Session, client: Client, body: dict[str, Any]) -> Scope:
    for field in ("name", "description", "scope_suffix"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise bad_request(f"{field} is required")
    scope = scopes.create_scope(session, client, body["scope_suffix"], name=body["name"],
                                description=body["description"])
    _apply_scope_fields(session, scope, {k: v for k, v in body.items() if k != "scope_suffix"})
    return scope


def update_scope(session: Session, scope: Scope, body: dict[str, Any]) -> Scope:
    if "scope_suffix" in body and body["scope_suffix"] != scope.scope_suffix:
        raise bad_request("A scope's suffix cannot change")
    _apply_scope_fields(session, scope, body)
    return scope


def delete_scope(session: Session, scope: Scope) -> None:
    if session.scalar(select(ScopeDependency.scope_id)
                      .where(ScopeDependency.dependent_scope_id == scope.id).limit(1)):
        raise APIError(409, "CONFLICT", "Other scopes depend on this scope")
    session.delete(scope)
    session.flush()
