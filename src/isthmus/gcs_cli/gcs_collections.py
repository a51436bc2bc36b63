"""`collection ...`: mapped (and guest) collections through the Manager's /api/collections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from globus_sdk import MISSING, GuestCollectionDocument, MappedCollectionDocument

from isthmus.gcs_cli import output
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.common import (
    identity_id,
    manager,
    path_restrictions,
    require_changes,
    sdk_document,
    set_if,
)
from isthmus.gcs_cli.domains import collection_domains
from isthmus.gcs_cli.endpoints import descriptive_fields, descriptive_options
from isthmus.gcs_cli.errors import EXIT_USAGE, CLIError
from isthmus.gcs_cli.roles import collection_roles
from isthmus.gcs_cli.session import Session, check_uuid, decoded, envelope

FILTERS = ("mapped-collections", "guest-collections", "managed-by-me", "created-by-me")
COLLECTION_FIELDS: list[output.Field] = [
    ("Display Name", "display_name"), ("ID", "id"), ("Collection Type", "collection_type"),
    ("Storage Gateway ID", "storage_gateway_id"),
    ("Mapped Collection ID", "mapped_collection_id"), ("Owner", "identity_id"),
    ("Connector ID", "connector_id"), ("Base Path", "collection_base_path"),
    ("Root Path", "root_path"), ("Default Directory", "default_directory"),
    ("Public", "public"), ("Organization", "organization"), ("Department", "department"),
    ("Description", "description"), ("Keywords", "keywords"),
    ("Contact E-mail", "contact_email"), ("Contact Info", "contact_info"),
    ("Info Link", "info_link"), ("User Message", "user_message"),
    ("User Message Link", "user_message_link"), ("HTTPS URL", "https_url"),
    ("Enable HTTPS", "enable_https"), ("Force Encryption", "force_encryption"),
    ("Allow Guest Collections", "allow_guest_collections"),
    ("Disable Anonymous Writes", "disable_anonymous_writes"),
    ("Sharing Restrict Paths", "sharing_restrict_paths"),
    ("Sharing Users Allow", "sharing_users_allow"),
    ("Sharing Users Deny", "sharing_users_deny"), ("Policies", "policies"),
    ("Guest Auth Policy ID", "guest_auth_policy_id"),
    ("High Assurance", "high_assurance"),
    ("Authentication Timeout", "authentication_timeout_mins"),
    ("Delete Protected", "delete_protected"), ("Created", "created_at"),
    ("Last Access", "last_access"),
]


@click.group("collection", cls=GCSGroup)
def collection() -> None:
    """Collections: what users see of a storage gateway, and share."""


collection.add_command(collection_roles())
collection.add_command(collection_domains())


def _settings_options(function: Any) -> Any:
    """Options create and update share."""
    for option in reversed([
        click.option("--public/--private", default=None,
                     help="Whether everyone may see the collection."),
        click.option("--default-directory", metavar="PATH",
                     help="Where clients start (e.g. /~/ or /home/$USER/)."),
        click.option("--identity-id", metavar="IDENTITY",
                     help="The owner: a username or identity id."),
        click.option("--allow-guest-collections/--disable-guest-collections", default=None,
                     help="Whether users may share data through guest collections."),
        click.option("--sharing-restrict-paths", metavar="file:PATH|JSON",
                     help="Paths guest collections may share (a path_restrictions "
                          "document)."),
        click.option("--sharing-user-allow", multiple=True, metavar="USER",
                     help="A local account allowed to share (repeatable)."),
        click.option("--sharing-user-deny", multiple=True, metavar="USER",
                     help="A local account not allowed to share (repeatable)."),
        click.option("--posix-sharing-group-allow", multiple=True, metavar="GROUP",
                     help="A local group whose members may share (repeatable)."),
        click.option("--posix-sharing-group-deny", multiple=True, metavar="GROUP",
                     help="A local group whose members may not share (repeatable)."),
        click.option("--enable-https/--disable-https", default=None,
                     help="Whether files are reachable over HTTPS."),
        click.option("--force-encryption/--no-force-encryption", default=None,
                     help="Require encrypted transfers."),
        click.option("--enable-anonymous-writes/--disable-anonymous-writes", default=None,
                     help="Whether anonymous users may write where access rules allow."),
        click.option("--guest-auth-policy-id", metavar="POLICY_ID",
                     help="An Auth policy guest collections' users must satisfy."),
        click.option("--user-message", help="A message shown to users (256 characters)."),
        click.option("--user-message-link", metavar="URL", help="A link with more to read."),
        click.option("--verify", type=click.Choice(["force", "disable", "default"]),
                     help="Checksum verification of transfers: always, never, or as asked."),
        click.option("--delete-protected/--no-delete-protected", default=None,
                     help="Refuse to delete the collection while set."),
    ]):
        function = option(function)
    return function


def _document(session: Session, options: Mapping[str, Any]) -> dict[str, Any]:
    document = descriptive_fields(dict(options))
    for key in ("public", "default_directory", "allow_guest_collections", "enable_https",
                "force_encryption", "guest_auth_policy_id", "user_message",
                "user_message_link", "delete_protected", "display_name", "domain_name"):
        set_if(document, key, options.get(key))
    set_if(document, "sharing_users_allow", options.get("sharing_user_allow"))
    set_if(document, "sharing_users_deny", options.get("sharing_user_deny"))
    if options.get("identity_id"):
        document["identity_id"] = identity_id(session, options["identity_id"])
    if options.get("sharing_restrict_paths"):
        document["sharing_restrict_paths"] = path_restrictions(
            options["sharing_restrict_paths"], "--sharing-restrict-paths")
    if options.get("enable_anonymous_writes") is not None:
        document["disable_anonymous_writes"] = not options["enable_anonymous_writes"]
    verify = options.get("verify")
    if verify is not None:
        document["force_verify"] = verify == "force"
        document["disable_verify"] = verify == "disable"
    policies: dict[str, Any] = {}
    set_if(policies, "sharing_groups_allow", options.get("posix_sharing_group_allow"))
    set_if(policies, "sharing_groups_deny", options.get("posix_sharing_group_deny"))
    if policies:
        document["policies"] = {"DATA_TYPE": "posix_collection_policies#1.0.0", **policies}
    return document


@collection.command("create")
@click.argument("storage_gateway_id")
@click.argument("base_path")
@click.argument("display_name")
@descriptive_options
@_settings_options
@click.option("--domain-name", help="The host name the collection is advertised under.")
def create(storage_gateway_id: str, base_path: str, display_name: str,
           **options: Any) -> None:
    """Create a mapped collection of BASE_PATH on a storage gateway ($USER, $HOME and ~
    stand for the user's account and home)."""
    session = manager()
    document = sdk_document(MappedCollectionDocument, {
        **_document(session, options),
        "storage_gateway_id": check_uuid(storage_gateway_id, "STORAGE_GATEWAY_ID"),
        "collection_base_path": base_path, "display_name": display_name})
    created = decoded(session.gcs_client().create_collection(document))
    output.print_created("Collection", created)


def _owner_names(session: Session, collections: list[dict[str, Any]]) -> dict[str, str]:
    ids = sorted({str(item["identity_id"]) for item in collections if item.get("identity_id")})
    if not ids:
        return {}
    found = session.auth_client().get_identities(ids=ids)["identities"]
    return {str(item["id"]): str(item["username"]) for item in found}


def _filters(values: tuple[str, ...]) -> list[str]:
    """``--filter`` values in the Manager's spelling (dashes become underscores)."""
    listed: list[str] = []
    for value in values:
        for item in (part.strip() for part in value.split(",") if part.strip()):
            if item in FILTERS:
                listed.append(item.replace("-", "_"))
            elif item.startswith(("created-at", "last-access")):
                listed.append(item.replace("-", "_", 1))
            else:
                raise CLIError(f"--filter {item!r}: one of {', '.join(FILTERS)}, "
                               "created-at<op>YYYY-MM-DD or last-access<op>YYYY-MM-DD",
                               EXIT_USAGE)
    return listed


@collection.command("list")
@click.option("--filter", "filters", multiple=True, metavar="FILTER",
              help=f"Only some collections: {', '.join(FILTERS)}, created-at<op>DATE or "
                   "last-access<op>DATE (repeatable or comma-separated).")
@click.option("--mapped-collection-id", metavar="COLLECTION_ID",
              help="Only the guest collections of this mapped collection.")
@click.option("--include-private-policies", is_flag=True,
              help="Also show sharing restrictions and policies (administrators).")
def list_collections(filters: tuple[str, ...], mapped_collection_id: str | None,
                     include_private_policies: bool) -> None:
    """List the endpoint's collections you may see."""
    session = manager()
    wanted = _filters(filters)
    found = [dict(item) for item in session.gcs_client().paginated.get_collection_list(
        mapped_collection_id=check_uuid(mapped_collection_id, "--mapped-collection-id")
        if mapped_collection_id else MISSING,
        filter=",".join(wanted) if wanted else MISSING,
        include="private_policies" if include_private_policies else MISSING).items()]
    if output.is_json():
        output.print_json(found)
        return
    if not found:
        click.echo("No collections.")
        return
    names = _owner_names(session, found)
    output.print_table(found, [
        ("ID", "id"), ("Display Name", "display_name"),
        ("Owner", lambda item: names.get(str(item.get("identity_id")), item.get("identity_id"))),
        ("Collection Type", "collection_type"), ("Storage Gateway ID", "storage_gateway_id"),
        ("Created", "created_at"), ("Last Access", "last_access")])


@collection.command("show")
@click.argument("collection_id")
@click.option("--include-private-policies", is_flag=True,
              help="Also show sharing restrictions and policies (administrators).")
def show(collection_id: str, include_private_policies: bool) -> None:
    """Show one collection."""
    session = manager()
    document = decoded(session.gcs_client().get_collection(
        check_uuid(collection_id, "COLLECTION_ID"),
        query_params={"include": "private_policies"} if include_private_policies else None))
    if not output.is_json() and document.get("identity_id"):
        names = _owner_names(session, [document])
        document = {**document, "identity_id": names.get(str(document["identity_id"]),
                                                         document["identity_id"])}
    output.print_record(document, COLLECTION_FIELDS)


@collection.command("update")
@click.argument("collection_id")
@click.option("--display-name", help="The collection's new name.")
@descriptive_options
@_settings_options
def update(collection_id: str, **options: Any) -> None:
    """Change a collection (options left out stay)."""
    session = manager()
    client = session.gcs_client()
    target = check_uuid(collection_id, "COLLECTION_ID")
    fields = _document(session, options)
    require_changes(fields)
    kind = decoded(client.get_collection(target)).get("collection_type")
    document = sdk_document(
        GuestCollectionDocument if kind == "guest" else MappedCollectionDocument, fields)
    response = client.update_collection(target, document)
    output.print_message(envelope(response), f"Updated Collection {target}")


@collection.command("delete")
@click.argument("collection_id")
def delete(collection_id: str) -> None:
    """Delete a collection (a mapped one takes its guest collections along)."""
    target = check_uuid(collection_id, "COLLECTION_ID")
    response = manager().gcs_client().delete_collection(target)
    output.print_message(envelope(response), f"Deleted Collection {target}")


@collection.command("batch-delete")
@click.argument("collection_ids", nargs=-1, required=True, metavar="COLLECTION_ID...")
def batch_delete(collection_ids: tuple[str, ...]) -> None:
    """Delete many guest collections at once."""
    ids = [check_uuid(item, "COLLECTION_ID") for item in collection_ids]
    response = manager().gcs_client().post("collections/batch_delete", data={
        "DATA_TYPE": "batch#1.0.0", "ids": ids})
    whole = envelope(response)
    if output.is_json():
        output.print_json(whole)
        return
    accepted: list[str] = next((item.get("ids", []) for item in whole.get("data", [])), [])
    click.echo(f"Deleting {len(accepted)} collection(s): {', '.join(accepted) or 'none'}")


@collection.command("check")
@click.argument("collection_id", required=False)
def check(collection_id: str | None) -> None:
    """Report configuration problems of one collection, or of all you administer."""
    path = f"collections/{check_uuid(collection_id, 'COLLECTION_ID')}/check" \
        if collection_id else "collections/check"
    results = [dict(item) for item in manager().gcs_client().get(path)["data"]]
    if output.is_json():
        output.print_json(results)
        return
    problems = [item for item in results if item.get("error")]
    output.print_table(results, [("Collection ID", "id"),
                                 ("Status", lambda item: "error" if item.get("error")
                                  else "ok"),
                                 ("Message", "message")])
    if problems:
        raise CLIError(f"{len(problems)} collection(s) have problems")


def _owner_string(collection_id: str, identity: str | None) -> None:
    session = manager()
    target = check_uuid(collection_id, "COLLECTION_ID")
    client = session.gcs_client()
    if identity is None:
        response = client.delete(f"collections/{target}/owner_string")
    else:
        response = client.put(f"collections/{target}/owner_string", data={
            "DATA_TYPE": "owner_string#1.0.0", "identity_id": identity_id(session, identity)})
    output.print_message(envelope(response), f"Updated Collection {target}")


@collection.command("set-owner-string")
@click.argument("collection_id")
@click.argument("identity")
def set_owner_string(collection_id: str, identity: str) -> None:
    """Advertise IDENTITY (one of your linked identities) as the collection's owner."""
    _owner_string(collection_id, identity)


@collection.command("reset-owner-string")
@click.argument("collection_id")
def reset_owner_string(collection_id: str) -> None:
    """Advertise the endpoint's client as the collection's owner again."""
    _owner_string(collection_id, None)


@collection.command("set-owner")
@click.argument("collection_id")
@click.argument("identity")
def set_owner(collection_id: str, identity: str) -> None:
    """Make IDENTITY (a username or id) the owner of a mapped collection."""
    session = manager()
    target = check_uuid(collection_id, "COLLECTION_ID")
    response = session.gcs_client().put(f"collections/{target}/owner", data={
        "DATA_TYPE": "collection_owner#1.0.0", "identity_id": identity_id(session, identity)})
    output.print_message(envelope(response), f"Set the owner of Collection {target}")


@collection.command("set-subscription-admin-verified")
@click.argument("collection_id")
@click.argument("verified", type=click.BOOL, metavar="{true|false}")
def set_subscription_admin_verified(collection_id: str, verified: bool) -> None:
    """Mark a collection as verified by its subscription's administrator (or not)."""
    target = check_uuid(collection_id, "COLLECTION_ID")
    response = manager().gcs_client().put(
        f"collections/{target}/subscription_admin_verified",
        data={"DATA_TYPE": "subscription_admin_verified#1.0.0",
              "subscription_admin_verified": verified})
    output.print_message(envelope(response), f"Updated Collection {target}")
