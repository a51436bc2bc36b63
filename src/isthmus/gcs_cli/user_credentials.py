"""`user-credentials ...`: users' credentials on storage gateways, through the Manager's
/api/user_credentials. S3 and ActiveScale credentials hold key pairs; the secret keys are
asked for without echo (or given with ``--s3-secret-key`` in scripts) and never shown again.
WebDAV gateways take OAuth2 credentials: `oauth-create` starts the browser flow of
/api/v1/user_credentials (seed 000's page) and prints the upstream's authorize URL.
"""

from __future__ import annotations

from typing import Any

import click
from globus_sdk import MISSING, UserCredentialDocument

from isthmus.gcs_cli import output
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.common import identity_id, manager, sdk_document, set_if
from isthmus.gcs_cli.errors import EXIT_USAGE, CLIError
from isthmus.gcs_cli.gateways import connector_name
from isthmus.gcs_cli.session import check_uuid, decoded, envelope

POLICIES = "s3_user_credential_policies"


@click.group("user-credentials", cls=GCSGroup)
def user_credentials() -> None:
    """Credentials users hold for storage gateways that need them."""


def _keys(key_id: str | None, secret_key: str | None) -> tuple[str, str]:
    key_id = key_id or click.prompt("S3 access key id")
    secret_key = secret_key or click.prompt("S3 secret key", hide_input=True)
    return key_id, secret_key


def _key_options(function: Any) -> Any:
    function = click.option("--s3-secret-key", metavar="SECRET",
                            help="The secret key (asked for, unechoed, when left out).")(function)
    return click.option("--s3-key-id", metavar="KEY_ID",
                        help="The access key id (asked for when left out).")(function)


def _create_s3(name: str, title: str) -> None:
    @click.argument("storage_gateway_id")
    @click.option("--globus-identity", metavar="UUID|USERNAME",
                  help="The identity the credential belongs to (default: yours).")
    @click.option("--mapped-user", metavar="USERNAME",
                  help="The gateway's name for that identity (default: the mapped one).")
    @click.option("--display-name", help="A name for the credential.")
    @_key_options
    def command(storage_gateway_id: str, globus_identity: str | None, mapped_user: str | None,
                display_name: str | None, s3_key_id: str | None,
                s3_secret_key: str | None) -> None:
        session = manager()
        key_id, secret_key = _keys(s3_key_id, s3_secret_key)
        fields: dict[str, Any] = {
            "storage_gateway_id": check_uuid(storage_gateway_id, "STORAGE_GATEWAY_ID"),
            "policies": {"DATA_TYPE": f"{POLICIES}#1.0.0", "s3_key_id": key_id,
                         "s3_secret_key": secret_key}}
        if globus_identity:
            fields["identity_id"] = identity_id(session, globus_identity)
        set_if(fields, "username", mapped_user)
        set_if(fields, "display_name", display_name)
        document = sdk_document(UserCredentialDocument, fields)
        created = decoded(session.gcs_client().create_user_credential(document))
        output.print_created("User Credential", created)

    command.__doc__ = f"Register {title} keys for a storage gateway."
    user_credentials.command(name)(command)


_create_s3("s3-create", "S3")
_create_s3("activescale-create", "ActiveScale")


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
@click.option("--storage-gateway", metavar="ID", help="Only those on this storage gateway.")
def list_credentials(storage_gateway: str | None) -> None:
    """List your user credentials."""
    client = manager().gcs_client()
    found = [dict(item) for item in client.paginated.get_user_credential_list(
        storage_gateway=check_uuid(storage_gateway, "--storage-gateway")
        if storage_gateway else MISSING).items()]
    if not found and not output.is_json():
        click.echo("No user credentials.")
        return
    output.print_table(found, [
        ("ID", "id"), ("Display Name", "display_name"), ("Globus Identity", "identity_id"),
        ("Local Username", "username"), ("Storage Gateway", "storage_gateway_id"),
        ("Connector", connector_name), ("Invalid", "invalid")])


