"""The `isthmus` command: serve the platform and administer it without a browser."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from isthmus.core.config import DEFAULT_PORT, Settings

if TYPE_CHECKING:
    from isthmus.auth.upstream import ListedProvider

STATE_FILE = "server.json"


def _settings(data_dir: str | None, **overrides: Any) -> Settings:
    return Settings.load(data_dir, **overrides)


def _emit(as_json: bool, document: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        for line in lines:
            click.echo(line)


data_dir_option = click.option(
    "--data-dir", envvar="ISTHMUS_DATA_DIR", type=click.Path(file_okay=False),
    help="Where the database, keys and files live (default ~/.isthmus).",
)


@click.group()
@click.version_option(package_name="isthmus")
def main() -> None:
    """Isthmus: a self-hosted research data platform that speaks the Globus APIs."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help=f"Port (default {DEFAULT_PORT}).")
@data_dir_option
@click.option("--http", "plain_http", is_flag=True,
              help="Serve plain HTTP (behind a TLS-terminating proxy).")
@click.option("--public-url", envvar="ISTHMUS_PUBLIC_URL", default=None,
              help="The https base URL clients use, when it differs from where we listen.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--workers", type=click.IntRange(min=1), default=1, envvar="ISTHMUS_WORKERS",
              show_default=True,
              help="Server processes sharing the port; one per core serves the most requests.")
@click.option("--access-log", type=click.Path(dir_okay=False), envvar="ISTHMUS_ACCESS_LOG",
              default=None,
              help="Append one line per request to FILE: time, client, method, path (no "
                   "query string), status, milliseconds.")
def serve(
    host: str | None, port: int | None, data_dir: str | None, plain_http: bool,
    public_url: str | None, tls_cert: str | None, tls_key: str | None, workers: int,
    access_log: str | None,
) -> None:
    """Run Auth (and, as they arrive, the other services) in one process, or --workers."""
    import uvicorn

    from isthmus.core.tls import ensure_certificates
    from isthmus.deployment import open_services

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    started = time.monotonic()
    settings = _settings(data_dir, host=host, port=port, tls=not plain_http,
                         tls_cert=tls_cert, tls_key=tls_key, public_url=public_url,
                         access_log=access_log)
    deployment = open_services(settings, serving=True)
    ssl: dict[str, Any] = {}
    ca_file: Path | None = None
    if settings.tls:
        if settings.tls_cert and settings.tls_key:
            ssl = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
        else:
            names = ["localhost", "127.0.0.1", settings.host]
            certificate = ensure_certificates(settings.data_dir / "tls", names)
            ssl = {"ssl_certfile": str(certificate.cert_file),
                   "ssl_keyfile": str(certificate.key_file)}
            ca_file = certificate.ca_file
    _write_state(settings, ca_file, str(deployment.connect.endpoint_id))
    app = None
    if workers == 1:
        from isthmus.server import create_app

        app = create_app(deployment)
    click.echo(f"Isthmus is serving at {settings.public_url}")
    click.echo(f"  data dir: {settings.data_dir}")
    click.echo(f"  Globus Connect Server endpoint: {deployment.connect.endpoint_id}"
               f" (GCS Manager API at {settings.public_url}api/)")
    default_collection = deployment.connect.default_collection()
    if default_collection is not None:
        collection_id, collection_name = default_collection
        click.echo(f"  collection \"{collection_name}\": {collection_id}")
    click.echo(f"  point the Globus SDK and CLI here with: eval \"$(isthmus env"
               f" --data-dir {settings.data_dir})\"")
    click.echo("  create a user with: isthmus user create USERNAME")
    if settings.access_log:
        click.echo(f"  access log: {settings.access_log}")
    click.echo(f"  ready in {time.monotonic() - started:.2f}s")
    # Whoever reads this through a pipe or a log file needs it now, not at exit.
    sys.stdout.flush()
    options: dict[str, Any] = {"host": settings.host, "port": settings.port,
                               "log_level": "warning", "access_log": False,
                               "server_header": False,
                               # Idle TLS keep-alive clients must not hold a stop for 30 s.
                               "timeout_graceful_shutdown": 3, **ssl}
    # Transfer's tasks run in this process (whatever the number of HTTP workers): on SQLite
    # one runner must hold them all.
    runner = deployment.task_runner()
    runner.start()
    # uvicorn shuts down gracefully on SIGTERM, then raises it again for the handler it found:
    # the default one would end the process before the runner below stops its copies at a
    # flush (keeping a large file's copy to resume from), as a crash would.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if app is not None:
            # The runner is told at once: its copies stop while the connections drain.
            _serve(app, options, runner.stopping)
            return
        # The first start's work (migrations, built-ins, keys, certificates) is done
        # above, once. The workers are fresh interpreters (uvicorn spawns them) that
        # open the same deployment from the settings passed through the environment.
        click.echo(f"  {workers} worker processes")
        deployment.auth.engine.dispose()
        os.environ.update(_worker_environment(settings))
        uvicorn.run("isthmus.server:app_factory", factory=True, workers=workers, **options)
    finally:
        runner.stop()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    raise SystemExit(0)


