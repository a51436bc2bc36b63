"""`oidc ...`: the endpoint's own OpenID Connect server, which signs in the node's local
accounts through PAM, through the Manager's /api/oidc.

`create` sets it up and registers it with Auth as the identity provider of the endpoint's
domain (the DNS name it is served from), so Auth's login page offers it and its users are
``<account>@<domain>``; a POSIX storage gateway with that domain then maps them to the
accounts of the same name. `register` registers it again (a fresh client secret),
`show`, `update` and `delete` manage it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from isthmus.gcs_cli import local, output
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.common import manager
from isthmus.gcs_cli.errors import EXIT_USAGE, CLIError
from isthmus.gcs_cli.session import Session, envelope

FIELDS: list[output.Field] = [
    ("Issuer", "issuer"), ("Domain", "domain"), ("Display Name", "display_name"),
    ("PAM Service", "pam_service"), ("Client ID", "client_id"),
    ("Redirect URIs", "redirect_uris"), ("Registered", "registered"),
    ("Identity Provider ID", "identity_provider_id"),
]
_CA_HELP = ("PEM certificates Auth must trust for this server's HTTPS (default: the "
            "deployment CA of this node's info.json, if any).")


@click.group("oidc", cls=GCSGroup)
def oidc() -> None:
    """The endpoint's own OpenID Connect server (local accounts via PAM)."""


def _ca_certificates(ca_file: Path | None) -> str | None:
    if ca_file is None:
        found = local.find_local_endpoint()
        if found is None or found.ca_file is None:
            return None
        ca_file = Path(found.ca_file)
    try:
        return ca_file.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise CLIError(f"--ca-file: cannot read {ca_file}: {error}", EXIT_USAGE) from None


def _register(session: Session, ca_file: Path | None) -> dict[str, Any]:
    body: dict[str, Any] = {"DATA_TYPE": "oidc_registration#1.0.0"}
    certificates = _ca_certificates(ca_file)
    if certificates is not None:
        body["ca_certificates"] = certificates
    return envelope(session.gcs_client().post("oidc/register", data=body))


@oidc.command("create")
@click.option("--display-name", help="What Auth's login page calls it (default: "
                                     "\"<endpoint name> accounts\").")
@click.option("--domain", help="The domain of its usernames: the DNS name it is served from "
                               "(the default; Auth accepts no other).")
@click.option("--pam-service", help="The PAM service of /etc/pam.d passwords are checked "
                                    "with (default: login).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=_CA_HELP)
@click.option("--no-register", is_flag=True,
              help="Only set it up; register it later with 'oidc register'.")
def create(display_name: str | None, domain: str | None, pam_service: str | None,
           ca_file: Path | None, no_register: bool) -> None:
    """Set up the endpoint's OIDC server and register it with Auth."""
    session = manager()
    body: dict[str, Any] = {"DATA_TYPE": "oidc_server#1.0.0"}
    for key, value in (("display_name", display_name), ("domain", domain),
                       ("pam_service", pam_service)):
        if value is not None:
            body[key] = value
    document = dict(session.gcs_client().post("oidc", data=body)["data"][0])
    if not no_register:
        document = dict(_register(session, ca_file)["data"][0])
    if output.is_json():
        output.print_json(document)
        return
    click.echo(f"Created the OIDC server {document['issuer']}")
    if document["registered"]:
        click.echo(f"Registered with Auth: its users sign in as <account>@{document['domain']}")


@oidc.command("register")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=_CA_HELP)
def register(ca_file: Path | None) -> None:
    """Register the OIDC server with Auth (again): a new client secret replaces the old."""
    response = _register(manager(), ca_file)
    output.print_message(response, "Registered the OIDC server with Auth")


@oidc.command("show")
def show() -> None:
    """Show the endpoint's OIDC server."""
    response = manager().gcs_client().get("oidc")
    output.print_record(dict(response["data"][0]), FIELDS)


@oidc.command("update")
@click.option("--display-name", help="What Auth's login page calls it.")
@click.option("--pam-service", help="The PAM service passwords are checked with.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=_CA_HELP)
def update(display_name: str | None, pam_service: str | None, ca_file: Path | None) -> None:
    """Change the OIDC server; a registered one's new name is sent to Auth too."""
    if display_name is None and pam_service is None:
        raise CLIError("Nothing to change: give --display-name or --pam-service", EXIT_USAGE)
    session = manager()
    body: dict[str, Any] = {"DATA_TYPE": "oidc_server#1.0.0"}
    if display_name is not None:
        body["display_name"] = display_name
    if pam_service is not None:
        body["pam_service"] = pam_service
    response = envelope(session.gcs_client().patch("oidc", data=body))
    if display_name is not None and response["data"][0].get("registered"):
        response = _register(session, ca_file)
    output.print_message(response, "Updated the OIDC server")


@oidc.command("delete")
def delete() -> None:
    """Remove the endpoint's OIDC server; Auth stops offering it (identities stay)."""
    response = manager().gcs_client().delete("oidc")
    output.print_message(envelope(response), "Deleted the OIDC server")
