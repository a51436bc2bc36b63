"""`endpoint setup|cleanup|key-convert|upgrade` and `node setup|cleanup`: the commands GCS
runs on a machine of the deployment. They work on the deployment's database (every node
shares ``ISTHMUS_DATABASE_URL``) through `isthmus.provisioning`; see README, "More endpoints".
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from isthmus.gcs_cli import local, output
from isthmus.gcs_cli.base import GCSCommand
from isthmus.gcs_cli.errors import EXIT_USAGE, CLIError

if TYPE_CHECKING:
    from isthmus.deployment import Deployment
    from isthmus.node_server import NodeConfig
    from isthmus.provisioning import DeploymentKey

NODE_START_SECONDS = 60.0

deployment_key_option = click.option(
    "-d", "--deployment-key", type=click.Path(dir_okay=False, path_type=Path),
    default=Path("deployment-key.json"), show_default=True,
    help="The endpoint's deployment key (its Auth client credentials; keep it secret).")
data_dir_option = click.option(
    "--data-dir", envvar="ISTHMUS_DATA_DIR", type=click.Path(file_okay=False, path_type=Path),
    default=None, help="This machine's Isthmus data dir (default ~/.isthmus). The database "
                       "is ISTHMUS_DATABASE_URL, or the SQLite file there.")


@contextlib.contextmanager
def service_errors() -> Iterator[None]:
    """The services' refusals (isthmus.core.errors.APIError) as one-line errors."""
    from isthmus.core.errors import APIError

    try:
        yield
    except APIError as error:
        raise CLIError(error.message) from None


def open_deployment(data_dir: Path | None, endpoint_id: uuid.UUID | None = None) -> Deployment:
    """The deployment this machine belongs to. Its Auth's public URL (what a deployment key
    records) is ISTHMUS_PUBLIC_URL, else what `isthmus serve` recorded when it ran here,
    else the Auth the SDK is pointed at (`isthmus env`)."""
    from isthmus.core.config import Settings
    from isthmus.deployment import open_services

    directory = (data_dir or local.data_dir()).expanduser()
    public_url = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        public_url = json.loads((directory / local.SERVER_STATE_FILE).read_text()).get(
            "public_url")
    public_url = public_url or os.environ.get(local.AUTH_URL_VARIABLE) or None
    settings = Settings.load(directory, public_url=public_url)
    return open_services(settings, endpoint_id=endpoint_id)


def read_key(path: Path) -> DeploymentKey:
    from isthmus.provisioning import DeploymentKey

    with service_errors():
        return DeploymentKey.read(path)


def _who_runs_this(no_local_server: bool) -> str:
    """The identity of whoever runs the command, through Auth: the GCS_CLI_* client, or a
    person who logs in now (GCS's "authenticate to set the owner of the endpoint")."""
    import globus_sdk

    from isthmus.auth.builtins import GCS_CLI_CLIENT_ID
    from isthmus.gcs_cli.session import APP_NAME, AUTH_RESOURCE_SERVER, service_credentials

    local.point_sdk_at_local_services(local.find_local_endpoint())
    wanted = {AUTH_RESOURCE_SERVER: ["openid", "profile", "email"]}
    credentials = service_credentials()
    app: globus_sdk.GlobusApp
    if credentials is not None:
        app = globus_sdk.ClientApp(APP_NAME, client_id=credentials[0],
                                   client_secret=credentials[1], scope_requirements=wanted,
                                   config=globus_sdk.GlobusAppConfig(token_storage="memory"))
    else:
        from isthmus.gcs_cli.session import FlushingCommandLineLogin

        click.echo("Please authenticate with Globus to set the owner of the endpoint")
        app = globus_sdk.UserApp(APP_NAME, client_id=str(GCS_CLI_CLIENT_ID),
                                 scope_requirements=wanted, config=globus_sdk.GlobusAppConfig(
                                     token_storage="memory",
                                     login_flow_manager="local-server" if not no_local_server
                                     else FlushingCommandLineLogin))
    app.login()
    return str(globus_sdk.AuthClient(app=app).userinfo()["sub"])


# --- endpoint setup / cleanup / key-convert / upgrade -------------------------------------


@click.command(cls=GCSCommand)
@click.argument("display_name")
@click.option("--organization", required=True, help="The organization that runs it.")
@click.option("--contact-email", help="Whom to write about the endpoint.")
@click.option("--department", help="The department within the organization.")
@click.option("--description", help="What the endpoint is for.")
@click.option("--contact-info", help="Other contact information.")
@click.option("--info-link", help="A web page about the endpoint.")
@click.option("--keywords", help="Comma-separated search keywords.")
@click.option("-o", "--owner", metavar="IDENTITY",
              help="Who owns the endpoint: a username or identity id (a client is "
                   "CLIENT_ID@clients.auth.globus.org). Default: the GCS_CLI_CLIENT_ID "
                   "client, or whoever logs in now.")
