"""`storage-gateway ...`: storage gateways through the Manager's /api/storage_gateways.

`create` and `update` take the connector as a subcommand, as GCS does; this server has the
POSIX, S3 and ActiveScale connectors and Isthmus's WebDAV-behind-OAuth2 one; the spec's other
connectors are refused with the names of these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from globus_sdk import MISSING, ConnectorTable, StorageGatewayDocument

from isthmus.gcs_cli import output, unavailable
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.common import (
    identity_mappings,
    manager,
    path_restrictions,
    require_changes,
    sdk_document,
    set_if,
)
from isthmus.gcs_cli.session import check_uuid, decoded, envelope

POSIX_CONNECTOR_ID = "145812c8-decc-41f1-83cf-bb2a85a2a70b"
# S3 and ActiveScale gateways share the S3 policy document, as in GCS: (id, what it is).
S3_CONNECTORS = {
    "s3": ("7643e831-5f6c-4b47-a07f-8ee90f401d23",
           "Amazon S3 and S3-compatible object storage"),
    "activescale": ("7251f6c8-93c9-11eb-95ba-12704e0d6a4d",
                    "Quantum ActiveScale object storage"),
}
WEBDAV_CONNECTOR_ID = "afe5e740-c8ed-4433-a2e0-d65747275517"
# What `create` and `update` offer, as named in messages about the connectors this lacks.
OFFERED_CONNECTORS = ("posix", *S3_CONNECTORS, "webdav")


def connector_name(document: dict[str, Any] | Any) -> str:
    connector_id = str(document.get("connector_id"))
    if connector_id == WEBDAV_CONNECTOR_ID:
        return "WebDAV"
    found = ConnectorTable.lookup(connector_id)
    return found.name if found is not None else connector_id


GATEWAY_FIELDS: list[output.Field] = [
    ("ID", "id"), ("Display Name", "display_name"), ("Connector", connector_name),
    ("Root", "root"), ("Allowed Domains", "allowed_domains"),
    ("High Assurance", "high_assurance"), ("Require MFA", "require_mfa"),
    ("Authentication Timeout", "authentication_timeout_mins"),
    ("Identity Mappings", "identity_mappings"), ("Users Allow", "users_allow"),
    ("Users Deny", "users_deny"), ("Restrict Paths", "restrict_paths"),
    ("Policies", "policies"),
]


@click.group("storage-gateway", cls=GCSGroup)
def storage_gateway() -> None:
    """Storage gateways: the storage systems the endpoint's collections lie on."""


def _common_options(function: Any) -> Any:
    """Options every connector has."""
    for option in reversed([
        click.option("--domain", "domains", multiple=True,
                     help="An identity domain allowed to use the gateway (repeatable; "
                          "replaces the list on update)."),
        click.option("--identity-mapping", "mappings", multiple=True,
                     metavar="file:PATH|external:PROGRAM|JSON",
                     help="How identities map to local accounts: an expression mapping "
                          "document (JSON or file:PATH), or an external program "
                          "(repeatable; replaces the list on update)."),
        click.option("--restrict-paths", metavar="file:PATH|JSON",
                     help="A path_restrictions document: read, read_write and none path "
                          "lists."),
        click.option("--user-allow", "--users-allow", "users_allow", multiple=True,
                     help="A local account allowed to use the gateway (repeatable)."),
        click.option("--user-deny", "--users-deny", "users_deny", multiple=True,
                     help="A local account refused (repeatable)."),
        click.option("--authentication-timeout-mins", type=click.IntRange(1),
                     help="How recent a login must be to use a high-assurance gateway."),
        click.option("--require-mfa/--no-require-mfa", default=None,
                     help="Require multi-factor authentication (high assurance only)."),
    ]):
        function = option(function)
    return function


