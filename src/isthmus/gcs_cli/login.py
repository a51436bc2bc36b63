"""`login`, `logout`, `whoami` and `session show|consent|update`: who the command acts as."""

from __future__ import annotations

import datetime
from typing import Any

import click

from isthmus.gcs_cli import output
from isthmus.gcs_cli.base import GCSCommand, GCSGroup, explicit_host
from isthmus.gcs_cli.errors import CLIError
from isthmus.gcs_cli.session import (
    Session,
    State,
    check_uuid,
    data_access_scope,
    decoded,
    manage_collections_scope,
    open_session,
    service_credentials,
    token_storage,
)


def _confirm_endpoint(session: Session) -> dict[str, Any]:
    """The endpoint's info document, checked to be the endpoint asked for."""
    info = session.gcs_client().get_gcs_info()
    if info.get("endpoint_id") != session.endpoint_id:
        raise CLIError(f"{session.manager_url()} serves endpoint {info.get('endpoint_id')}, "
                       f"not {session.endpoint_id}")
    return decoded(info)


@click.command(cls=GCSCommand)
@click.argument("endpoint", metavar="[ENDPOINT_ID|localhost]", required=False)
@click.option("--no-local-server", is_flag=True,
              help="Print a URL to open in any browser and paste the code it shows back "
                   "here, instead of opening a browser on this machine.")
@click.option("--force", is_flag=True, help="Log in again even if the stored login suffices.")
def login(endpoint: str | None, no_local_server: bool, force: bool) -> None:
    """Log in to Isthmus Auth for an endpoint and keep the tokens for later commands.

    ENDPOINT_ID is the endpoint to manage; "localhost" or nothing means the one installed on
    this machine. With GCS_CLI_CLIENT_ID and GCS_CLI_CLIENT_SECRET set, no login is needed:
    this checks the client's credentials instead.
    """
    session = open_session(endpoint, explicit_host=explicit_host(),
                           local_server=not no_local_server)
    if session.is_client:
        session.app.login()
    elif force or session.app.login_required():
        session.app.login(force=True)
    userinfo = decoded(session.auth_client().userinfo())
    info = _confirm_endpoint(session)
    if not session.is_client:
        state = State.load()
        state.endpoint_id = session.endpoint_id
        state.save()
    username = userinfo.get("preferred_username") or userinfo.get("sub")
    if output.is_json():
        output.print_json({"endpoint_id": session.endpoint_id,
                           "manager_url": session.manager_url(), "identity": userinfo,
                           "info": info})
        return
    click.echo(f"You have successfully logged into GCS endpoint {session.endpoint_id} at "
               f"{session.manager_url()} as {username}!")


@click.command(cls=GCSCommand)
def logout() -> None:
    """Revoke the stored tokens and forget them."""
    if service_credentials() is not None:
        click.echo("Nothing to log out of: GCS_CLI_CLIENT_ID tokens are never stored.")
        return
    storage = token_storage()
    stored = storage.get_token_data_by_resource_server()
    if not stored:
        State.forget()
        click.echo("You are not logged in.")
        return
    import globus_sdk

    from isthmus.auth.builtins import GCS_CLI_CLIENT_ID
    from isthmus.gcs_cli import local

    local.point_sdk_at_local_services(local.find_local_endpoint())
    login_client = globus_sdk.NativeAppAuthClient(str(GCS_CLI_CLIENT_ID))
    for data in stored.values():
        for token in (data.access_token, data.refresh_token):
            if token:
                login_client.oauth2_revoke_token(token)
        storage.remove_token_data(data.resource_server)
    State.forget()
    click.echo("You have successfully logged out.")


def _userinfo(session: Session) -> dict[str, Any]:
    return decoded(session.auth_client().userinfo())


@click.command(cls=GCSCommand)
@click.option("--linked-identities", is_flag=True,
              help="Also list the identities linked to yours.")
def whoami(linked_identities: bool) -> None:
    """Show the identity the command acts as."""
    userinfo = _userinfo(open_session(explicit_host=explicit_host()))
    if output.is_json():
        output.print_json(userinfo)
        return
    if not linked_identities:
        click.echo(str(userinfo.get("preferred_username") or userinfo.get("sub")))
        return
    output.print_table(userinfo.get("identity_set") or [userinfo], [
        ("Username", lambda item: item.get("username") or item.get("preferred_username")),
        ("Name", "name"), ("ID", "sub"), ("Email", "email")])


