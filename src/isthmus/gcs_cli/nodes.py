"""`node ...`: the endpoint's nodes through the Manager's /api/nodes, `node setup|cleanup`
on this machine, `node new-secret`, and `self-diagnostic`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import globus_sdk

from isthmus.gcs_cli import deployment_commands, local, output
from isthmus.gcs_cli.base import GCSCommand, GCSGroup, explicit_host
from isthmus.gcs_cli.common import manager, require_changes
from isthmus.gcs_cli.errors import CLIError
from isthmus.gcs_cli.session import check_uuid, decoded, envelope, open_session

NODE_FIELDS: list[output.Field] = [
    ("ID", "id"), ("Status", "status"), ("IP Addresses", "ip_addresses"),
    ("Incoming Port Range", "incoming_port_range"),
    ("Outgoing Port Range", "outgoing_port_range"), ("Data Interface", "data_interface"),
]
NODE_DATA_TYPE = "node#1.3.0"


@click.group("node", cls=GCSGroup)
def node() -> None:
    """The endpoint's nodes: the machines that serve its Manager API and data."""


node.add_command(deployment_commands.node_setup, "setup")
node.add_command(deployment_commands.node_cleanup, "cleanup")


def all_nodes(client: globus_sdk.GCSClient) -> Iterator[dict[str, Any]]:
    marker = None
    while True:
        page = client.get("nodes", query_params={"marker": marker} if marker else None)
        yield from (dict(item) for item in page["data"])
        marker = page.get("marker")
        if not page.get("has_next_page") or not marker:
            return


@node.command("list")
def list_nodes() -> None:
    """List the endpoint's nodes."""
    nodes = list(all_nodes(manager().gcs_client()))
    if not nodes and not output.is_json():
        click.echo("No nodes.")
        return
    output.print_table(nodes, [("ID", "id"), ("Status", "status"),
                               ("IP Addresses", "ip_addresses")])


@node.command("show")
@click.argument("node_id")
def show(node_id: str) -> None:
    """Show one node."""
    response = manager().gcs_client().get(f"nodes/{check_uuid(node_id, 'NODE_ID')}")
    output.print_record(dict(response["data"][0]), NODE_FIELDS)


def _node_options(function: Any) -> Any:
    for option in reversed([
        click.option("--ip-address", "ip_addresses", multiple=True,
                     help="An address of the node (repeatable; replaces the list)."),
        click.option("--incoming-port-range", type=int, nargs=2, default=None,
                     metavar="LOW HIGH"),
        click.option("--outgoing-port-range", type=int, nargs=2, default=None,
                     metavar="LOW HIGH"),
        click.option("--data-interface", metavar="IP", help="The address data moves through."),
    ]):
        function = option(function)
    return function


def _node_document(ip_addresses: tuple[str, ...], incoming_port_range: Any,
                   outgoing_port_range: Any, data_interface: str | None) -> dict[str, Any]:
    document: dict[str, Any] = {"DATA_TYPE": NODE_DATA_TYPE}
    if ip_addresses:
        document["ip_addresses"] = list(ip_addresses)
    if incoming_port_range:
        document["incoming_port_range"] = list(incoming_port_range)
    if outgoing_port_range:
        document["outgoing_port_range"] = list(outgoing_port_range)
    if data_interface:
        document["data_interface"] = data_interface
    return document


