"""Commands of connectors and features that arrive with issue [5 of 5]: S3 and ActiveScale
gateways, their user credentials, the endpoint's own OIDC server, and audit logs.
Each exists with its help text, and says plainly that this server does not offer it yet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from isthmus.gcs_cli.base import GCSCommand, GCSGroup
from isthmus.gcs_cli.errors import NotAvailableError


def not_available(name: str, help_text: str, what: str) -> click.Command:
    """A command that takes any arguments and exits 3 with a one-line message."""

    def callback(**_ignored: Any) -> None:
        raise NotAvailableError(what)

    return GCSCommand(
        name, callback=callback, help=f"{help_text}\n\nNot available yet on this server.",
        params=[click.Argument(["arguments"], nargs=-1, required=False)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


def group_of(name: str, help_text: str, commands: dict[str, str],
             what: Callable[[str], str]) -> GCSGroup:
    group = GCSGroup(name, help=help_text)
    for command, text in commands.items():
        group.add_command(not_available(command, text, what(command)))
    return group


oidc = group_of("oidc", "The endpoint's own OpenID Connect server (local accounts via PAM).", {
    "create": "Install an OIDC server on this endpoint and register it with Auth.",
    "delete": "Remove the endpoint's OIDC server.",
    "register": "Register an existing OIDC server with Auth.",
    "show": "Show the endpoint's OIDC server.",
    "update": "Change the endpoint's OIDC server.",
}, lambda command: f"'oidc {command}'")

audit = group_of("audit", "High-assurance audit logs of the endpoint.", {
    "load": "Load the node's audit log files into a local database.",
    "query": "Query the loaded audit records.",
    "dump": "Print the loaded audit records.",
}, lambda command: f"'audit {command}'")

CREDENTIAL_COMMANDS = {
    "activescale-create": "Register ActiveScale keys for a storage gateway.",
    "s3-create": "Register an S3 key pair for a storage gateway.",
    "s3-keys-add": "Add an S3 key pair for a set of path prefixes.",
    "s3-keys-delete": "Remove an S3 key pair.",
    "s3-keys-update": "Change an S3 key pair or its path prefixes.",
}

CONNECTORS_TO_COME = {
    "s3": "Amazon S3 and S3-compatible object storage",
    "activescale": "Quantum ActiveScale object storage",
}
