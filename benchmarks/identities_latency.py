#!/usr/bin/env python3
"""Identity lookups: IdentityMap batching and get_identities latency, against a plain SQL peer.

For each database (SQLite, and PostgreSQL when 127.0.0.1:5432 answers: a
throwaway database ``isthmus_bench_<random>``, created and dropped here) it
starts ``isthmus serve --http`` with an access log, provisions ``--identities``
(default 1,000) identities through ``get_identities(provision=True)``, and
measures with the official SDK:

(a) ``globus_sdk.IdentityMap`` resolving all of them by id, then all of them by
    username: the requests it made (counted server-side, from the access log;
    IdentityMap asks for 100 per request) and the wall time;
(b) ``AuthClient.get_identities(ids=...)`` with ``--ids-per-call`` (100) ids
    per call over ``--calls`` (200) calls: p50 and p99 as the SDK sees them,
    and p50 of the server's own time per request from the access log;

and, as the peer, a direct SQL ``SELECT ... WHERE id IN (...)`` of the same
ids through the same database (sqlite3 / psycopg, one connection kept open,
rows fetched), printing the ratio of the two. The peer is the floor any
lookup service pays for: what Isthmus adds on top is HTTP, authentication of
the caller's token, and the JSON documents.

    .venv/bin/python benchmarks/identities_latency.py
    .venv/bin/python benchmarks/identities_latency.py --databases sqlite --calls 50
    .venv/bin/python benchmarks/identities_latency.py --json-out identities.json
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import globus_sdk

from oauth_throughput import (
    HOST,
    Resources,
    postgres_available,
    prepare_isthmus,
    run_benchmark,
    start_isthmus,
)

IDENTITIES_PATH = "/v2/api/identities"
# What IdentityMap asks for per request (globus_sdk.IdentityMap's default id_batch_size).
IDENTITY_MAP_BATCH = 100
SELECT_COLUMNS = ("id, username, name, email, organization, identity_provider_id, status,"
                  " identity_type")


@dataclass
class Result:
    database: str
    identities: int
    map_by_id_requests: int
    map_by_id_s: float
    map_by_username_requests: int
    map_by_username_s: float
    expected_map_requests: int
    calls: int
    ids_per_call: int
    lookup_p50_ms: float
    lookup_p99_ms: float
    lookup_server_p50_ms: float
    sql_p50_ms: float
    sql_p99_ms: float

    @property
    def ratio_p50(self) -> float:
        return self.lookup_p50_ms / self.sql_p50_ms

    @property
    def ratio_p99(self) -> float:
        return self.lookup_p99_ms / self.sql_p99_ms


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# --- the server's side: the access log ------------------------------------------------


class AccessLog:
    """Reads ``isthmus serve --access-log`` lines (time client method path status ms)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[list[str]]:
        if not self.path.exists():
            return []
        return [line.split() for line in self.path.read_text().splitlines()]

    def mark(self) -> int:
        return len(self.lines())

    def identity_requests(self, since: int) -> list[list[str]]:
        return [fields for fields in self.lines()[since:] if fields[3] == IDENTITIES_PATH]


# --- the peer: the same lookup as plain SQL on the same database --------------------------


