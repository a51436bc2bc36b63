"""Projects and their policies: who administers which clients, and what logins they demand."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.auth.models import Client, Identity, Policy, Project, ProjectAdmin
from isthmus.core.errors import APIError, bad_request, forbidden, not_found

IDENTITY = "identity"
GROUP = "group"


def parse_uuid(value: Any, what: str) -> uuid.UUID:
    if not isinstance(value, str):
        raise bad_request(f"{what} must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise bad_request(f"{what} is not a valid UUID: {value!r}") from None


def _uuid_list(value: Any, what: str) -> list[uuid.UUID]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise bad_request(f"{what} must be a list of UUIDs")
    return list(dict.fromkeys(parse_uuid(item, what) for item in value))


def _text(value: Any, what: str, *, limit: int = 200, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise bad_request(f"{what} must be a non-empty string of at most {limit} characters")
    return value.strip()


def administers(project: Project, principals: set[uuid.UUID]) -> bool:
    """True when one of the caller's identities, or groups, is among the admins."""
    return any(admin.principal_id in principals for admin in project.admins)


def projects_of(session: Session, principals: set[uuid.UUID]) -> list[Project]:
    if not principals:
        return []
    ids = session.scalars(
        select(ProjectAdmin.project_id).where(ProjectAdmin.principal_id.in_(principals))
    ).all()
    if not ids:
        return []
    return list(session.scalars(
        select(Project).where(Project.id.in_(set(ids))).order_by(Project.created)
    ))


def require_project(session: Session, project_id: str | uuid.UUID,
                    principals: set[uuid.UUID]) -> Project:
    """A project the caller administers; others' projects look exactly like missing ones."""
    key = project_id if isinstance(project_id, uuid.UUID) else parse_uuid(project_id, "project")
    project = session.get(Project, key)
    if project is None or not administers(project, principals):
        raise not_found(f"No project with id {key}")
    return project


def _set_admins(session: Session, project: Project, kind: str, ids: Iterable[uuid.UUID]) -> None:
    if kind == IDENTITY:
        wanted = list(ids)
        known = set(session.scalars(select(Identity.id).where(Identity.id.in_(wanted))))
        unknown = [str(item) for item in wanted if item not in known]
        if unknown:
            raise bad_request(f"Unknown identities: {', '.join(unknown)}")
    project.admins = [admin for admin in project.admins if admin.kind != kind] + [
        ProjectAdmin(project_id=project.id, kind=kind, principal_id=principal)
        for principal in ids
    ]


def create_project(session: Session, body: dict[str, Any], creator: uuid.UUID) -> Project:
    admin_ids = _uuid_list(body.get("admin_ids", []), "admin_ids")
    group_ids = _uuid_list(body.get("admin_group_ids", []), "admin_group_ids")
    if not admin_ids and not group_ids:
        admin_ids = [creator]
    project = Project(
        id=uuid.uuid4(),
        display_name=_text(body.get("display_name"), "display_name"),
        contact_email=_text(body.get("contact_email"), "contact_email", limit=320),
    )
    session.add(project)
    session.flush()
    _set_admins(session, project, IDENTITY, admin_ids)
    _set_admins(session, project, GROUP, group_ids)
    session.flush()
    return project


def update_project(session: Session, project: Project, body: dict[str, Any],
                   principals: set[uuid.UUID]) -> Project:
    if "display_name" in body:
        project.display_name = _text(body["display_name"], "display_name")
    if "contact_email" in body:
        project.contact_email = _text(body["contact_email"], "contact_email", limit=320)
    if "admin_ids" in body:
        _set_admins(session, project, IDENTITY, _uuid_list(body["admin_ids"] or [], "admin_ids"))
    if "admin_group_ids" in body:
        _set_admins(session, project, GROUP,
                    _uuid_list(body["admin_group_ids"] or [], "admin_group_ids"))
    if not project.admins:
        raise bad_request("A project needs at least one admin identity or group")
    if not administers(project, principals):
        raise forbidden("You cannot remove yourself from the admins of a project")
    session.flush()
    return project


def delete_project(session: Session, project: Project) -> None:
    if session.scalar(select(Client.id).where(Client.project_id == project.id).limit(1)):
        raise APIError(409, "CONFLICT",
                       "This project still has clients: delete them before the project")
    session.delete(project)
    session.flush()


# --- policies ------------------------------------------------------------------

_POLICY_FLAGS = ("high_assurance", "required_mfa")
# The column is a 32-bit integer on PostgreSQL (about 68 years of seconds).
MAX_ASSURANCE_TIMEOUT = 2**31 - 1
_DOMAIN_LISTS = ("domain_constraints_include", "domain_constraints_exclude")


def _domains(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise bad_request(f"{what} must be a list of domain names or null")
    return [item.lower() for item in value]


def apply_policy_fields(policy: Policy, body: dict[str, Any]) -> None:
    if "display_name" in body:
        policy.display_name = _text(body["display_name"], "display_name")
    if "description" in body:
        policy.description = _text(body["description"] or "", "description", limit=2000,
                                   required=False)
    for flag in _POLICY_FLAGS:
        if flag in body:
            if not isinstance(body[flag], bool):
                raise bad_request(f"{flag} must be true or false")
            setattr(policy, flag, body[flag])
    if "authentication_assurance_timeout" in body:
        timeout = body["authentication_assurance_timeout"]
        if timeout is not None and (
            not isinstance(timeout, int) or isinstance(timeout, bool)
            or not 0 < timeout <= MAX_ASSURANCE_TIMEOUT
        ):
            raise bad_request("authentication_assurance_timeout must be a number of seconds"
                              f" from 1 to {MAX_ASSURANCE_TIMEOUT}")
        policy.authentication_assurance_timeout = timeout
    for field in _DOMAIN_LISTS:
        if field in body:
            setattr(policy, field, _domains(body[field], field))
    if policy.high_assurance and not policy.authentication_assurance_timeout:
        raise bad_request("A high-assurance policy needs authentication_assurance_timeout")


def create_policy(session: Session, project: Project, body: dict[str, Any]) -> Policy:
    policy = Policy(id=uuid.uuid4(), project_id=project.id, display_name="", description="",
                    high_assurance=False, required_mfa=False)
    if "display_name" not in body:
        raise bad_request("display_name is required")
    apply_policy_fields(policy, body)
    session.add(policy)
    session.flush()
    return policy


def policies_of(session: Session, projects: Sequence[Project]) -> list[Policy]:
    ids = [project.id for project in projects]
    if not ids:
        return []
    return list(session.scalars(
        select(Policy).where(Policy.project_id.in_(ids)).order_by(Policy.created)
    ))


def require_policy(session: Session, policy_id: str, principals: set[uuid.UUID]) -> Policy:
    key = parse_uuid(policy_id, "policy")
    policy = session.get(Policy, key)
    project = session.get(Project, policy.project_id) if policy else None
    if policy is None or project is None or not administers(project, principals):
        raise not_found(f"No policy with id {key}")
    return policy
