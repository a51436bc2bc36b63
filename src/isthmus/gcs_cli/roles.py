"""`endpoint role ...` and `collection role ...`: roles through the Manager's /api/roles."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click
from globus_sdk import MISSING, GCSRoleDocument

from isthmus.gcs_cli import output
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.common import manager, principal_urn
from isthmus.gcs_cli.session import Session, check_uuid, decoded, envelope

ENDPOINT_ROLES = ("administrator", "activity_manager", "activity_monitor")
COLLECTION_ROLES = ("administrator", "access_manager", "activity_manager", "activity_monitor")
IDENTITY_PREFIX = "urn:globus:auth:identity:"
principal_type_option = click.option(
    "--principal-type", type=click.Choice(["identity", "group"]), default="identity",
    show_default=True, help="PRINCIPAL is an identity (username or id) or a group (its id).")


def _principal_names(session: Session,
                     roles: list[dict[str, Any]]) -> Callable[[Mapping[str, Any]], str]:
    """Shows an identity principal as its username (looked up in Auth), others as given."""
    ids = sorted({str(role["principal"])[len(IDENTITY_PREFIX):] for role in roles
                  if str(role.get("principal", "")).startswith(IDENTITY_PREFIX)})
    found = session.auth_client().get_identities(ids=ids)["identities"] if ids else []
    names = {str(item["id"]): str(item["username"]) for item in found}

    def principal(role: Mapping[str, Any]) -> str:
        text = str(role.get("principal"))
        if text.startswith(IDENTITY_PREFIX):
            return names.get(text[len(IDENTITY_PREFIX):], text)
        return text

    return principal


def _create(collection_id: str | None, role: str, principal: str, principal_type: str) -> None:
    session = manager()
    document = GCSRoleDocument(role=role, principal=principal_urn(session, principal,
                                                                  principal_type),
                               collection=collection_id or MISSING)
    created = decoded(session.gcs_client().create_role(document))
    output.print_created("Role", created)


def _list(collection_id: str | None, everyone: bool) -> None:
    session = manager()
    roles = [dict(role) for role in session.gcs_client().paginated.get_role_list(
        collection_id=collection_id, include="all_roles" if everyone else MISSING).items()]
    if output.is_json():
        output.print_json(roles)
    elif not roles:
        click.echo("No roles.")
    else:
        output.print_table(roles, [("Role ID", "id"), ("Collection", "collection"),
                                   ("Role", "role"),
                                   ("Principal", _principal_names(session, roles))])


def _show(role_id: str) -> None:
    session = manager()
    role = decoded(session.gcs_client().get_role(check_uuid(role_id, "ROLE_ID")))
    principal = (lambda _role: str(role.get("principal"))) if output.is_json() \
        else _principal_names(session, [role])
    output.print_record(role, [("ID", "id"), ("Role", "role"), ("Principal", principal),
                               ("Collection", "collection")])


def _delete(role_id: str) -> None:
    session = manager()
    response = session.gcs_client().delete_role(check_uuid(role_id, "ROLE_ID"))
    output.print_message(envelope(response), f"Deleted role {role_id}")


def endpoint_roles() -> GCSGroup:
    group = GCSGroup("role", help="Roles on the endpoint: who administers and monitors it.")

    @group.command("create")
    @click.argument("role", type=click.Choice(ENDPOINT_ROLES))
    @click.argument("principal")
    @principal_type_option
    def create(role: str, principal: str, principal_type: str) -> None:
        """Grant ROLE on the endpoint to PRINCIPAL (the owner role moves with set-owner)."""
        _create(None, role, principal, principal_type)

    @group.command("list")
    @click.option("--all", "everyone", is_flag=True,
                  help="Everyone's roles, not only yours (administrators only).")
    def list_roles(everyone: bool) -> None:
        """List roles on the endpoint."""
        _list(None, everyone)

    @group.command("show")
    @click.argument("role_id")
    def show(role_id: str) -> None:
        """Show one role."""
        _show(role_id)

    @group.command("delete")
    @click.argument("role_id")
    def delete(role_id: str) -> None:
        """Remove a role."""
        _delete(role_id)

    return group


def collection_roles() -> GCSGroup:
    group = GCSGroup("role", help="Roles on a collection.")

    @group.command("create")
    @click.argument("collection_id")
    @click.argument("role", type=click.Choice(COLLECTION_ROLES))
    @click.argument("principal")
    @principal_type_option
    def create(collection_id: str, role: str, principal: str, principal_type: str) -> None:
        """Grant ROLE on COLLECTION_ID to PRINCIPAL."""
        _create(check_uuid(collection_id, "COLLECTION_ID"), role, principal, principal_type)

    @group.command("list")
    @click.argument("collection_id")
    @click.option("--all", "everyone", is_flag=True,
                  help="Everyone's roles, not only yours (administrators only).")
    def list_roles(collection_id: str, everyone: bool) -> None:
        """List roles on a collection."""
        _list(check_uuid(collection_id, "COLLECTION_ID"), everyone)

    @group.command("show")
    @click.argument("role_id")
    def show(role_id: str) -> None:
        """Show one role."""
        _show(role_id)

    @group.command("delete")
    @click.argument("role_id")
    def delete(role_id: str) -> None:
        """Remove a role."""
        _delete(role_id)

    return group