@click.option("--dont-set-advertised-owner", is_flag=True,
              help="Advertise the endpoint's client, not the owner, in Transfer.")
@click.option("--public/--private", default=True, show_default=True,
              help="Whether everyone may find the endpoint in Transfer.")
@click.option("--agree-to-letsencrypt-tos", is_flag=True,
              help="Accepted for scripts written for GCS; Isthmus uses its own certificates "
                   "(or --tls-cert on node setup), not Let's Encrypt.")
@click.option("--no-local-server", is_flag=True,
              help="When logging in to name the owner, paste the code instead of using a "
                   "browser on this machine.")
@deployment_key_option
@data_dir_option
def setup(display_name: str, owner: str | None, dont_set_advertised_owner: bool,
          public: bool, agree_to_letsencrypt_tos: bool, no_local_server: bool,
          deployment_key: Path, data_dir: Path | None, **fields: Any) -> None:
    """Make a new endpoint of this deployment and write its deployment key.

    The endpoint becomes an Auth client of its own (client id = endpoint id) with the scope
    urn:globus:auth:scope:<endpoint id>:manage_collections, and is published in Transfer.
    Serve it with 'globus-connect-server node setup' on this or another machine.
    """
    from isthmus import provisioning
    from isthmus.gcs_cli.endpoints import descriptive_fields

    del agree_to_letsencrypt_tos  # nothing to agree to: no ACME here
    if deployment_key.exists():
        raise CLIError(f"{deployment_key} already exists: it holds another endpoint's "
                       "deployment key", EXIT_USAGE)
    who = owner or _who_runs_this(no_local_server)
    with service_errors():
        deployment = open_deployment(data_dir)
        resolved = provisioning.resolve_identity(deployment, who)
        key = provisioning.setup_endpoint(
            deployment, display_name, descriptive_fields(fields), public=public,
            owner=resolved, advertise_owner=not dont_set_advertised_owner)
        key.write(deployment_key)
    if output.is_json():
        output.print_json({"endpoint_id": str(key.endpoint_id), "owner": resolved[1],
                           "deployment_key": str(deployment_key.resolve())})
        return
    click.echo(f"Created endpoint {key.endpoint_id}")
    click.echo(f"Owner: {resolved[1]}")
    click.echo(f"Deployment key: {deployment_key.resolve()} (keep it secret: whoever holds "
               "it may add nodes to the endpoint or delete it)")
    click.echo(f"Next, on each node: globus-connect-server node setup -d {deployment_key}")


@click.command(cls=GCSCommand)
@deployment_key_option
@data_dir_option
@click.option("--agree-to-delete-endpoint", is_flag=True,
              help="Confirm that the endpoint, its collections and their roles go for good.")
def cleanup(deployment_key: Path, data_dir: Path | None,
            agree_to_delete_endpoint: bool) -> None:
    """Delete the endpoint of a deployment key: its collections, gateways, roles and nodes,
    its Auth clients and scopes, and its Transfer entries. The key file stays."""
    from isthmus import provisioning

    key = read_key(deployment_key)
    if not agree_to_delete_endpoint:
        if not sys.stdin.isatty():
            raise CLIError("Deleting an endpoint needs --agree-to-delete-endpoint", EXIT_USAGE)
        click.confirm(f"Delete endpoint {key.endpoint_id} and everything on it?", abort=True)
    with service_errors():
        removed = provisioning.cleanup_endpoint(open_deployment(data_dir), key)
    if output.is_json():
        output.print_json({"endpoint_id": str(key.endpoint_id),
                           "collections": [str(item) for item in removed]})
        return
    click.echo(f"Deleted endpoint {key.endpoint_id} and {len(removed)} collection(s)")


@click.command("key-convert", cls=GCSCommand)
@deployment_key_option
def key_convert(deployment_key: Path) -> None:
    """Rewrite a deployment key in the current format (deployment_key#1.0.0)."""
    key = read_key(deployment_key)
    with service_errors():
        key.write(deployment_key, replace=True)
    click.echo(f"{deployment_key} holds a current deployment key for endpoint "
               f"{key.endpoint_id}")


@click.command(cls=GCSCommand)
@deployment_key_option
@data_dir_option
def upgrade(deployment_key: Path, data_dir: Path | None) -> None:
    """Bring the deployment's database to this release's schema, and the endpoint's Auth
    registrations and Transfer entries in line with it."""
    key = read_key(deployment_key)
    with service_errors():
        open_deployment(data_dir, key.endpoint_id).connect_for(key.endpoint_id).reconcile()
    click.echo(f"Endpoint {key.endpoint_id} is up to date")