def _posix_options(function: Any) -> Any:
    for option in reversed([
        click.option("--root", metavar="PATH",
                     help="The directory collection paths are under (default /)."),
        click.option("--posix-group-allow", "groups_allow", multiple=True,
                     help="A local group whose members may use the gateway (repeatable)."),
        click.option("--posix-group-deny", "groups_deny", multiple=True,
                     help="A local group whose members may not (repeatable)."),
    ]):
        function = option(function)
    return function


def _s3_options(function: Any) -> Any:
    for option in reversed([
        click.option("--s3-endpoint", metavar="URL",
                     help="The S3 API's URL (default: Amazon S3 itself)."),
        click.option("--bucket", "buckets", multiple=True,
                     help="A bucket of the gateway's (s3_buckets; repeatable). Collections "
                          "name their bucket in their base path: /BUCKET/..."),
        click.option("--s3-user-credential/--s3-unauthenticated", "user_credential",
                     default=None,
                     help="Users register their own keys ('user-credentials s3-create'), or "
                          "act with the server's own (default: their own)."),
        click.option("--s3-allow-multi-keys/--s3-single-key", "multi_keys", default=None,
                     help="Let a user credential hold more key pairs, each for some path "
                          "prefixes ('user-credentials s3-keys-add')."),
    ]):
        function = option(function)
    return function


def _s3_policies(options: dict[str, Any]) -> dict[str, Any]:
    policies: dict[str, Any] = {}
    set_if(policies, "s3_endpoint", options.pop("s3_endpoint", None))
    set_if(policies, "s3_buckets", options.pop("buckets", None))
    set_if(policies, "s3_user_credential_required", options.pop("user_credential", None))
    set_if(policies, "s3_allow_multi_keys", options.pop("multi_keys", None))
    return {"DATA_TYPE": "s3_storage_policies#1.0.0", **policies} if policies else {}


