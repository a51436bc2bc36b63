"""What commands print: JSON documents for scripts (``-F json``), or text for people.

Text follows the GCS CLI's habits: a record is ``Key: value`` lines aligned on the colon,
a list is a ``|``-separated table (rendered by rich, without colour or markup), a change
prints the Manager's ``message``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import click
from rich.box import Box
from rich.console import Console
from rich.table import Table
from rich.text import Text

FORMATS = ("text", "json")
FORMAT_KEY = "gcs_cli_format"

# Columns split by " | ", the header underlined with dashes, no outer frame.
_TABLE_BOX = Box("    \n"
                 "  | \n"
                 " -| \n"
                 "  | \n"
                 "  | \n"
                 "  | \n"
                 "  | \n"
                 "    \n", ascii=True)

Getter = Callable[[Mapping[str, Any]], Any]
Field = tuple[str, str | Getter]


def current_format() -> str:
    context = click.get_current_context(silent=True)
    return str(context.meta.get(FORMAT_KEY, "text")) if context is not None else "text"


def is_json() -> bool:
    return current_format() == "json"


def render(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, list | tuple):
        return ", ".join(render(item) for item in value) if value else "[]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _value(document: Mapping[str, Any], key: str | Getter) -> Any:
    return key(document) if callable(key) else document.get(key)


def print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True))


def print_record(document: Mapping[str, Any], fields: Sequence[Field]) -> None:
    """One document: as JSON, or as aligned ``Label: value`` lines."""
    if is_json():
        print_json(document)
        return
    width = max(len(label) for label, _ in fields) + 1
    for label, key in fields:
        click.echo(f"{label + ':':<{width}} {render(_value(document, key))}")


def print_table(rows: Iterable[Mapping[str, Any]], fields: Sequence[Field]) -> None:
    """Many documents: a JSON list, or a table."""
    listed = list(rows)
    if is_json():
        print_json(listed)
        return
    table = Table(box=_TABLE_BOX, show_edge=False, pad_edge=False, header_style=None)
    for label, _ in fields:
        table.add_column(Text(label), no_wrap=True, overflow="ignore")
    for row in listed:
        table.add_row(*(Text(render(_value(row, key))) for _, key in fields))
    console = Console(width=100_000, color_system=None, highlight=False, soft_wrap=False)
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        click.echo(line.rstrip())


def print_message(response: Mapping[str, Any], fallback: str) -> None:
    """A change: the Manager's ``message`` (or the whole response as JSON)."""
    if is_json():
        print_json(dict(response))
        return
    message = response.get("message")
    click.echo(f"Message: {message if isinstance(message, str) and message else fallback}")


def print_created(label: str, document: Mapping[str, Any]) -> None:
    """A creation: ``<Label> ID: <id>``, or the created document as JSON."""
    if is_json():
        print_json(dict(document))
        return
    click.echo(f"{label} ID: {document.get('id')}")
