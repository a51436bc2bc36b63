"""Commands of what this server does not offer: the endpoint's own OIDC server (each with
its help text), and the GCS connectors it has none of. Each says plainly
that this server does not offer it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from isthmus.gcs_cli.base import GCSCommand, GCSGroup
from isthmus.gcs_cli.errors import EXIT_UNAVAILABLE, CLIError, NotAvailableError


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

# The spec's connectors this server has none of: named, they are refused with what it has.
MISSING_CONNECTORS = ("posix-staging", "azure-blob", "blackpearl", "box", "ceph",
                      "google-cloud-storage", "google-drive", "hpss", "irods", "onedrive")


def missing_connector(name: str, offered: tuple[str, ...]) -> click.Command:
    """A hidden command for a connector this server lacks: exits 3 naming those it has."""

    def callback(**_ignored: Any) -> None:
        raise CLIError(f"This Isthmus server has no {name} connector; it has "
                       f"{', '.join(offered)}", EXIT_UNAVAILABLE)

    return GCSCommand(
        name, callback=callback, hidden=True,
        params=[click.Argument(["arguments"], nargs=-1, required=False)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
