"""Commands of what this server does not offer: the GCS connectors it has none of. Each
says plainly that this server does not offer it."""

from __future__ import annotations

from typing import Any

import click

from isthmus.gcs_cli.base import GCSCommand
from isthmus.gcs_cli.errors import EXIT_UNAVAILABLE, CLIError

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
