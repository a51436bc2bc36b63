"""The command classes every `globus-connect-server` group and command is made of.

Each command takes ``-h/--help``, ``--version``, ``-F/--format`` and ``--use-explicit-host``
(the GCS CLI's common options), and turns whatever a service or the network answers into a
one-line `CLIError` with the exit status `errors` defines: never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from isthmus.gcs_cli import output
from isthmus.gcs_cli.errors import EXIT_ERROR, EXIT_LOGIN, CLIError, LoginRequiredError

F = TypeVar("F", bound=Callable[..., Any])
EXPLICIT_HOST_KEY = "gcs_cli_explicit_host"
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(context: click.Context, _parameter: click.Parameter, value: Any) -> Any:
        if value is not None:
            context.meta[key] = value
        return value

    return callback


def _version(context: click.Context, _parameter: click.Parameter, value: bool) -> None:
    if not value or context.resilient_parsing:
        return
    from importlib.metadata import version

    click.echo(f"globus-connect-server, package isthmus {version('isthmus')}")
    context.exit()


def common_options() -> list[click.Parameter]:
    return [
        click.Option(["-F", "--format"], type=click.Choice(output.FORMATS), default=None,
                     expose_value=False, is_eager=True, callback=_remember(output.FORMAT_KEY),
                     help="Output format: text for people (default) or json for scripts."),
        click.Option(["--use-explicit-host"], metavar="IP_ADDRESS", default=None,
                     expose_value=False, callback=_remember(EXPLICIT_HOST_KEY),
                     help="Talk to the GCS Manager at this node address (or URL) instead of "
                          "the endpoint's advertised one."),
        click.Option(["--version"], is_flag=True, expose_value=False, is_eager=True,
                     callback=_version, help="Show the version and exit."),
    ]


def explicit_host() -> str | None:
    context = click.get_current_context(silent=True)
    value = context.meta.get(EXPLICIT_HOST_KEY) if context is not None else None
    return str(value) if value else None


class GCSCommand(click.Command):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(common_options())

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:  # every failure becomes one line, never a traceback
            raise translate(error) from None


class GCSGroup(click.Group):
    command_class = GCSCommand
    group_class = type  # subgroups are GCSGroups too

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        self.params.extend(common_options())


def translate(error: Exception) -> CLIError:
    """What a failure means to the person at the terminal."""
    import globus_sdk
    from globus_sdk.gare import to_gare
    from globus_sdk.login_flows import LocalServerLoginError
    from globus_sdk.token_storage import TokenValidationError
    from globus_sdk.token_storage.validating_token_storage import IdentityMismatchError

    if isinstance(error, CLIError):
        return error
    if isinstance(error, globus_sdk.GlobusAPIError):
        return _api_error(error, to_gare(error))
    if isinstance(error, globus_sdk.NetworkError):
        return CLIError(f"Could not reach {_url_of(error)}: {_reason(error)}")
    if isinstance(error, IdentityMismatchError):
        return LoginRequiredError("You logged in as someone else than before: run "
                             "'globus-connect-server logout' first")
    if isinstance(error, TokenValidationError):
        return LoginRequiredError(f"Not logged in, or the login has expired ({error}): run "
                             "'globus-connect-server login ENDPOINT_ID'")
    if isinstance(error, LocalServerLoginError):
        return CLIError(f"Cannot log in through a local web browser here ({error}): use "
                        "'globus-connect-server login --no-local-server'", EXIT_LOGIN)
    if isinstance(error, globus_sdk.GlobusSDKUsageError):
        return CLIError(str(error), 2)
    if isinstance(error, EOFError | KeyboardInterrupt):
        return CLIError("Aborted")
    if isinstance(error, OSError):
        return CLIError(f"{error.strerror or error}"
                        + (f": {error.filename}" if error.filename else ""))
    return CLIError(f"Unexpected {type(error).__name__}: {error}", EXIT_ERROR)


def _url_of(error: Exception) -> str:
    """The URL a failed request went to (a network error's, or an API error's response's)."""
    carrier = getattr(error, "exc", None) or getattr(error, "_underlying_response", None)
    request = getattr(carrier, "request", None)
    url = getattr(request, "url", None)
    return str(url).split("?")[0] if url else "the service"


def _reason(error: Exception) -> str:
    inner = getattr(error, "exc", None)
    return str(inner or error).splitlines()[0] if str(inner or error) else type(error).__name__


def _api_error(error: Any, gare: Any) -> CLIError:
    import globus_sdk

    status = error.http_status
    message = error.message if isinstance(error.message, str) and error.message else \
        error.text if isinstance(error.text, str) else "request failed"
    where = f"{error.http_status} {error.code}" if error.code and error.code != "Error" \
        else str(status)
    if gare is not None:
        scopes = gare.authorization_parameters.required_scopes or []
        if scopes:
            quoted = " ".join(f"'{scope}'" for scope in scopes)
            return LoginRequiredError(f"{message} ({where}). Consent is needed: run "
                                 f"'globus-connect-server session consent {quoted}'")
        if gare.authorization_parameters.session_required_identities or \
                gare.authorization_parameters.session_required_policies or \
                gare.authorization_parameters.session_required_mfa:
            return LoginRequiredError(f"{message} ({where}). A fresh authentication is needed: "
                                 "run 'globus-connect-server session update'")
    if isinstance(error, globus_sdk.AuthAPIError) and status in (400, 401) and \
            _url_of(error).endswith("/v2/oauth2/token"):
        from isthmus.gcs_cli.session import service_credentials

        if service_credentials() is not None:
            return LoginRequiredError(f"Auth refused the GCS_CLI_CLIENT_ID and "
                                      f"GCS_CLI_CLIENT_SECRET credentials: {message} ({where})")
    if status == 401:
        return LoginRequiredError(f"{message} ({where}): run 'globus-connect-server login "
                             "ENDPOINT_ID' again")
    return CLIError(f"{message} ({where})")


def gcs_group(name: str | None = None, **kwargs: Any) -> Callable[[F], GCSGroup]:
    """A command group (``@gcs_group()``), with the common options."""

    def decorate(function: F) -> GCSGroup:
        group: GCSGroup = click.group(name, cls=GCSGroup, **kwargs)(function)
        return group

    return decorate