@user_credentials.command("delete")
@click.argument("user_credential_id")
def delete(user_credential_id: str) -> None:
    """Delete a user credential."""
    credential_id = check_uuid(user_credential_id, "USER_CREDENTIAL_ID")
    response = manager().gcs_client().delete_user_credential(credential_id)
    output.print_message(envelope(response), f"Deleted User Credential {credential_id}")


# --- more key pairs, each for some path prefixes ------------------------------------------


def _change_keys(user_credential_id: str, change: Any) -> None:
    """Fetch the credential's policies, let ``change`` edit its ``s3_multi_keys`` entries
    (secrets left out are kept by the Manager), and send them back."""
    credential_id = check_uuid(user_credential_id, "USER_CREDENTIAL_ID")
    client = manager().gcs_client()
    policies = dict(decoded(client.get_user_credential(credential_id)).get("policies") or {})
    if not str(policies.get("DATA_TYPE", "")).startswith(POLICIES):
        raise CLIError(f"User credential {credential_id} holds no S3 keys", EXIT_USAGE)
    entries = [{key: value for key, value in entry.items() if key != "s3_secret_key"}
               for entry in policies.get("s3_multi_keys") or ()]
    policies.pop("s3_secret_key", None)
    policies["s3_multi_keys"] = change(entries)
    policies["DATA_TYPE"] = f"{POLICIES}#1.2.0"
    response = client.update_user_credential(
        credential_id, sdk_document(UserCredentialDocument, {"policies": policies}))
    output.print_message(envelope(response), f"Updated User Credential {credential_id}")


def _entry(entries: list[dict[str, Any]], key_id: str) -> dict[str, Any]:
    for entry in entries:
        if entry["s3_key_id"] == key_id:
            return entry
    raise CLIError(f"The credential holds no key pair {key_id} for path prefixes", EXIT_USAGE)


@user_credentials.command("s3-keys-add")
@click.argument("user_credential_id")
@click.option("--path-prefix", "prefixes", multiple=True, required=True,
              help="A path (in the gateway, /bucket/...) the keys are for (repeatable).")
@_key_options
def keys_add(user_credential_id: str, prefixes: tuple[str, ...], s3_key_id: str | None,
             s3_secret_key: str | None) -> None:
    """Add a key pair used for some path prefixes (the gateway must allow more keys)."""
    key_id, secret_key = _keys(s3_key_id, s3_secret_key)
    _change_keys(user_credential_id, lambda entries: [*entries, {
        "path_prefixes": list(prefixes), "s3_key_id": key_id, "s3_secret_key": secret_key}])


@user_credentials.command("s3-keys-update")
@click.argument("user_credential_id")
@click.option("--s3-key-id", required=True, help="The access key id of the pair to change.")
@click.option("--path-prefix", "prefixes", multiple=True,
              help="The paths the keys are for, replacing the list (repeatable).")
@click.option("--s3-secret-key", metavar="SECRET", help="A new secret key for that key id.")
def keys_update(user_credential_id: str, s3_key_id: str, prefixes: tuple[str, ...],
                s3_secret_key: str | None) -> None:
    """Change a key pair's secret or the path prefixes it is for."""
    if not prefixes and not s3_secret_key:
        raise click.UsageError("Give --path-prefix or --s3-secret-key")

    def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        entry = _entry(entries, s3_key_id)
        if prefixes:
            entry["path_prefixes"] = list(prefixes)
        if s3_secret_key:
            entry["s3_secret_key"] = s3_secret_key
        return entries

    _change_keys(user_credential_id, change)


@user_credentials.command("s3-keys-delete")
@click.argument("user_credential_id")
@click.option("--s3-key-id", required=True, help="The access key id of the pair to remove.")
def keys_delete(user_credential_id: str, s3_key_id: str) -> None:
    """Remove a key pair added with s3-keys-add."""

    def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _entry(entries, s3_key_id)["s3_secret_key"] = None  # a null secret removes it
        return entries

    _change_keys(user_credential_id, change)
