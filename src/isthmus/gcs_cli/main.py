"""The `globus-connect-server` command tree (seed 000's table of contents), and its entry point.

`run` is the console script: it gives a bad command line, like every other failure, as one
line (``Error: ...``) with the exit status `errors` defines. `isthmus connect ...` calls it too.
"""

from __future__ import annotations

import sys

import click

from isthmus.gcs_cli import (
    audit,
    auth_policies,
    endpoints,
    gateways,
    gcs_collections,
    nodes,
    oidc,
    sharing_policies,
    user_credentials,
)
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.errors import EXIT_ERROR, EXIT_USAGE, CLIError, one_line
from isthmus.gcs_cli.login import login, logout, session_group, whoami

PROGRAM = "globus-connect-server"


@click.group(PROGRAM, cls=GCSGroup)
def cli() -> None:
    """Administer a Globus Connect Server v5.4 endpoint served by Isthmus.

    Apart from 'endpoint setup|cleanup' and 'node setup|cleanup', which run on a machine of
    the deployment, every command is a client of Isthmus Auth, Transfer and the endpoint's
    GCS Manager API. Log in first ('login ENDPOINT_ID'), or set GCS_CLI_CLIENT_ID,
    GCS_CLI_CLIENT_SECRET and GCS_CLI_ENDPOINT_ID to act as a client holding an endpoint role.
    """


for command in (login, logout, whoami, session_group, endpoints.endpoint, nodes.node,
                gateways.storage_gateway, gcs_collections.collection, auth_policies.auth_policy,
                sharing_policies.sharing_policy, user_credentials.user_credentials,
                oidc.oidc, audit.audit, nodes.self_diagnostic):
    cli.add_command(command)


def run(argv: list[str] | None = None, prog_name: str = PROGRAM) -> None:
    """Run the command line and exit with its status; failures are one line on stderr."""
    arguments = sys.argv[1:] if argv is None else argv
    try:
        status = cli.main(args=arguments, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help() if error.ctx else error.format_message(), err=True)
        sys.exit(EXIT_USAGE)
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx else prog_name
        click.echo(f"Error: {one_line(error.format_message())} (see '{where} --help')",
                   err=True)
        sys.exit(EXIT_USAGE)
    except CLIError as error:
        error.show()
        sys.exit(error.exit_code)
    except click.ClickException as error:
        click.echo(f"Error: {one_line(error.format_message())}", err=True)
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("Error: Aborted", err=True)
        sys.exit(EXIT_ERROR)
    except Exception as error:
        from isthmus.gcs_cli.base import translate

        failure = translate(error)
        failure.show()
        sys.exit(failure.exit_code)
    sys.exit(status if isinstance(status, int) else 0)