def _serve(app: Any, options: dict[str, Any], stopping: threading.Event) -> None:
    """uvicorn serving ``app``, setting ``stopping`` as soon as it is asked to exit."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            stopping.set()
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, **options)).run()


def _worker_environment(settings: Settings) -> dict[str, str]:
    """What `Settings.load()` in a worker needs to arrive at the same settings."""
    environment = {
        "ISTHMUS_DATA_DIR": str(settings.data_dir),
        "ISTHMUS_DATABASE_URL": settings.database_url,
        "ISTHMUS_HOST": settings.host,
        "ISTHMUS_PORT": str(settings.port),
        "ISTHMUS_HTTP": "" if settings.tls else "1",
        "ISTHMUS_PUBLIC_URL": settings.public_url_override or "",
    }
    if settings.local_idp_domain:
        environment["ISTHMUS_LOCAL_IDP_DOMAIN"] = settings.local_idp_domain
    if settings.access_log:
        environment["ISTHMUS_ACCESS_LOG"] = str(settings.access_log)
    return environment


def _write_state(settings: Settings, ca_file: Path | None, endpoint_id: str) -> None:
    """Remember how the server is reached, for `isthmus env`, and which endpoint it serves,
    for `globus-connect-server` run on this machine."""
    state = {"public_url": settings.public_url, "ca_file": str(ca_file) if ca_file else None,
             "endpoint_id": endpoint_id}
    path = settings.data_dir / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state))
    temporary.replace(path)


@main.command()
@data_dir_option
def env(data_dir: str | None) -> None:
    """Print the variables that point globus-sdk and globus-cli at this Isthmus."""
    settings = _settings(data_dir)
    state_file = settings.data_dir / STATE_FILE
    if state_file.exists():
        state = json.loads(state_file.read_text())
    else:
        state = {"public_url": settings.public_url, "ca_file": None}
    base = state["public_url"]
    click.echo(f"export GLOBUS_SDK_SERVICE_URL_AUTH={base}")
    click.echo(f"export GLOBUS_SDK_SERVICE_URL_GROUPS={base}groups/")
    # The SDK requests <base>/v0.10/... (4.x's absolute paths and 3.x's base_path alike).
    click.echo(f"export GLOBUS_SDK_SERVICE_URL_TRANSFER={base}")
    if state.get("ca_file"):
        click.echo(f"export GLOBUS_SDK_VERIFY_SSL={state['ca_file']}")
    # requests honours proxies even for loopback; keep this server out of them.
    click.echo('export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"')
    click.echo("unset GLOBUS_SDK_ENVIRONMENT")


# --- users ----------------------------------------------------------------------


@main.group()
def user() -> None:
    """Users of the local identity provider."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise click.UsageError("No terminal to ask for a password: use --password-stdin")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--email", default=None)
@click.option("--name", default=None)
@click.option("--organization", default=None)
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
def user_create(
    username: str, password_stdin: bool, email: str | None, name: str | None,
    organization: str | None, as_json: bool, data_dir: str | None,
) -> None:
    """Create a user; a bare USERNAME gets the local identity provider's domain.

    The first user created owns the server's Globus Connect Server endpoint.
    """
    from isthmus.auth import identities
    from isthmus.core.db import transaction
    from isthmus.deployment import open_services

    password = _read_password(password_stdin)
    deployment = open_services(_settings(data_dir))
    with _api_errors(), transaction(deployment.auth.sessions) as session:
        identity = identities.create_user(
            session, username, password, email=email, name=name, organization=organization
        )
        document: dict[str, Any] = {
            "id": str(identity.id), "username": identity.username, "name": identity.name,
            "email": identity.email, "organization": identity.organization}
    owner = deployment.connect.claim_ownership(identity.id, identity.username)
    document["endpoint_owner"] = owner
    lines = [f"Created user {document['username']} ({document['id']})"]
    if owner:
        lines.append(f"{document['username']} owns endpoint {deployment.connect.endpoint_id}")
    _emit(as_json, document, lines)


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
def user_list(as_json: bool, data_dir: str | None) -> None:
    """List local users and the local identity provider's domain."""
    from isthmus.auth import identities
    from isthmus.core.db import reading
    from isthmus.deployment import open_deployment

    auth = open_deployment(_settings(data_dir))
    with reading(auth.sessions) as session:
        domain = identities.local_domain(session)
        users = [{"id": str(u.identity.id), "username": u.identity.username,
                  "name": u.identity.name, "email": u.identity.email,
                  "disabled": u.disabled} for u in identities.list_users(session)]
    lines = [f"Local identity provider domain: {domain}"] + [
        f"{u['username']}\t{u['id']}\t{'disabled' if u['disabled'] else 'active'}"
        for u in users
    ]
    _emit(as_json, {"domain": domain, "users": users}, lines)