ENDPOINT_COMMANDS: dict[str, click.Command] = {
    "setup": setup, "cleanup": cleanup, "key-convert": key_convert, "upgrade": upgrade}


# --- node setup / cleanup ---------------------------------------------------------------


def node_dir(data_dir: Path | None) -> Path:
    return (data_dir or local.data_dir()).expanduser() / local.INFO_DIR


def _running(pid: int | None, node_file: Path) -> bool:
    """The node process we started is alive (a reused pid of another program is not)."""
    if not pid:
        return False
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"isthmus.node_server" in command_line and str(node_file).encode() in command_line


def _stop(pid: int | None, node_file: Path) -> None:
    if not _running(pid, node_file):
        return
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _running(pid, node_file) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _running(pid, node_file):
        os.kill(pid, signal.SIGKILL)


def _wait_until_serving(process: subprocess.Popen[bytes], config: NodeConfig,
                        log_file: Path) -> None:
    import httpx

    url = config.public_url.rstrip("/") + "/api/info"
    deadline = time.monotonic() + NODE_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            lines = log_file.read_text(errors="replace").strip().splitlines()
            raise CLIError(f"The node process exited: {lines[-1] if lines else 'no output'} "
                           f"(log: {log_file})")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, verify=config.ca_file or True, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise CLIError(f"The node did not answer at {url} within {NODE_START_SECONDS:.0f}s "
                   f"(log: {log_file})")


def _public_url(ip_address: str, port: int) -> str:
    host = f"[{ip_address}]" if ":" in ip_address else ip_address
    return f"https://{host}" if port == 443 else f"https://{host}:{port}"


def _certificate(directory: Path, data_dir: Path, names: list[str],
                 tls_cert: Path | None, tls_key: Path | None) -> tuple[str, str, str | None]:
    if tls_cert and tls_key:
        return str(tls_cert), str(tls_key), None
    from isthmus.core.tls import ensure_certificates

    issued = ensure_certificates(directory / "tls", names, ca_dir=data_dir / "tls")
    return str(issued.cert_file), str(issued.key_file), \
        str(issued.ca_file) if issued.ca_file else None


@click.command(cls=GCSCommand)
@deployment_key_option
@data_dir_option
@click.option("--ip-address", default="127.0.0.1", show_default=True,
              help="The address this node listens on and advertises.")
@click.option("--port", type=click.IntRange(1, 65535), default=443, show_default=True,
              help="The HTTPS port of the node's Manager API and data.")
@click.option("--public-url", help="The https URL clients reach the node by, when it is not "
                                   "https://IP_ADDRESS:PORT (a DNS name, a proxy).")
@click.option("--incoming-port-range", type=int, nargs=2, default=(50000, 51000),
              show_default=True, metavar="LOW HIGH", help="Stored in the node document.")
@click.option("--outgoing-port-range", type=int, nargs=2, default=None, metavar="LOW HIGH",
              help="Stored in the node document.")