@contextlib.contextmanager
def sql_lookup(database: str, data_dir: Path,
               env: dict[str, str]) -> Iterator[Callable[[list[str]], int]]:
    """A function selecting identities rows by id, on a connection kept open."""
    if database == "sqlite":
        connection = sqlite3.connect(data_dir / "isthmus.db")
        try:
            def sqlite_select(ids: list[str]) -> int:
                # SQLAlchemy keeps UUIDs in SQLite as 32 hex digits.
                keys = [uuid.UUID(value).hex for value in ids]
                marks = ",".join("?" * len(keys))
                rows = connection.execute(
                    f"SELECT {SELECT_COLUMNS} FROM identities WHERE id IN ({marks})", keys
                ).fetchall()
                return len(rows)

            yield sqlite_select
        finally:
            connection.close()
        return
    import psycopg

    url = env["ISTHMUS_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as pg:
        def postgres_select(ids: list[str]) -> int:
            rows = pg.execute(
                f"SELECT {SELECT_COLUMNS} FROM identities WHERE id = ANY(%s)",
                ([uuid.UUID(value) for value in ids],),
            ).fetchall()
            return len(rows)

        yield postgres_select


# --- one database --------------------------------------------------------------------------


def provision(auth: globus_sdk.AuthClient, count: int) -> dict[str, str]:
    """``count`` new identities of the local provider, username -> id."""
    prefix = uuid.uuid4().hex[:8]
    names = [f"bench{prefix}{number:05d}@isthmus.local" for number in range(count)]
    found: dict[str, str] = {}
    for start in range(0, count, 100):
        for identity in auth.get_identities(usernames=names[start:start + 100],
                                            provision=True)["identities"]:
            found[identity["username"]] = identity["id"]
    if len(found) != count:
        raise RuntimeError(f"provisioned {len(found)} identities, not {count}")
    return found


def timed_identity_map(auth: globus_sdk.AuthClient, keys: list[str], log: AccessLog,
                       expected: dict[str, str]) -> tuple[int, float]:
    """Resolve every key through one IdentityMap; (requests the server saw, seconds)."""
    since = log.mark()
    started = time.perf_counter()
    identity_map = globus_sdk.IdentityMap(auth, keys)
    resolved = {key: identity_map[key] for key in keys}
    elapsed = time.perf_counter() - started
    for key, document in resolved.items():
        if document is None or expected[key] not in (document["id"], document["username"]):
            raise RuntimeError(f"IdentityMap resolved {key} to {document}")
    return len(log.identity_requests(since)), elapsed


def measure(database: str, resources: Resources, args: argparse.Namespace) -> Result:
    print(f"{database}: starting isthmus serve", flush=True)
    data_dir, env, client = prepare_isthmus(resources, database)
    log = AccessLog(data_dir.parent / "access.log")
    env["ISTHMUS_ACCESS_LOG"] = str(log.path)
    _process, port, _ready, _serve_log = start_isthmus(resources, data_dir, env, workers=1)
    os.environ["GLOBUS_SDK_SERVICE_URL_AUTH"] = f"http://{HOST}:{port}/"
    app = globus_sdk.ConfidentialAppAuthClient(client["id"], client["secret"])
    token = app.oauth2_client_credentials_tokens(requested_scopes="openid profile email")
    auth = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(
        token.by_resource_server["auth.globus.org"]["access_token"]))

    print(f"{database}: provisioning {args.identities} identities", flush=True)
    by_name = provision(auth, args.identities)
    by_id = {identity_id: name for name, identity_id in by_name.items()}
    ids = list(by_id)

    print(f"{database}: IdentityMap of {len(ids)} ids, then {len(ids)} usernames", flush=True)
    id_requests, id_seconds = timed_identity_map(
        auth, ids, log, {key: key for key in ids})
    name_requests, name_seconds = timed_identity_map(
        auth, list(by_name), log, {key: key for key in by_name})

    # The same random samples for Isthmus and for the SQL peer.
    chooser = random.Random(args.seed)
    samples = [chooser.sample(ids, args.ids_per_call) for _ in range(args.calls)]
    for sample in samples[:args.warmup]:
        auth.get_identities(ids=sample)
    print(f"{database}: {args.calls} get_identities calls of {args.ids_per_call} ids",
          flush=True)
    since = log.mark()
    lookup_ms = []
    for sample in samples:
        started = time.perf_counter()
        found = auth.get_identities(ids=sample)["identities"]
        lookup_ms.append((time.perf_counter() - started) * 1000)
        if len(found) != len(sample):
            raise RuntimeError(f"get_identities found {len(found)} of {len(sample)}")
    server_ms = [float(fields[5]) for fields in log.identity_requests(since)]

    sql_ms = []
    with sql_lookup(database, data_dir, env) as select:
        for sample in samples[:args.warmup]:
            select(sample)
        for sample in samples:
            started = time.perf_counter()
            rows = select(sample)
            sql_ms.append((time.perf_counter() - started) * 1000)
            if rows != len(sample):
                raise RuntimeError(f"the SQL peer found {rows} of {len(sample)} rows")

    return Result(
        database=database, identities=len(ids),
        map_by_id_requests=id_requests, map_by_id_s=id_seconds,
        map_by_username_requests=name_requests, map_by_username_s=name_seconds,
        expected_map_requests=math.ceil(len(ids) / IDENTITY_MAP_BATCH),
        calls=args.calls, ids_per_call=args.ids_per_call,
        lookup_p50_ms=statistics.median(lookup_ms), lookup_p99_ms=percentile(lookup_ms, 0.99),
        lookup_server_p50_ms=statistics.median(server_ms),
        sql_p50_ms=statistics.median(sql_ms), sql_p99_ms=percentile(sql_ms, 0.99),
    )