@user.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True)
@data_dir_option
def user_set_password(username: str, password_stdin: bool, data_dir: str | None) -> None:
    """Replace a user's password."""
    from isthmus.auth import identities
    from isthmus.core.db import transaction
    from isthmus.deployment import open_deployment

    password = _read_password(password_stdin)
    auth = open_deployment(_settings(data_dir))
    with _api_errors(), transaction(auth.sessions) as session:
        identities.set_password(session, username, password)
    click.echo(f"Password changed for {username}")


@user.command("disable")
@click.argument("username")
@data_dir_option
def user_disable(username: str, data_dir: str | None) -> None:
    """Stop a user from logging in."""
    from isthmus.auth import identities
    from isthmus.core.db import transaction
    from isthmus.deployment import open_deployment

    auth = open_deployment(_settings(data_dir))
    with _api_errors(), transaction(auth.sessions) as session:
        identities.set_disabled(session, username, True)
    click.echo(f"Disabled {username}")


@user.command("reset-mfa")
@click.argument("username")
@data_dir_option
def user_reset_mfa(username: str, data_dir: str | None) -> None:
    """Turn off a user's two-factor authentication (lost phone and recovery codes)."""
    from isthmus.auth import identities, mfa
    from isthmus.core.db import transaction
    from isthmus.deployment import open_deployment

    auth = open_deployment(_settings(data_dir))
    with _api_errors(), transaction(auth.sessions) as session:
        identity_id = identities.require_local_user(session, username).identity_id
        had_one = mfa.reset(session, identity_id)
    click.echo(f"Two-factor authentication turned off for {username}" if had_one
               else f"{username} had no two-factor authentication")


# --- transfer tasks -------------------------------------------------------------


@main.group()
def task() -> None:
    """Transfer tasks, as the deployment's administrator sees them."""


@task.command("watch")
@click.argument("task_id")
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between looks at the task.")
@data_dir_option
def task_watch(task_id: str, interval: float, data_dir: str | None) -> None:
    """Show a task's progress (files, bytes, speed, status) until it ends; exit 0 when it
    SUCCEEDED, 1 otherwise."""
    import uuid

    from rich.console import Console

    from isthmus.cli import task_watch as watching
    from isthmus.deployment import open_deployment

    try:
        key = uuid.UUID(task_id)
    except ValueError:
        raise click.ClickException(f"No task found with id '{task_id}'") from None
    sessions = open_deployment(_settings(data_dir)).sessions
    first = watching.read_task(sessions, key)
    if first is None:
        raise click.ClickException(f"No task found with id '{task_id}'")
    last = watching.watch(sessions, key, first, interval, Console(stderr=True))
    click.echo(watching.final_line(last))
    sys.exit(0 if last["status"] == "SUCCEEDED" else 1)


# --- clients and scopes ----------------------------------------------------------


@main.group()
def client() -> None:
    """OAuth clients registered with Auth."""


@client.command("create")
@click.argument("name")
@click.option("--type", "client_type", required=True, type=click.Choice([
    "public_installed_client", "confidential_client", "client_identity", "resource_server",
    "hybrid_confidential_client_resource_server"]))
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
def client_create(
    name: str, client_type: str, redirect_uris: tuple[str, ...], as_json: bool,
    data_dir: str | None,
) -> None:
    """Register a client; its secret, if it has one, is shown only now."""
    from isthmus.auth import clients
    from isthmus.core.db import transaction
    from isthmus.deployment import open_deployment

    auth = open_deployment(_settings(data_dir))
    with _api_errors(), transaction(auth.sessions) as session:
        created = clients.create_client(session, name, client_type,
                                        redirect_uris=list(redirect_uris))
        document = {"id": str(created.client.id), "name": created.client.name,
                    "client_type": client_type, "secret": created.secret,
                    "redirect_uris": list(created.client.redirect_uris)}
    lines = [f"Client ID: {document['id']}"]
    if created.secret:
        lines.append(f"Client secret: {created.secret}")
        lines.append("The secret is shown only now: store it safely.")
    _emit(as_json, document, lines)


