"""`audit load|query|dump`: the endpoint's audit records of data operations (HTTPS and
Transfer), which Isthmus keeps in its database and serves through the Manager's /api/audit
to the endpoint's owner and administrators.

There are no log files to parse on a node: every node writes its records to the database
as it serves, so `load` makes sure this node's records are written and reports what the
endpoint holds, and `query` and `dump` read them from any machine."""

from __future__ import annotations

import csv
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import click
import globus_sdk

from isthmus.gcs_cli import output
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.common import manager

FIELDS = ("id", "time", "endpoint_id", "collection_id", "identity_id", "username",
          "local_account", "channel", "operation", "path", "destination", "bytes", "status",
          "result")
TABLE: list[output.Field] = [
    ("Time", "time"), ("User", "username"), ("Operation", "operation"), ("Path", "path"),
    ("Bytes", "bytes"), ("Result", "result"), ("Collection", "collection_id"),
]
PAGE_SIZE = 1000


@click.group("audit", cls=GCSGroup)
def audit() -> None:
    """The endpoint's audit records: every data operation over HTTPS or by Transfer (who,
    which path, how many bytes, and how it ended). For its owner and administrators."""


def _when(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("give an ISO 8601 date and time, e.g. "
                                 "2026-01-31T12:00:00Z", param=param) from None
    return moment.isoformat() if moment.tzinfo else moment.astimezone().isoformat()


def _uuid(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise click.BadParameter("not a UUID", param=param) from None


def _range(function: Any) -> Any:
    for option in reversed([
        click.option("--start", callback=_when, metavar="TIME",
                     help="Records at or after this time (ISO 8601; local time if no zone)."),
        click.option("--end", callback=_when, metavar="TIME",
                     help="Records before this time."),
    ]):
        function = option(function)
    return function


def _records(client: globus_sdk.GCSClient, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    marker = None
    while True:
        query = {**params, "page_size": str(PAGE_SIZE), **({"marker": marker} if marker else {})}
        page = client.get("audit", query_params=query)
        yield from (dict(item) for item in page["data"])
        marker = page.get("marker")
        if not page.get("has_next_page") or not marker:
            return


def _given(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


@audit.command("load")
def load() -> None:
    """Make this endpoint's records available to query, and say how many there are.

    Isthmus writes the records to its database as it serves (there are no log files to
    parse), so this writes whatever this node still holds in memory and reports the count,
    their time span and how long they are kept (ISTHMUS_AUDIT_RETENTION_DAYS on the server).
    """
    response = manager().gcs_client().get("audit/summary")
    summary = dict(response["data"][0])
    if output.is_json():
        output.print_json(summary)
        return
    click.echo(f"Audit records available: {summary['records']}")
    if summary["records"]:
        click.echo(f"From {summary['first']} to {summary['last']}")
    kept = summary.get("retention_days")
    click.echo(f"Kept for {kept} days" if kept else "Kept for ever")


@audit.command("query")
@_range
@click.option("--username", help="Only this user's records (their Globus username).")
@click.option("--identity-id", callback=_uuid, help="Only this identity's records.")
@click.option("--collection-id", callback=_uuid, help="Only this collection's records.")
@click.option("--path", help="Only records of this collection path or below it.")
@click.option("--operation", type=click.Choice(
    ["GET", "HEAD", "PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPFIND", "PROPPATCH",
     "READ", "WRITE", "MKDIR", "SYMLINK"], case_sensitive=False),
    help="Only this operation (HTTPS methods; READ, WRITE, MKDIR, SYMLINK, DELETE, MOVE by "
         "Transfer).")
@click.option("--result", help="'ok', 'error' (any failure), or one error code.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many records.")
def query(start: str | None, end: str | None, username: str | None, identity_id: str | None,
          collection_id: str | None, path: str | None, operation: str | None,
          result: str | None, limit: int | None) -> None:
    """Show the records that match every filter given, oldest first."""
    params = _given(start=start, end=end, username=username, identity_id=identity_id,
                    collection_id=collection_id, path=path,
                    operation=operation.upper() if operation else None, result=result)
    records: list[dict[str, Any]] = []
    for record in _records(manager().gcs_client(), params):
        if limit is not None and len(records) >= limit:
            break
        records.append(record)
    if output.is_json():
        output.print_json(records)
    elif not records:
        click.echo("No audit records match.")
    else:
        output.print_table(records, TABLE)


@audit.command("dump")
@_range
@click.option("--csv", "as_csv", is_flag=True,
              help="CSV with a header line instead of one JSON document per line.")
def dump(start: str | None, end: str | None, as_csv: bool) -> None:
    """Print every record (or those in a time range), oldest first, as JSON lines or CSV."""
    records = _records(manager().gcs_client(), _given(start=start, end=end))
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow(record)
        return
    for record in records:
        click.echo(json.dumps({name: record.get(name) for name in FIELDS}))