# --- report ---------------------------------------------------------------------------


def print_report(results: list[Result]) -> None:
    rows = [("", *(result.database for result in results))]

    def row(label: str, value: Callable[[Result], str]) -> None:
        rows.append((label, *(value(result) for result in results)))

    row("identities", lambda r: f"{r.identities:,}")
    row("IdentityMap by id: requests (expected)",
        lambda r: f"{r.map_by_id_requests} ({r.expected_map_requests})")
    row("IdentityMap by id: wall time", lambda r: f"{r.map_by_id_s * 1000:.0f} ms")
    row("IdentityMap by username: requests (expected)",
        lambda r: f"{r.map_by_username_requests} ({r.expected_map_requests})")
    row("IdentityMap by username: wall time", lambda r: f"{r.map_by_username_s * 1000:.0f} ms")
    row("get_identities, ids per call x calls", lambda r: f"{r.ids_per_call} x {r.calls}")
    row("get_identities p50 (SDK)", lambda r: f"{r.lookup_p50_ms:.2f} ms")
    row("get_identities p99 (SDK)", lambda r: f"{r.lookup_p99_ms:.2f} ms")
    row("  of which server p50 (access log)", lambda r: f"{r.lookup_server_p50_ms:.1f} ms")
    row("peer: SQL select of the same ids p50", lambda r: f"{r.sql_p50_ms:.3f} ms")
    row("peer: SQL select of the same ids p99", lambda r: f"{r.sql_p99_ms:.3f} ms")
    row("ratio get_identities / SQL, p50", lambda r: f"{r.ratio_p50:.1f}x")
    row("ratio get_identities / SQL, p99", lambda r: f"{r.ratio_p99:.1f}x")
    widths = [max(len(line[column]) for line in rows) for column in range(len(rows[0]))]
    print()
    for number, line in enumerate(rows):
        print("  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                        for column, (cell, width) in enumerate(zip(line, widths, strict=True))))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--ids-per-call", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10,
                        help="untimed calls first, on each side")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = set(args.databases) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    if not 0 < args.ids_per_call <= args.identities:
        parser.error("--ids-per-call must be between 1 and --identities")
    return args


def run(args: argparse.Namespace, resources: Resources) -> list[Result]:
    databases = list(args.databases)
    if "postgresql" in databases and not postgres_available():
        print("PostgreSQL does not answer on 127.0.0.1:5432: SQLite only", flush=True)
        databases.remove("postgresql")
    load = os.getloadavg()
    print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          f" on {os.cpu_count()} CPUs", flush=True)
    # The SDK reads where Auth is from the environment; this process talks to each server.
    for key in [key for key in os.environ if key.startswith("GLOBUS_SDK_")]:
        del os.environ[key]
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    results = []
    for database in databases:
        results.append(measure(database, resources, args))
        # One server at a time: the next one measures on an otherwise idle machine.
        for process in list(resources.processes):
            resources.stop(process)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work(resources: Resources) -> dict[str, Any]:
        results = run(args, resources)
        print_report(results)
        return {
            "command": [sys.executable, *sys.argv],
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "globus_sdk": globus_sdk.__version__,
            "results": [{**asdict(result), "ratio_p50": result.ratio_p50,
                         "ratio_p99": result.ratio_p99} for result in results],
        }

    return run_benchmark(work, args.json_out)


if __name__ == "__main__":
    sys.exit(main())