@click.group("session", cls=GCSGroup)
def session_group() -> None:
    """Show and refresh the Auth session behind the stored login."""


def _time(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "None"
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="seconds")


@session_group.command("show")
def session_show() -> None:
    """List the identities authenticated in the login's session, and when."""
    userinfo = _userinfo(open_session(explicit_host=explicit_host()))
    members = userinfo.get("identity_set") or [userinfo]
    rows = [{"username": item.get("username") or item.get("preferred_username"),
             "id": item.get("sub"), "auth_time": item.get("last_authentication")}
            for item in members if item.get("last_authentication") is not None]
    if output.is_json():
        output.print_json({"identity_id": userinfo.get("sub"), "authentications": rows})
        return
    output.print_table(rows, [("Username", "username"), ("ID", "id"),
                              ("Auth Time", lambda row: _time(row["auth_time"]))])


def _interactive(session: Session) -> None:
    if session.is_client:
        raise CLIError("A client (GCS_CLI_CLIENT_ID) has no session to change", 2)


@session_group.command("consent")
@click.argument("scopes", nargs=-1)
@click.option("--collection", "collections", multiple=True, metavar="COLLECTION_ID",
              help="Consent to manage guest collections of this mapped collection "
                   "(manage_collections with its data_access; repeatable).")
@click.option("--no-local-server", is_flag=True, help="Paste the code instead of using a "
                                                      "browser on this machine.")
def session_consent(scopes: tuple[str, ...], collections: tuple[str, ...],
                    no_local_server: bool) -> None:
    """Give the consents a command said it needs (SCOPES as it printed them).

    The consents are asked for again at every later login to this endpoint.
    """
    if not scopes and not collections:
        raise click.UsageError("Name SCOPES or at least one --collection")
    probe = open_session(explicit_host=explicit_host())
    _interactive(probe)
    wanted = list(scopes) + [
        f"{manage_collections_scope(probe.endpoint_id)}"
        f"[*{data_access_scope(check_uuid(collection, 'COLLECTION_ID'))}]"
        for collection in collections]
    state = State.load()
    known = state.consents.setdefault(probe.endpoint_id, [])
    known.extend(scope for scope in wanted if scope not in known)
    session = open_session(probe.endpoint_id, explicit_host=explicit_host(),
                           local_server=not no_local_server, extra_scopes=wanted)
    session.app.login(force=True)
    state.save()  # only once Auth has recorded the consents
    click.echo(f"Consents given for endpoint {probe.endpoint_id}: {' '.join(wanted)}")


@session_group.command("update")
@click.argument("identities", nargs=-1, metavar="[IDENTITY]...")
@click.option("--all", "everyone", is_flag=True, help="Authenticate every linked identity.")
@click.option("--no-local-server", is_flag=True, help="Paste the code instead of using a "
                                                      "browser on this machine.")
def session_update(identities: tuple[str, ...], everyone: bool, no_local_server: bool) -> None:
    """Authenticate again, so IDENTITY (a username or id; default yours) is in session.

    High-assurance storage gateways and authentication timeouts need a recent login.
    """
    from globus_sdk.gare import GlobusAuthorizationParameters

    session = open_session(explicit_host=explicit_host(), local_server=not no_local_server)
    _interactive(session)
    userinfo = _userinfo(session)
    members = userinfo.get("identity_set") or [userinfo]
    by_name = {str(item.get("username") or item.get("preferred_username")): str(item["sub"])
               for item in members}
    if everyone:
        wanted = list(by_name.values())
    elif identities:
        known = set(by_name.values())
        wanted = []
        for name in identities:
            identity = by_name.get(name) or (name if name in known else None)
            if identity is None:
                raise CLIError(f"{name} is not one of your linked identities", 2)
            wanted.append(identity)
    else:
        wanted = [str(userinfo["sub"])]
    session.app.login(auth_params=GlobusAuthorizationParameters(
        session_required_identities=wanted, prompt="login"))
    click.echo(f"Session updated for {len(wanted)} identit{'y' if len(wanted) == 1 else 'ies'}")
