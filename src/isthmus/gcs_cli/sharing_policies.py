"""`sharing-policy ...`: who may share which paths of a mapped collection through guest
collections, through the Manager's /api/sharing_policies."""

from __future__ import annotations

import click

from isthmus.gcs_cli import output
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.common import manager, path_restrictions
from isthmus.gcs_cli.session import check_uuid, envelope

POLICY_FIELDS: list[output.Field] = [
    ("ID", "id"), ("Collection ID", "collection_id"), ("Users", "users"),
    ("Sharing Restrict Paths", "sharing_restrict_paths"),
]


@click.group("sharing-policy", cls=GCSGroup)
def sharing_policy() -> None:
    """Sharing policies: which users may share which paths of a mapped collection."""


@sharing_policy.command("create")
@click.argument("collection_id")
@click.option("--sharing-restrict-paths", required=True, metavar="file:PATH|JSON",
              help="The paths the users may share (a path_restrictions document).")
@click.option("--user", "users", multiple=True,
              help="A local account the policy applies to (repeatable; default: everyone).")
def create(collection_id: str, sharing_restrict_paths: str, users: tuple[str, ...]) -> None:
    """Create a sharing policy on a mapped collection."""
    response = manager().gcs_client().post("sharing_policies", data={
        "DATA_TYPE": "sharing_policy#1.0.0",
        "collection_id": check_uuid(collection_id, "COLLECTION_ID"),
        "users": list(users) or None,
        "sharing_restrict_paths": path_restrictions(sharing_restrict_paths,
                                                    "--sharing-restrict-paths")})
    output.print_created("Sharing Policy", dict(response["data"][0]))


@sharing_policy.command("list")
@click.argument("collection_id")
@click.option("--username", help="Only the policies that apply to this local account.")
def list_policies(collection_id: str, username: str | None) -> None:
    """List the sharing policies of a mapped collection."""
    params = {"collection_id": check_uuid(collection_id, "COLLECTION_ID")}
    if username:
        params["username"] = username
    found = [dict(item) for item in manager().gcs_client().get(
        "sharing_policies", query_params=params)["data"]]
    if not found and not output.is_json():
        click.echo("No sharing policies.")
        return
    output.print_table(found, POLICY_FIELDS)


@sharing_policy.command("show")
@click.argument("sharing_policy_id")
def show(sharing_policy_id: str) -> None:
    """Show one sharing policy."""
    response = manager().gcs_client().get(
        f"sharing_policies/{check_uuid(sharing_policy_id, 'SHARING_POLICY_ID')}")
    output.print_record(dict(response["data"][0]), POLICY_FIELDS)


@sharing_policy.command("delete")
@click.argument("sharing_policy_id")
def delete(sharing_policy_id: str) -> None:
    """Delete a sharing policy."""
    target = check_uuid(sharing_policy_id, "SHARING_POLICY_ID")
    response = manager().gcs_client().delete(f"sharing_policies/{target}")
    output.print_message(envelope(response), f"Deleted Sharing Policy {target}")
