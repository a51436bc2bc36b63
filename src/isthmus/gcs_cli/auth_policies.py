"""`auth-policy ...`: Auth policies (domains, high assurance, MFA, authentication timeout)
that a mapped collection imposes on its guests, through Auth's policies API with the
caller's own token. Policies belong to an Auth project the caller administers."""

from __future__ import annotations

from typing import Any

import click
from globus_sdk import MISSING

from isthmus.gcs_cli import output
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.common import manager
from isthmus.gcs_cli.errors import EXIT_USAGE, CLIError
from isthmus.gcs_cli.session import Session, check_uuid, decoded

POLICY_FIELDS: list[output.Field] = [
    ("ID", "id"), ("Display Name", "display_name"), ("Description", "description"),
    ("Project ID", "project_id"), ("High Assurance", "high_assurance"),
    ("Authentication Timeout", "authentication_assurance_timeout"),
    ("Require MFA", "required_mfa"),
    ("Include Domains", "domain_constraints_include"),
    ("Exclude Domains", "domain_constraints_exclude"),
]


@click.group("auth-policy", cls=GCSGroup)
def auth_policy() -> None:
    """Auth policies that guest collections' users must satisfy."""


def _policy_options(function: Any) -> Any:
    for option in reversed([
        click.option("--display-name", help="The policy's name."),
        click.option("--description", help="What the policy is for."),
        click.option("--include", "include_domains", multiple=True, metavar="DOMAIN",
                     help="Only identities of this domain qualify (repeatable)."),
        click.option("--exclude", "exclude_domains", multiple=True, metavar="DOMAIN",
                     help="Identities of this domain never qualify (repeatable)."),
        click.option("--high-assurance/--no-high-assurance", default=None,
                     help="Require a recent login with a high-assurance identity."),
        click.option("--authentication-timeout-mins", type=click.IntRange(1),
                     help="How recent the login must be (high assurance)."),
        click.option("--require-mfa/--no-require-mfa", default=None,
                     help="Require multi-factor authentication."),
    ]):
        function = option(function)
    return function


def _fields(options: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if options.get("high_assurance") is not None:
        fields["high_assurance"] = options["high_assurance"]
    if options.get("authentication_timeout_mins") is not None:
        fields["authentication_assurance_timeout"] = options["authentication_timeout_mins"] * 60
    if options.get("require_mfa") is not None:
        fields["required_mfa"] = options["require_mfa"]
    if options.get("include_domains"):
        fields["domain_constraints_include"] = list(options["include_domains"])
    if options.get("exclude_domains"):
        fields["domain_constraints_exclude"] = list(options["exclude_domains"])
    return fields


def _project(session: Session, project_id: str | None) -> str:
    if project_id:
        return check_uuid(project_id, "--project-id")
    projects = list(session.auth_client().get_projects())
    if len(projects) != 1:
        raise CLIError(f"You administer {len(projects)} Auth projects: name the policy's "
                       "with --project-id", EXIT_USAGE)
    return str(projects[0]["id"])


@auth_policy.command("create")
@_policy_options
@click.option("--project-id", help="The Auth project the policy belongs to (default: your "
                                   "only project).")
def create(project_id: str | None, **options: Any) -> None:
    """Create an Auth policy."""
    if not options.get("display_name"):
        raise click.UsageError("Give the policy a --display-name")
    session = manager()
    response = session.auth_client().create_policy(
        project_id=_project(session, project_id), display_name=options["display_name"],
        description=options.get("description") or "", **_fields(options))
    output.print_created("Auth Policy", decoded(response)["policy"])


@auth_policy.command("list")
def list_policies() -> None:
    """List the Auth policies of your projects."""
    policies = [dict(item) for item in manager().auth_client().get_policies()]
    if not policies and not output.is_json():
        click.echo("No auth policies.")
        return
    output.print_table(policies, [("ID", "id"), ("Display Name", "display_name"),
                                  ("Project ID", "project_id"),
                                  ("High Assurance", "high_assurance")])


@auth_policy.command("show")
@click.argument("policy_id")
def show(policy_id: str) -> None:
    """Show one Auth policy."""
    response = manager().auth_client().get_policy(check_uuid(policy_id, "POLICY_ID"))
    output.print_record(decoded(response)["policy"], POLICY_FIELDS)


@auth_policy.command("update")
@click.argument("policy_id")
@_policy_options
def update(policy_id: str, **options: Any) -> None:
    """Change an Auth policy (options left out stay)."""
    fields = _fields(options)
    for key in ("display_name", "description"):
        if options.get(key) is not None:
            fields[key] = options[key]
    if not fields:
        raise click.UsageError("Nothing to change: give at least one option")
    target = check_uuid(policy_id, "POLICY_ID")
    if "high_assurance" in fields:
        raise CLIError("A policy's high assurance is set when it is created", EXIT_USAGE)
    response = manager().auth_client().update_policy(
        target, **{key: fields.get(key, MISSING) for key in (
            "display_name", "description", "authentication_assurance_timeout",
            "required_mfa", "domain_constraints_include", "domain_constraints_exclude")})
    output.print_record(decoded(response)["policy"], POLICY_FIELDS)


@auth_policy.command("delete")
@click.argument("policy_id")
def delete(policy_id: str) -> None:
    """Delete an Auth policy."""
    target = check_uuid(policy_id, "POLICY_ID")
    manager().auth_client().delete_policy(target)
    if output.is_json():
        output.print_json({"id": target, "deleted": True})
        return
    click.echo(f"Deleted Auth Policy {target}")
