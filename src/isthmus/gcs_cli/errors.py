"""How the command fails: one line on stderr and an exit status that says what kind of failure.

| status | meaning |
|---|---|
| 0 | done |
| 1 | the service refused the request, or could not be reached |
| 2 | the command line is wrong (unknown option, missing argument, bad value) |
| 3 | the command exists but this server does not offer it yet |
| 4 | a login or a consent is needed first (the message says which command gives it) |
"""

from __future__ import annotations

from typing import IO, Any

import click

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_LOGIN = 4


def one_line(text: str) -> str:
    """Service messages may span lines; the command's error never does."""
    return " ".join(str(text).split())


class CLIError(click.ClickException):
    """A failure reported as ``Error: <message>`` with its exit status."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(one_line(message))
        # Click declares exit_code on the class; each error carries its own.
        vars(self)["exit_code"] = exit_code

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file, err=file is None)


class LoginRequiredError(CLIError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_LOGIN)

