"""Pieces the Manager-API commands share: the session, identities, and document options."""

from __future__ import annotations

import inspect
import json
import shlex
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from isthmus.gcs_cli.base import explicit_host
from isthmus.gcs_cli.errors import EXIT_USAGE, CLIError
from isthmus.gcs_cli.session import Session, open_session

CLIENTS_DOMAIN = "clients.auth.globus.org"


def manager() -> Session:
    """A session on the endpoint the command works on (see `session.resolve_endpoint`)."""
    return open_session(explicit_host=explicit_host())


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def identity_id(session: Session, value: str) -> str:
    """An identity's id, from its id or its username (looked up in Auth)."""
    if is_uuid(value):
        return str(uuid.UUID(value))
    found = session.auth_client().get_identities(usernames=[value])["identities"]
    if not found:
        raise CLIError(f"No identity named {value!r} is known to Auth", EXIT_USAGE)
    return str(found[0]["id"])


def principal_urn(session: Session, value: str, principal_type: str) -> str:
    if principal_type == "group":
        if not is_uuid(value):
            raise CLIError(f"A group principal is the group's UUID, not {value!r}", EXIT_USAGE)
        return f"urn:globus:groups:id:{uuid.UUID(value)}"
    return f"urn:globus:auth:identity:{identity_id(session, value)}"


def read_document(value: str, option: str) -> Any:
    """``file:PATH`` (a JSON file) or JSON text."""
    if value.startswith("file:"):
        path = Path(value[len("file:"):]).expanduser()
        try:
            text = path.read_text()
        except OSError as error:
            raise CLIError(f"{option}: cannot read {path}: {error.strerror}", EXIT_USAGE) \
                from None
    else:
        text = value
    try:
        return json.loads(text)
    except ValueError as error:
        raise CLIError(f"{option}: not JSON ({error})", EXIT_USAGE) from None


def identity_mappings(values: tuple[str, ...]) -> list[dict[str, Any]]:
    """``--identity-mapping``: ``file:PATH`` or JSON (one mapping document or a list of them),
    or ``external:PROGRAM [ARGS]`` for an external mapping program."""
    mappings: list[dict[str, Any]] = []
    for value in values:
        if value.startswith("external:"):
            command = shlex.split(value[len("external:"):])
            if not command:
                raise CLIError("--identity-mapping external: needs a program", EXIT_USAGE)
            mappings.append({"DATA_TYPE": "external_identity_mapping#1.0.0",
                             "command": command})
            continue
        document = read_document(value, "--identity-mapping")
        listed = document if isinstance(document, list) else [document]
        if not all(isinstance(item, dict) for item in listed):
            raise CLIError("--identity-mapping: expected a mapping document (a JSON object) "
                           "or a list of them", EXIT_USAGE)
        mappings.extend(listed)
    return mappings


def path_restrictions(value: str, option: str) -> dict[str, Any]:
    document = read_document(value, option)
    if not isinstance(document, dict):
        raise CLIError(f"{option}: expected a path_restrictions document (a JSON object)",
                       EXIT_USAGE)
    document.setdefault("DATA_TYPE", "path_restrictions#1.0.0")
    return document


def set_if(document: dict[str, Any], key: str, value: Any) -> None:
    """Options left out change nothing: only given ones go into a document."""
    if value is not None and value != ():
        document[key] = list(value) if isinstance(value, tuple) else value


def keywords(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [word.strip() for word in value.split(",") if word.strip()]


def require_changes(document: dict[str, Any]) -> None:
    if not [key for key in document if key != "DATA_TYPE"]:
        raise click.UsageError("Nothing to change: give at least one option")


D = TypeVar("D")


def sdk_document(document_class: Callable[..., D], fields: dict[str, Any]) -> D:
    """One of the SDK's document classes (it deduces the DATA_TYPE version from the fields
    it knows); fields it has no parameter for travel as ``additional_fields``."""
    known = inspect.signature(document_class).parameters
    return document_class(**{key: value for key, value in fields.items() if key in known},
                          additional_fields={key: value for key, value in fields.items()
                                             if key not in known})
