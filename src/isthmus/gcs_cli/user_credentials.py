"""`user-credentials ...`: the storage credentials users hold, through the Manager's
/api/user_credentials; `oauth-create` starts the browser flow of /api/v1/user_credentials
(seed 000's page) and prints the upstream's authorize URL."""

from __future__ import annotations

from typing import Any

import click
from globus_sdk import MISSING

from isthmus.gcs_cli import output, unavailable
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.common import identity_id, manager
from isthmus.gcs_cli.errors import CLIError
from isthmus.gcs_cli.session import check_uuid, envelope

CREDENTIAL_FIELDS: list[output.Field] = [
    ("ID", "id"), ("Identity ID", "identity_id"), ("Storage Gateway ID", "storage_gateway_id"),
    ("Username", "username"), ("Invalid", "invalid"),
]


@click.group("user-credentials", cls=GCSGroup)
def user_credentials() -> None:
    """Credentials users hold for storage gateways that need them."""


@user_credentials.command("oauth-create")
@click.argument("storage_gateway_id")
@click.option("--globus-identity", required=True, metavar="UUID|USERNAME",
              help="The Globus identity the credential belongs to.")
@click.option("--mapped-user", metavar="USERNAME",
              help="The username at the storage (default: the identity's username).")
def oauth_create(storage_gateway_id: str, globus_identity: str, mapped_user: str | None) -> None:
    """Create an OAuth2 user credential: prints the URL where you grant this endpoint access
    to your storage; once you have, the browser shows a success page."""
    session = manager()
    gateway_id = check_uuid(storage_gateway_id, "STORAGE_GATEWAY_ID")
    client = session.gcs_client()
    form: dict[str, Any] = {
        "identity_id": identity_id(session, globus_identity), "storage_gateway": gateway_id,
        "redirect_uri": session.manager_url().rstrip("/") + "/api/v1/authclicomplete"}
    if mapped_user:
        form["login_hint"] = mapped_user
    response = client.request("POST", "v1/user_credentials", data=form, encoding="form",
                              allow_redirects=False)
    location = response.headers.get("Location")
    if response.http_status != 303 or not location:
        raise CLIError(f"The GCS Manager did not start the sign-in (HTTP "
                       f"{response.http_status})")
    if output.is_json():
        output.print_json({"authorize_url": location})
        return
    click.echo("To complete credential creation, visit")
    click.echo(location)


@user_credentials.command("list")
@click.option("--storage-gateway", metavar="STORAGE_GATEWAY_ID",
              help="Only the credentials for this storage gateway.")
def list_credentials(storage_gateway: str | None) -> None:
    """List your user credentials."""
    client = manager().gcs_client()
    gateway = check_uuid(storage_gateway, "--storage-gateway") if storage_gateway else None
    found = [dict(item) for item in client.paginated.get_user_credential_list(
        storage_gateway=gateway or MISSING).items()]
    if not found and not output.is_json():
        click.echo("No user credentials.")
        return
    output.print_table(found, CREDENTIAL_FIELDS)


@user_credentials.command("delete")
@click.argument("user_credential_id")
def delete(user_credential_id: str) -> None:
    """Delete a user credential."""
    target = check_uuid(user_credential_id, "USER_CREDENTIAL_ID")
    response = manager().gcs_client().delete_user_credential(target)
    output.print_message(envelope(response), f"Deleted User Credential {target}")


for _name, _text in unavailable.CREDENTIAL_COMMANDS.items():
    user_credentials.add_command(unavailable.not_available(
        _name, _text, f"'user-credentials {_name}' (user credentials of the S3 and "
                      "ActiveScale connectors)"))