@node.command("create")
@_node_options
@click.option("--export-node", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the new record to FILE for 'node setup --import-node' on the host.")
def create(export_node: Path | None, **options: Any) -> None:
    """Record a node without setting up this machine (set it up later with --import-node)."""
    document = _node_document(**options)
    if "ip_addresses" not in document:
        raise click.UsageError("Give the node's --ip-address")
    session = manager()
    response = session.gcs_client().post("nodes", data={**document, "status": "active"})
    created = dict(response["data"][0])
    if export_node:
        import json

        export_node.write_text(json.dumps({
            "DATA_TYPE": "node_export#1.0.0", "node_id": created["id"],
            "endpoint_id": session.endpoint_id,
            **{key: value for key, value in document.items() if key != "DATA_TYPE"}},
            indent=2))
    output.print_created("Node", created)


def _patch(node_id: str, document: dict[str, Any]) -> None:
    response = manager().gcs_client().patch(f"nodes/{check_uuid(node_id, 'NODE_ID')}",
                                            data=document)
    output.print_message(envelope(response), f"Updated Node {node_id}")


@node.command("update")
@click.argument("node_id")
@_node_options
def update(node_id: str, **options: Any) -> None:
    """Change a node's addresses, port ranges or data interface."""
    document = _node_document(**options)
    require_changes(document)
    _patch(node_id, document)


@node.command("enable")
@click.argument("node_id")
def enable(node_id: str) -> None:
    """Put a node back in service."""
    _patch(node_id, {"DATA_TYPE": NODE_DATA_TYPE, "status": "active"})


@node.command("disable")
@click.argument("node_id")
def disable(node_id: str) -> None:
    """Take a node out of service."""
    _patch(node_id, {"DATA_TYPE": NODE_DATA_TYPE, "status": "inactive"})


@node.command("delete")
@click.argument("node_id")
def delete(node_id: str) -> None:
    """Delete a node's record (a host that is gone; on a live host use 'node cleanup')."""
    response = manager().gcs_client().delete(f"nodes/{check_uuid(node_id, 'NODE_ID')}")
    output.print_message(envelope(response), f"Deleted Node {node_id}")


@node.command("new-secret")
@deployment_commands.deployment_key_option
@deployment_commands.data_dir_option
def new_secret(deployment_key: Path, data_dir: Path | None) -> None:
    """Give the endpoint's client a new secret and write it into the deployment key; the
    old secret stops working."""
    from isthmus import provisioning

    key = deployment_commands.read_key(deployment_key)
    with deployment_commands.service_errors():
        rotated = provisioning.rotate_secret(deployment_commands.open_deployment(
            data_dir, key.endpoint_id), key)
        rotated.write(deployment_key, replace=True)
    click.echo(f"The deployment key {deployment_key} holds the endpoint's new secret")


# --- self-diagnostic ------------------------------------------------------------------


def _check(title: str, run: Any) -> bool:
    click.echo(f"== diagnostic: {title} ==")
    try:
        for line in run():
            click.echo(f"  {line}")
    except Exception as error:
        from isthmus.gcs_cli.base import translate

        click.echo(f"  FAILED: {translate(error).format_message()}")
        return False
    return True


@click.command("self-diagnostic", cls=GCSCommand)
def self_diagnostic() -> None:
    """Check this machine's view of the endpoint: the local install, Auth, the GCS Manager
    and, when logged in, the endpoint's nodes. Exits 1 if a check fails."""
    import httpx

    found = local.find_local_endpoint()
    local.point_sdk_at_local_services(found)
    session = open_session(explicit_host=explicit_host())

    def install() -> list[str]:
        if found is None:
            return ["no local install: the endpoint comes from the login or GCS_CLI_*"]
        return [f"{found.source}: endpoint {found.endpoint_id}"]

    def auth() -> list[str]:
        base = globus_sdk.AuthClient().base_url
        verify = globus_sdk.config.get_ssl_verify()
        answer = httpx.get(base + ".well-known/openid-configuration", verify=verify, timeout=10)
        answer.raise_for_status()
        return [f"{base}: issuer {answer.json().get('issuer')}"]

    def gcs_manager() -> list[str]:
        info = decoded(globus_sdk.GCSClient(session.manager_url()).get_gcs_info())
        if info.get("endpoint_id") != session.endpoint_id:
            raise CLIError(f"serves endpoint {info.get('endpoint_id')}")
        return [f"{session.manager_url()}/api/info: {info}"]

    def nodes() -> list[str]:
        return [f"{item['id']}: {item['status']} {', '.join(item.get('ip_addresses', []))}"
                for item in all_nodes(session.gcs_client())]

    results = [_check("local install", install), _check("auth", auth),
               _check("gcs manager", gcs_manager), _check("nodes", nodes)]
    if not all(results):
        raise CLIError(f"{results.count(False)} of {len(results)} checks failed")