@click.option("--data-interface", metavar="IP", help="The address data moves through.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The node's certificate (default: one from the data dir's CA).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--import-node", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Take over a node record saved with --export-node (a replacement host).")
@click.option("--export-node", type=click.Path(dir_okay=False, path_type=Path),
              help="Save this node's record to FILE, for --import-node on a replacement.")
@click.option("--foreground", is_flag=True,
              help="Serve in this process (for a service manager) instead of starting a "
                   "background process.")
def node_setup(deployment_key: Path, data_dir: Path | None, ip_address: str, port: int,
               public_url: str | None, incoming_port_range: tuple[int, int],
               outgoing_port_range: tuple[int, int] | None, data_interface: str | None,
               tls_cert: Path | None, tls_key: Path | None, import_node: Path | None,
               export_node: Path | None, foreground: bool) -> None:
    """Make this machine a node of the deployment key's endpoint, and start serving it.

    The node registers with the endpoint (the first one gives the endpoint its GCS Manager
    URL), writes its configuration and info.json under DATA_DIR/globus-connect-server,
    and serves the endpoint's Manager API on its own port; Auth and Transfer stay with the
    deployment's server.
    """
    from isthmus import provisioning
    from isthmus.node_server import NODE_FILE, NodeConfig, serve

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    key = read_key(deployment_key)
    directory = node_dir(data_dir)
    node_file = directory / NODE_FILE
    if node_file.exists():
        raise CLIError(f"A node is already set up here ({node_file}): run "
                       "'globus-connect-server node cleanup' first", EXIT_USAGE)
    imported = _imported_node(import_node, key.endpoint_id)
    url = (public_url or _public_url(ip_address, port)).rstrip("/")
    fields: dict[str, Any] = {"ip_addresses": [ip_address],
                              "incoming_port_range": list(incoming_port_range)}
    if outgoing_port_range:
        fields["outgoing_port_range"] = list(outgoing_port_range)
    if data_interface:
        fields["data_interface"] = data_interface
    with service_errors():
        deployment = open_deployment(data_dir, key.endpoint_id)
        node_id = provisioning.register_node(deployment, key, imported, fields, url)
    settings = deployment.settings
    from urllib.parse import urlsplit

    names = sorted({ip_address, "localhost", urlsplit(url).hostname or ip_address})
    cert, private_key, ca_file = _certificate(directory, settings.data_dir, names, tls_cert,
                                              tls_key)
    config = NodeConfig(
        node_id=str(node_id), endpoint_id=str(key.endpoint_id),
        data_dir=str(settings.data_dir), database_url=settings.database_url,
        listen_host=ip_address, port=port, public_url=url, tls_cert=cert,
        tls_key=private_key, ca_file=ca_file, auth_url=key.auth_url)
    config.save(node_file)
    _write_info(directory, config)
    if export_node:
        _export(export_node, config, fields)
    if foreground:
        serve(config)
        return
    try:
        started = _start(node_file, config)
    except CLIError:
        # Leave nothing half set up: the next `node setup` starts afresh.
        _forget_node(directory, config)
        raise
    if output.is_json():
        output.print_json({"node_id": str(node_id), "endpoint_id": str(key.endpoint_id),
                           "manager_url": url, "pid": started.pid})
        return
    click.echo(f"Node {node_id} of endpoint {key.endpoint_id} is serving at {url}")
    click.echo(f"  process {started.pid}, log {directory / 'node.log'}")


def _imported_node(path: Path | None, endpoint_id: uuid.UUID) -> uuid.UUID | None:
    if path is None:
        return None
    try:
        document = json.loads(path.read_text())
        node_id = uuid.UUID(str(document["node_id"]))
        exported_for = uuid.UUID(str(document["endpoint_id"]))
    except (OSError, ValueError, KeyError, TypeError):
        raise CLIError(f"{path} is not a node saved with --export-node", EXIT_USAGE) from None
    if exported_for != endpoint_id:
        raise CLIError(f"{path} is a node of endpoint {exported_for}, not {endpoint_id}",
                       EXIT_USAGE)
    return node_id


def _export(path: Path, config: NodeConfig, fields: dict[str, Any]) -> None:
    path.write_text(json.dumps({"DATA_TYPE": "node_export#1.0.0", "node_id": config.node_id,
                                "endpoint_id": config.endpoint_id, **fields}, indent=2))


def _write_info(directory: Path, config: NodeConfig) -> None:
    """What the CLI (and the SDK's LocalGlobusConnectServer, by its keys) reads on a node."""
    from urllib.parse import urlsplit

    info = {"endpoint_id": config.endpoint_id, "node_id": config.node_id,
            "domain_name": urlsplit(config.public_url).netloc,
            "manager_url": config.public_url, "auth_url": config.auth_url,
            "ca_file": config.ca_file}
    (directory / local.INFO_FILE).write_text(json.dumps(info, indent=2))


def _start(node_file: Path, config: NodeConfig) -> subprocess.Popen[bytes]:
    import dataclasses

    log_file = node_file.with_name("node.log")
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "isthmus.node_server", str(node_file)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        _wait_until_serving(process, config, log_file)
    except BaseException:
        process.kill()
        process.wait()
        raise
    dataclasses.replace(config, pid=process.pid).save(node_file)
    return process


def _forget_node(directory: Path, config: NodeConfig) -> bool:
    """Delete the node's record and its local files; False when the record was gone."""
    from isthmus import provisioning
    from isthmus.core.config import Settings
    from isthmus.deployment import open_services
    from isthmus.node_server import NODE_FILE

    with service_errors():
        settings = Settings.load(config.data_dir, database_url=config.database_url)
        removed = provisioning.remove_node(open_services(settings),
                                           uuid.UUID(config.endpoint_id),
                                           uuid.UUID(config.node_id))
    for name in (NODE_FILE, local.INFO_FILE):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
    return removed


@click.command(cls=GCSCommand)
@data_dir_option
def node_cleanup(data_dir: Path | None) -> None:
    """Stop this machine's node and remove it from its endpoint (and its local files)."""
    from isthmus.node_server import NODE_FILE, NodeConfig

    directory = node_dir(data_dir)
    node_file = directory / NODE_FILE
    try:
        config = NodeConfig.load(node_file)
    except (OSError, ValueError, TypeError):
        raise CLIError(f"No node is set up here ({node_file} is missing)", EXIT_USAGE) \
            from None
    _stop(config.pid, node_file)
    removed = _forget_node(directory, config)
    click.echo(f"Node {config.node_id} {'removed from' if removed else 'was already gone from'}"
               f" endpoint {config.endpoint_id}")