@client.command("list")
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
def client_list(as_json: bool, data_dir: str | None) -> None:
    """List registered clients."""
    from isthmus.auth import clients
    from isthmus.core.db import reading
    from isthmus.deployment import open_deployment

    auth = open_deployment(_settings(data_dir))
    with reading(auth.sessions) as session:
        rows = [{"id": str(c.id), "name": c.name, "client_type": c.client_type,
                 "resource_server": c.resource_server, "builtin": c.builtin}
                for c in clients.list_clients(session)]
    _emit(as_json, {"clients": rows},
          [f"{row['id']}\t{row['client_type']}\t{row['name']}" for row in rows])


@client.command("delete")
@click.argument("client_id")
@data_dir_option
def client_delete(client_id: str, data_dir: str | None) -> None:
    """Delete a client, revoking its tokens and credentials."""
    from isthmus.auth import clients
    from isthmus.core.db import transaction
    from isthmus.deployment import open_deployment

    auth = open_deployment(_settings(data_dir))
    with _api_errors(), transaction(auth.sessions) as session:
        clients.delete_client(session, clients.require_client(session, client_id))
    click.echo(f"Deleted client {client_id}")


@main.group()
def scope() -> None:
    """Scopes of resource-server clients."""


@scope.command("create")
@click.argument("client_id")
@click.argument("suffix")
@click.option("--name", required=True)
@click.option("--description", required=True)
@click.option("--dependent-scope", "dependent_scopes", multiple=True,
              help="A scope string this scope depends on (prefix * for optional).")
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
def scope_create(
    client_id: str, suffix: str, name: str, description: str,
    dependent_scopes: tuple[str, ...], as_json: bool, data_dir: str | None,
) -> None:
    """Create https://auth.globus.org/scopes/CLIENT_ID/SUFFIX."""
    from isthmus.auth import clients, scopes
    from isthmus.core.db import transaction
    from isthmus.deployment import open_deployment

    auth = open_deployment(_settings(data_dir))
    with _api_errors(), transaction(auth.sessions) as session:
        owner = clients.require_client(session, client_id)
        created = scopes.create_scope(session, owner, suffix, name=name,
                                      description=description,
                                      dependent_scopes=list(dependent_scopes))
        document = {"id": str(created.id), "scope_string": created.scope_string,
                    "dependent_scopes": [dep.dependent_scope.scope_string
                                         for dep in created.dependencies]}
    _emit(as_json, document, [f"Created scope {document['scope_string']}"])


# --- upstream identity providers ----------------------------------------------------


@main.group()
def idp() -> None:
    """Upstream identity providers users can sign in with."""


@idp.command("add-oidc")
@click.argument("name")
@click.option("--issuer", required=True, help="The provider's issuer URL (https).")
@click.option("--client-id", required=True, help="This server's client id at the provider.")
@click.option("--client-secret-stdin", is_flag=True, required=True,
              help="Read the client secret from standard input (it is never shown again).")
@click.option("--domain", "domains", multiple=True, required=True,
              help="A domain the provider's usernames belong to (repeatable; the first "
                   "qualifies bare names).")
@click.option("--username-claim", type=click.Choice(["sub", "preferred_username"]),
              default="sub", show_default=True,
              help="The ID-token claim that names a user: <sub>@<domain>, or the "
                   "preferred_username (kept whole when it ends in one of the domains).")