def _document(options: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    set_if(document, "allowed_domains", options.get("domains"))
    if options.get("mappings"):
        document["identity_mappings"] = identity_mappings(options["mappings"])
    if options.get("restrict_paths"):
        document["restrict_paths"] = path_restrictions(options["restrict_paths"],
                                                       "--restrict-paths")
    for key in ("users_allow", "users_deny", "authentication_timeout_mins", "require_mfa",
                "root", "display_name"):
        set_if(document, key, options.get(key))
    policies: dict[str, Any] = {}
    set_if(policies, "groups_allow", options.get("groups_allow"))
    set_if(policies, "groups_deny", options.get("groups_deny"))
    if policies:
        document["policies"] = {"DATA_TYPE": "posix_storage_policies#1.0.0", **policies}
    return document


def _sdk_document(document: dict[str, Any]) -> StorageGatewayDocument:
    return sdk_document(StorageGatewayDocument, document)


# --- create ---------------------------------------------------------------------------


@storage_gateway.group("create")
def create() -> None:
    """Create a storage gateway for a connector."""


@create.command("posix")
@click.argument("display_name")
@_common_options
@_posix_options
@click.option("--high-assurance", is_flag=True,
              help="Require recent authentication and keep data off shared services.")
def create_posix(display_name: str, high_assurance: bool, **options: Any) -> None:
    """Create a POSIX storage gateway (a local or mounted file system)."""
    if not options.get("domains"):
        raise click.UsageError("Give at least one --domain whose identities may use it")
    document = {**_document(options), "display_name": display_name,
                "connector_id": POSIX_CONNECTOR_ID, "high_assurance": high_assurance}
    created = decoded(manager().gcs_client().create_storage_gateway(_sdk_document(document)))
    output.print_created("Storage Gateway", created)


def _create_s3(connector: str, title: str) -> click.Command:
    @click.argument("display_name")
    @_common_options
    @_s3_options
    @click.option("--high-assurance", is_flag=True,
                  help="Require recent authentication and keep data off shared services.")
    def command(display_name: str, high_assurance: bool, **options: Any) -> None:
        if not options.get("domains"):
            raise click.UsageError("Give at least one --domain whose identities may use it")
        policies = _s3_policies(options)
        document = {**_document(options), "display_name": display_name,
                    "connector_id": S3_CONNECTORS[connector][0],
                    "high_assurance": high_assurance}
        if policies:
            document["policies"] = policies
        created = decoded(manager().gcs_client().create_storage_gateway(
            _sdk_document(document)))
        output.print_created("Storage Gateway", created)

    command.__doc__ = f"Create a storage gateway for {title} (collections on its buckets)."
    return create.command(connector)(command)


def _update_s3(connector: str, title: str) -> click.Command:
    @click.argument("storage_gateway_id")
    @click.option("--display-name", help="The gateway's new name.")
    @_common_options
    @_s3_options
    def command(storage_gateway_id: str, **options: Any) -> None:
        policies = _s3_policies(options)
        document = _document(options)
        gateway_id = check_uuid(storage_gateway_id, "STORAGE_GATEWAY_ID")
        client = manager().gcs_client()
        if policies:  # the Manager replaces the policy document: keep what is not changed
            current = decoded(client.get_storage_gateway(gateway_id)).get("policies") or {}
            document["policies"] = {**current, **policies}
        require_changes(document)
        response = client.update_storage_gateway(gateway_id, _sdk_document(document))
        output.print_message(envelope(response), f"Updated Storage Gateway {gateway_id}")

    command.__doc__ = f"Change a storage gateway for {title} (options left out stay)."
    return update.command(connector)(command)


def _webdav_options(creating: bool) -> Callable[[Any], Any]:
    def decorate(function: Any) -> Any:
        for option in reversed([
            click.option("--webdav-url", required=creating, metavar="URL",
                         help="The upstream WebDAV folder collections lie under (https://)."),
            click.option("--oauth-authorize-url", required=creating, metavar="URL",
                         help="The upstream's OAuth2 authorization endpoint."),
            click.option("--oauth-token-url", required=creating, metavar="URL",
                         help="The upstream's OAuth2 token endpoint."),
            click.option("--oauth-client-id", required=creating,
                         help="This endpoint's OAuth2 client id at the upstream."),
            click.option("--oauth-client-secret", prompt=(
                "OAuth2 client secret" if creating else False), hide_input=True,
                help="Its client secret (asked for when creating; kept encrypted)."),
            click.option("--oauth-scope", "oauth_scopes", multiple=True,
                         help="A scope to ask the upstream for (repeatable; replaces the "
                              "list on update)."),
            click.option("--ca-file", type=click.File("r"),
                         help="PEM certificates to trust for the upstream instead of the "
                              "system's."),
        ]):
            function = option(function)
        return function

    return decorate


def _webdav_policies(options: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The policies document: the gateway's current one with the options given."""
    policies = {key: value for key, value in current.items() if value is not None}
    policies["DATA_TYPE"] = "webdav_storage_policies#1.0.0"
    for key in WEBDAV_POLICY_OPTIONS:
        set_if(policies, key, options.pop(key, None))
    ca_file = options.pop("ca_file", None)
    if ca_file is not None:
        policies["ca_certificates"] = ca_file.read()
    return policies


WEBDAV_POLICY_OPTIONS = ("webdav_url", "oauth_authorize_url", "oauth_token_url",
                         "oauth_client_id", "oauth_client_secret", "oauth_scopes")


@create.command("webdav")
@click.argument("display_name")
@_common_options
@_webdav_options(creating=True)
def create_webdav(display_name: str, **options: Any) -> None:
    """Create a WebDAV storage gateway: a WebDAV server behind OAuth2 (Nextcloud, ownCloud,
    CERNBox, another Isthmus); users grant access with 'user-credentials oauth-create'."""
    if not options.get("domains"):
        raise click.UsageError("Give at least one --domain whose identities may use it")
    policies = _webdav_policies(options, {})
    document = {**_document(options), "display_name": display_name,
                "connector_id": WEBDAV_CONNECTOR_ID, "policies": policies}
    created = decoded(manager().gcs_client().create_storage_gateway(_sdk_document(document)))
    output.print_created("Storage Gateway", created)


# --- update -----------------------------------------------------------------------------


@storage_gateway.group("update")
def update() -> None:
    """Change a storage gateway (options left out stay)."""


@update.command("posix")
@click.argument("storage_gateway_id")
@click.option("--display-name", help="The gateway's new name.")
@_common_options
@_posix_options
def update_posix(storage_gateway_id: str, **options: Any) -> None:
    """Change a POSIX storage gateway."""
    document = _document(options)
    require_changes(document)
    gateway_id = check_uuid(storage_gateway_id, "STORAGE_GATEWAY_ID")
    response = manager().gcs_client().update_storage_gateway(gateway_id,
                                                             _sdk_document(document))
    output.print_message(envelope(response), f"Updated Storage Gateway {gateway_id}")


@update.command("webdav")
@click.argument("storage_gateway_id")
@click.option("--display-name", help="The gateway's new name.")
@_common_options
@_webdav_options(creating=False)
def update_webdav(storage_gateway_id: str, **options: Any) -> None:
    """Change a WebDAV storage gateway (a new client secret replaces the sealed one)."""
    gateway_id = check_uuid(storage_gateway_id, "STORAGE_GATEWAY_ID")
    client = manager().gcs_client()
    changes_policies = any(options.get(key) for key in (*WEBDAV_POLICY_OPTIONS, "ca_file"))
    current = dict(decoded(client.get_storage_gateway(gateway_id)).get("policies") or {}) \
        if changes_policies else {}
    policies = _webdav_policies(options, current)
    document = _document(options)
    if changes_policies:
        document["policies"] = policies
    require_changes(document)
    response = client.update_storage_gateway(gateway_id, _sdk_document(document))
    output.print_message(envelope(response), f"Updated Storage Gateway {gateway_id}")


for _name, (_, _description) in S3_CONNECTORS.items():
    _create_s3(_name, _description)
    _update_s3(_name, _description)
for _name in unavailable.MISSING_CONNECTORS:
    create.add_command(unavailable.missing_connector(_name, OFFERED_CONNECTORS))
    update.add_command(unavailable.missing_connector(_name, OFFERED_CONNECTORS))


# --- list / show / delete ----------------------------------------------------------------


@storage_gateway.command("list")
@click.option("--include-private-policies", is_flag=True,
              help="Also show path restrictions and user and group lists (administrators).")
def list_gateways(include_private_policies: bool) -> None:
    """List the endpoint's storage gateways."""
    client = manager().gcs_client()
    gateways = [dict(item) for item in client.paginated.get_storage_gateway_list(
        include="private_policies" if include_private_policies else MISSING).items()]
    if not gateways and not output.is_json():
        click.echo("No storage gateways.")
        return
    output.print_table(gateways, [
        ("ID", "id"), ("Display Name", "display_name"), ("Connector", connector_name),
        ("High Assurance", "high_assurance"), ("Allowed Domains", "allowed_domains")])


@storage_gateway.command("show")
@click.argument("storage_gateway_id")
@click.option("--include-private-policies", is_flag=True,
              help="Also show path restrictions and user and group lists (administrators).")
def show(storage_gateway_id: str, include_private_policies: bool) -> None:
    """Show one storage gateway."""
    document = decoded(manager().gcs_client().get_storage_gateway(
        check_uuid(storage_gateway_id, "STORAGE_GATEWAY_ID"),
        include="private_policies" if include_private_policies else MISSING))
    output.print_record(document, GATEWAY_FIELDS)


@storage_gateway.command("delete")
@click.argument("storage_gateway_id")
def delete(storage_gateway_id: str) -> None:
    """Delete a storage gateway (its collections must go first)."""
    gateway_id = check_uuid(storage_gateway_id, "STORAGE_GATEWAY_ID")
    response = manager().gcs_client().delete_storage_gateway(gateway_id)
    output.print_message(envelope(response), f"Deleted Storage Gateway {gateway_id}")
