"""`endpoint ...`: the endpoint document, its owner, subscription and roles (Manager API), and
`setup` / `cleanup` / `key-convert` / `upgrade`, which run on a machine of the deployment."""

from __future__ import annotations

from typing import Any

import click
from globus_sdk import EndpointDocument

from isthmus.gcs_cli import deployment_commands, output
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.common import (
    identity_id,
    keywords,
    manager,
    require_changes,
    sdk_document,
    set_if,
)
from isthmus.gcs_cli.domains import endpoint_domains
from isthmus.gcs_cli.roles import endpoint_roles
from isthmus.gcs_cli.session import check_uuid, decoded, envelope

NETWORK_USE = ("normal", "minimal", "aggressive", "custom")
ENDPOINT_FIELDS: list[output.Field] = [
    ("Display Name", "display_name"), ("ID", "id"), ("Subscription ID", "subscription_id"),
    ("Public", "public"), ("GCS Manager URL", "gcs_manager_url"),
    ("Network Use", "network_use"), ("Organization", "organization"),
    ("Department", "department"), ("Description", "description"),
    ("Keywords", "keywords"), ("Contact E-mail", "contact_email"),
    ("Contact Info", "contact_info"), ("Info Link", "info_link"),
]


@click.group("endpoint", cls=GCSGroup)
def endpoint() -> None:
    """The endpoint: its description, owner, subscription and roles."""


for name in ("setup", "cleanup", "key-convert", "upgrade"):
    endpoint.add_command(deployment_commands.ENDPOINT_COMMANDS[name], name)
endpoint.add_command(endpoint_roles())
endpoint.add_command(endpoint_domains())


@endpoint.command("show")
def show() -> None:
    """Show the endpoint."""
    document = decoded(manager().gcs_client().get_endpoint())
    output.print_record(document, ENDPOINT_FIELDS)


def _tuning(function: Any) -> Any:
    for option in reversed([
        click.option("--max-concurrency", type=click.IntRange(1, 1000)),
        click.option("--preferred-concurrency", type=click.IntRange(1, 1000)),
        click.option("--max-parallelism", type=click.IntRange(1, 1000)),
        click.option("--preferred-parallelism", type=click.IntRange(1, 1000)),
    ]):
        function = option(function)
    return function


def descriptive_options(function: Any) -> Any:
    """Options that describe an endpoint or a collection to people searching for it."""
    for option in reversed([
        click.option("--organization", help="The organization that runs it."),
        click.option("--department", help="The department within the organization."),
        click.option("--description", help="What it is for."),
        click.option("--contact-email", help="Whom to write about it."),
        click.option("--contact-info", help="Other contact information."),
        click.option("--info-link", help="A web page about it."),
        click.option("--keywords", help="Comma-separated search keywords."),
    ]):
        function = option(function)
    return function


def descriptive_fields(options: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key in ("organization", "department", "description", "contact_email",
                "contact_info", "info_link"):
        set_if(document, key, options.get(key))
    set_if(document, "keywords", keywords(options.get("keywords")))
    return document


@endpoint.command("update")
@click.option("--display-name", help="The endpoint's name.")
@descriptive_options
@click.option("--public/--private", default=None,
              help="Whether everyone may see the endpoint (and find it in Transfer).")
@click.option("--network-use", type=click.Choice(NETWORK_USE),
              help="How much of the network transfers may use (custom: set the four "
                   "concurrency and parallelism options).")
@_tuning
@click.option("--allow-udt/--disallow-udt", default=None, help="Allow UDT transfers.")
@click.option("--gridftp-control-channel-port", type=click.IntRange(1, 65535))
def update(**options: Any) -> None:
    """Change the endpoint's description and settings (options left out stay)."""
    document = descriptive_fields(options)
    for key in ("display_name", "public", "network_use", "max_concurrency",
                "preferred_concurrency", "max_parallelism", "preferred_parallelism",
                "allow_udt", "gridftp_control_channel_port"):
        set_if(document, key, options.get(key))
    require_changes(document)
    response = manager().gcs_client().update_endpoint(
        sdk_document(EndpointDocument, document), include="endpoint")
    output.print_message(envelope(response), "Updated endpoint")


def _put(path: str, document: dict[str, Any], fallback: str) -> None:
    response = manager().gcs_client().put(path, data=document)
    output.print_message(envelope(response), fallback)


@endpoint.command("set-owner")
@click.argument("identity")
def set_owner(identity: str) -> None:
    """Give the endpoint's owner role to IDENTITY (a username or identity id)."""
    session = manager()
    owner = identity_id(session, identity)
    response = session.gcs_client().put("endpoint/owner", data={
        "DATA_TYPE": "endpoint_owner#1.0.0", "identity_id": owner})
    output.print_message(envelope(response), f"Set the owner to {identity}")


@endpoint.command("set-owner-string")
@click.argument("identity")
def set_owner_string(identity: str) -> None:
    """Advertise IDENTITY (one of your linked identities) as the endpoint's owner."""
    session = manager()
    response = session.gcs_client().put("endpoint/owner_string", data={
        "DATA_TYPE": "owner_string#1.0.0", "identity_id": identity_id(session, identity)})
    output.print_message(envelope(response), f"Set the advertised owner to {identity}")


@endpoint.command("reset-owner-string")
def reset_owner_string() -> None:
    """Advertise the endpoint's client (<endpoint id>@clients.auth.globus.org) as owner."""
    response = manager().gcs_client().delete("endpoint/owner_string")
    output.print_message(envelope(response), "Reset the advertised owner")


@endpoint.command("set-subscription-id")
@click.argument("subscription", metavar="{SUBSCRIPTION_ID|DEFAULT|null}")
def set_subscription_id(subscription: str) -> None:
    """Attach the endpoint to a subscription (DEFAULT: your only one), or detach it (null).

    Isthmus has no subscription service: the id is stored and shown, and every endpoint
    has every feature.
    """
    value: str | None = subscription
    if subscription.lower() in ("null", "none"):
        value = None
    elif subscription != "DEFAULT":
        value = check_uuid(subscription, "SUBSCRIPTION_ID")
    _put("endpoint/subscription_id", {"DATA_TYPE": "endpoint_subscription#1.0.0",
                                      "subscription_id": value},
         f"Set the subscription id to {value}")