@click.option("--scope", "scopes", default="openid profile email", show_default=True)
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM certificates of a private CA to trust for the provider's HTTPS.")
@click.option("--display-name", default=None,
              help="What the login page's button says after \"Sign in with\" (default NAME).")
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
def idp_add_oidc(
    name: str, issuer: str, client_id: str, client_secret_stdin: bool,
    domains: tuple[str, ...], username_claim: str, scopes: str, ca_file: str | None,
    display_name: str | None, as_json: bool, data_dir: str | None,
) -> None:
    """Register an upstream OpenID Connect provider; its discovery document is checked now.

    Register this server's redirect URI at the provider first:
    <public url>v2/web/oidc/callback (confidential client, client_secret_basic).
    """
    import asyncio
    import dataclasses

    from isthmus.auth import oidc_client, upstream
    from isthmus.core.db import transaction
    from isthmus.deployment import open_deployment

    if not client_secret_stdin:
        raise click.UsageError("Give the client secret on standard input: --client-secret-stdin")
    secret = sys.stdin.readline().rstrip("\r\n")
    ca_certificates = _read_certificates(ca_file) if ca_file else None
    settings = _settings(data_dir)
    with _api_errors():
        wanted = upstream.validated(upstream.ProviderSettings(
            short_name=name, display_name=display_name or name, issuer=issuer,
            client_id=client_id, client_secret=secret, domains=list(domains),
            username_claim=username_claim, scopes=scopes, ca_certificates=ca_certificates,
        ))
        # The issuer must answer as itself now, not at a user's first sign-in; it is
        # stored as its discovery document spells it.
        discovery = asyncio.run(oidc_client.discover(wanted.relying_party(), fresh=True))
        wanted = dataclasses.replace(wanted, issuer=discovery.issuer)
        auth = open_deployment(settings)
        with transaction(auth.sessions) as session:
            document = _provider_document(
                upstream.add_oidc_provider(session, auth.secret_box, wanted)
            )
    redirect_uri = settings.public_url + upstream.CALLBACK_PATH
    _emit(as_json, {**document, "redirect_uri": redirect_uri}, [
        f"Added identity provider {document['name']} ({document['id']})",
        f"  issuer: {document['issuer']}",
        f"  domains: {', '.join(document['domains'])}",
        f"  redirect URI to register at the provider: {redirect_uri}",
    ])


def _read_certificates(path: str) -> str:
    from cryptography import x509

    data = Path(path).read_bytes()
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise click.UsageError(f"{path} holds no PEM certificate") from None
    if not certificates:
        raise click.UsageError(f"{path} holds no PEM certificate")
    return data.decode("ascii", "replace")


def _provider_document(listed: ListedProvider) -> dict[str, Any]:
    """An upstream provider as `idp list` shows it: never its client secret."""
    provider, configuration = listed.provider, listed.upstream
    return {
        "id": str(provider.id),
        "name": provider.short_name,
        "display_name": provider.name,
        "domains": list(provider.domains),
        "status": "active" if configuration is not None else "retired",
        "identities": listed.identities,
        "issuer": configuration.issuer if configuration else None,
        "client_id": configuration.client_id if configuration else None,
        "username_claim": configuration.username_claim if configuration else None,
        "scopes": configuration.scopes if configuration else None,
        "private_ca": bool(configuration and configuration.ca_certificates),
    }


@idp.command("list")
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
def idp_list(as_json: bool, data_dir: str | None) -> None:
    """List upstream identity providers (client secrets are never shown)."""
    from isthmus.auth import upstream
    from isthmus.core.db import reading
    from isthmus.deployment import open_deployment

    auth = open_deployment(_settings(data_dir))
    with reading(auth.sessions) as session:
        rows = [_provider_document(listed) for listed in upstream.list_oidc_providers(session)]
    _emit(as_json, {"identity_providers": rows}, [
        f"{row['name']}\t{row['status']}\t{row['issuer'] or '-'}\t{','.join(row['domains'])}"
        f"\t{row['identities']} identities"
        for row in rows
    ] or ["No upstream identity providers."])


@idp.command("delete")
@click.argument("name")
@data_dir_option
def idp_delete(name: str, data_dir: str | None) -> None:
    """Stop sign-ins through a provider (identities it made are kept)."""
    from isthmus.auth import upstream
    from isthmus.core.db import transaction
    from isthmus.deployment import open_deployment

    auth = open_deployment(_settings(data_dir))
    with _api_errors(), transaction(auth.sessions) as session:
        kept = upstream.delete_oidc_provider(session, name)
    click.echo(f"Deleted identity provider {name}")
    if kept:
        click.echo(f"  its {kept} identities are kept; adding {name} again lets them sign in")


@contextlib.contextmanager
def _api_errors() -> Iterator[None]:
    """Turn a refused request into a one-line error and exit status 1."""
    from isthmus.core.errors import APIError

    try:
        yield
    except APIError as error:
        raise click.ClickException(error.message) from None


@main.command("connect", add_help_option=False, context_settings={
    "ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def connect(arguments: tuple[str, ...]) -> None:
    """The globus-connect-server command (Connect endpoints): isthmus connect --help."""
    from isthmus.gcs_cli.main import run

    run(list(arguments), prog_name="isthmus connect")
