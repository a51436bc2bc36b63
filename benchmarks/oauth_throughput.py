#!/usr/bin/env python3
"""OAuth2 throughput: Isthmus against django-oauth-toolkit (DOT), measured in one run.

What it measures, for each server configuration and each number of connections:

* client-credentials token issuance (``POST /v2/oauth2/token``; DOT: ``/o/token/``),
* RFC 7662 introspection of one live token, the caller authenticating with the
  same client's Basic credentials (``/v2/oauth2/token/introspect``; DOT: ``/o/introspect/``),

with Debian's ``wrk`` as the load generator in its own process (``--latency``;
``post_form.lua`` sends the form body and the Authorization header), a fixed
duration per cell, and plain HTTP on both sides. Then it prints a table
(requests/s, p50, p99, non-2xx count, socket errors), the ratio of the best
Isthmus configuration to the best DOT configuration per operation and
connection count, Ory Hydra's published figures as a reference, and how long
a restarted ``isthmus serve`` takes to answer its discovery document.

Servers it starts, all on 127.0.0.1 with ports it picks:

* ``isthmus serve --http`` on SQLite (a temporary data dir) and on PostgreSQL
  (a fresh database ``isthmus_bench_<random>`` on 127.0.0.1:5432, user
  postgres, created and dropped here), once per ``--isthmus-workers`` count;
* DOT in a throwaway venv under ``benchmarks/.work/`` (pinned versions below),
  the project in ``benchmarks/dotproject/`` (DEBUG off, no middleware,
  persistent connections: its best configuration), served by gunicorn sync
  workers: with DOT's default hashed client secret (PBKDF2, CPU-bound, one
  worker per core) on SQLite, and with ``hash_client_secret=False`` on SQLite
  and PostgreSQL once per ``--dot-workers`` count (default 2 and 4: sync
  workers wait on each connection, so more workers than cores can help).
  ``--dot-pg-hashed`` adds the hashed secret on PostgreSQL.

The ratios compare the best Isthmus configuration with the best DOT
configuration for each operation and connection count. Next to requests/s
the table shows the CPU time the server's processes spent per request, which
is steadier than requests/s when other work shares the machine (the load
average is printed before the run and stored with each cell).

Every server, database and temporary directory is removed at the end, also on
Ctrl-C or SIGTERM.

    .venv/bin/python benchmarks/oauth_throughput.py                  # the full run
    .venv/bin/python benchmarks/oauth_throughput.py --quick          # a smoke run
    .venv/bin/python benchmarks/oauth_throughput.py --json-out results.json
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
WORK = BENCH / ".work"
LUA_SCRIPT = BENCH / "post_form.lua"
DOT_PROJECT = BENCH / "dotproject"
DOT_VENV = WORK / "dot-venv"
# The versions the published numbers were measured with.
DOT_REQUIREMENTS = (
    "Django==5.2.19",
    "django-oauth-toolkit==3.4.1",
    "gunicorn==27.0.1",
    "psycopg[binary]==3.3.9",
)
ISTHMUS = Path(sys.executable).with_name("isthmus")
SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
HOST = "127.0.0.1"
OPERATIONS = ("token", "introspect")
# Ory Hydra's published benchmark (2 CPUs, in-memory store), for scale only:
# it was not measured on this machine.
HYDRA = {"token": 513.0, "introspect": 5109.0}


# --- process and resource bookkeeping ------------------------------------------


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the benchmark itself dies (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class Resources:
    """Everything started or created here, torn down in reverse order exactly once."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.databases: list[str] = []
        self.directories: list[Path] = []

    def spawn(self, argv: list[str], *, env: dict[str, str], log: Path,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as handle:
            process = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: Ctrl-C reaches only this script, which
                # then stops the server and its workers in order.
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # Workers left behind by a supervisor that died first.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if process in self.processes:
            self.processes.remove(process)

    def create_database(self, prefix: str) -> str:
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.databases.append(name)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.databases:
            self.databases.remove(name)

    def temporary_directory(self, prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        self.directories.append(path)
        return path

    def close(self) -> None:
        for process in reversed(list(self.processes)):
            try:
                self.stop(process)
            except Exception as error:  # keep cleaning up
                print(f"warning: could not stop pid {process.pid}: {error}", file=sys.stderr)
        for name in list(self.databases):
            try:
                self.drop_database(name)
            except Exception as error:
                print(f"warning: could not drop database {name}: {error}", file=sys.stderr)
        for path in self.directories:
            shutil.rmtree(path, ignore_errors=True)
        self.directories.clear()


def process_group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group.

    Every server here runs in its own group (supervisor and workers), so the
    difference across a cell is what serving it cost, whatever else the machine
    was doing. Database servers (PostgreSQL backends) are not included.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _raise_keyboard_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


# --- small HTTP helpers ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def basic(client_id: str, secret: str) -> str:
    # RFC 6749 2.3.1 form-encodes both parts; DOT decodes them, Isthmus's and
    # DOT's generated values need no escaping either way.
    raw = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def post_form(url: str, authorization: str, body: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=body.encode(), method="POST",
        headers={"Authorization": authorization,
                 "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait_for_200(url: str, process: subprocess.Popen[bytes], timeout: float,
                 log: Path, interval: float = 0.01) -> float:
    """Seconds until ``url`` first answers 200 (measured by the caller's clock)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(interval)
    raise RuntimeError(f"{url} did not answer within {timeout}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# --- wrk ---------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing Debian's package (apt-get install -y wrk)", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if os.geteuid() != 0 and shutil.which("sudo"):
        install = ["sudo", *install]
    if subprocess.run(install, check=False).returncode != 0:
        update = ["apt-get", "update", "-q"]
        if install[0] == "sudo":
            update = ["sudo", *update]
        subprocess.run(update, check=True)
        subprocess.run(install, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still not on PATH after apt-get install")
    return found


@dataclass
class Cell:
    target: str          # "isthmus" | "dot"
    config: str          # e.g. "1 worker", "hashed secret"
    database: str        # "sqlite" | "postgresql"
    connections: int
    operation: str       # "token" | "introspect"
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    server_cpu_ms_per_request: float | None = None
    load_average: float | None = None
    round: int = 1

    @property
    def label(self) -> str:
        return f"{self.target} {self.database} {self.config}"


def run_wrk(wrk: str, url: str, authorization: str, body: str, *, connections: int,
            duration: float, threads: int, timeout_s: int) -> dict[str, Any]:
    argv = [
        wrk, f"-t{min(threads, connections)}", f"-c{connections}", f"-d{duration:g}s",
        f"--timeout={timeout_s}s", "--latency", "-s", str(LUA_SCRIPT), url,
        "--", authorization, body,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False,
                            timeout=duration + timeout_s + 60)
    for line in result.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            summary: dict[str, Any] = json.loads(line[len("WRK_JSON "):])
            return summary
    raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


# --- the servers ---------------------------------------------------------------------


@dataclass
class Target:
    """A running server, a client on it, and a live token to introspect."""

    name: str
    config: str
    database: str
    token_url: str
    introspect_url: str
    authorization: str
    process: subprocess.Popen[bytes]
    token: str = ""

    def body(self, operation: str) -> str:
        if operation == "token":
            return urllib.parse.urlencode({"grant_type": "client_credentials", "scope": SCOPE})
        return urllib.parse.urlencode({"token": self.token})

    def url(self, operation: str) -> str:
        return self.token_url if operation == "token" else self.introspect_url

    def verify(self) -> None:
        """One real token and one introspection saying active, before any load."""
        status, answer = post_form(self.token_url, self.authorization, self.body("token"))
        if status != 200 or "access_token" not in answer:
            raise RuntimeError(f"{self.name}: token request answered {status}: {answer}")
        self.token = answer["access_token"]
        status, answer = post_form(self.introspect_url, self.authorization,
                                   self.body("introspect"))
        if status != 200 or answer.get("active") is not True:
            raise RuntimeError(f"{self.name}: introspection answered {status}: {answer}")


def _isthmus_env(database_url: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ISTHMUS_", "GLOBUS_"))}
    if database_url:
        env["ISTHMUS_DATABASE_URL"] = database_url
    return env


def prepare_isthmus(resources: Resources, database: str) -> tuple[Path, dict[str, str],
                                                                    dict[str, Any]]:
    """A data dir (and database), initialised, with one client_identity client."""
    data_dir = resources.temporary_directory(f"isthmus-bench-{database}-") / "data"
    url = None
    if database == "postgresql":
        name = resources.create_database("isthmus_bench")
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    env = _isthmus_env(url)
    created = subprocess.run(
        [str(ISTHMUS), "client", "create", "bench", "--type", "client_identity", "--json",
         "--data-dir", str(data_dir)],
        env=env, capture_output=True, text=True, check=True, timeout=120,
    )
    client: dict[str, Any] = json.loads(created.stdout)
    return data_dir, env, client


def start_isthmus(resources: Resources, data_dir: Path, env: dict[str, str], workers: int,
                  timeout: float = 60.0) -> tuple[subprocess.Popen[bytes], int, float, Path]:
    port = free_port()
    argv = [str(ISTHMUS), "serve", "--http", "--host", HOST, "--port", str(port),
            "--data-dir", str(data_dir)]
    if workers != 1:
        argv += ["--workers", str(workers)]
    log = data_dir.parent / "serve.log"
    started = time.monotonic()
    process = resources.spawn(argv, env=env, log=log)
    wait_for_200(f"http://{HOST}:{port}/.well-known/openid-configuration", process,
                 timeout, log)
    ready = time.monotonic() - started
    if workers > 1:
        # Every worker has to be up, not only the first to answer.
        _wait_all_workers(f"http://{HOST}:{port}/.well-known/openid-configuration", workers)
    return process, port, ready, log


def _wait_all_workers(url: str, workers: int) -> None:
    time.sleep(0.5)
    for _ in range(workers * 20):
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5):
            pass


def isthmus_target(resources: Resources, data_dir: Path, env: dict[str, str],
                   client: dict[str, Any], database: str, workers: int) -> Target:
    process, port, _ready, _log = start_isthmus(resources, data_dir, env, workers)
    base = f"http://{HOST}:{port}"
    target = Target(
        name="isthmus", config=f"{workers} worker{'s' if workers != 1 else ''}",
        database=database, token_url=f"{base}/v2/oauth2/token",
        introspect_url=f"{base}/v2/oauth2/token/introspect",
        authorization=basic(client["id"], client["secret"]), process=process,
    )
    target.verify()
    return target


def ensure_dot_venv() -> Path:
    """benchmarks/.work/dot-venv with the pinned DOT stack (made once, reused)."""
    marker = DOT_VENV / "bench-requirements.txt"
    wanted = "\n".join(DOT_REQUIREMENTS) + "\n"
    python = DOT_VENV / "bin" / "python"
    if marker.exists() and marker.read_text() == wanted and python.exists():
        return python
    print(f"Setting up DOT in {DOT_VENV.relative_to(ROOT)} ({', '.join(DOT_REQUIREMENTS)})",
          flush=True)
    shutil.rmtree(DOT_VENV, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(DOT_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *DOT_REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return python


def dot_target(resources: Resources, python: Path, database: str, hashed: bool,
               workers: int, worker_class: str, threads: int) -> Target:
    work = resources.temporary_directory(f"dot-bench-{database}-")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "DOT_BENCH_", "PYTHON"))}
    env["DJANGO_SETTINGS_MODULE"] = "dotbench.settings"
    env["DOT_BENCH_DB"] = database
    if database == "postgresql":
        env["DOT_BENCH_PG_NAME"] = resources.create_database("dot_bench")
    else:
        env["DOT_BENCH_SQLITE_PATH"] = str(work / "dot.sqlite3")
    created = subprocess.run(
        [str(python), "setup_dot.py", "--hash-client-secret", "true" if hashed else "false"],
        cwd=DOT_PROJECT, env=env, capture_output=True, text=True, check=False, timeout=300,
    )
    if created.returncode != 0:
        raise RuntimeError(f"DOT setup failed:\n{created.stdout}\n{created.stderr}")
    client = json.loads(created.stdout.strip().splitlines()[-1])
    if client["stored_secret_is_hashed"] != hashed:
        raise RuntimeError(f"DOT stored the secret {'un' if hashed else ''}hashed")
    port = free_port()
    argv = [str(python), "-m", "gunicorn", "--workers", str(workers),
            "--worker-class", worker_class, "--bind", f"{HOST}:{port}",
            "--chdir", str(DOT_PROJECT), "--log-level", "warning",
            "--control-socket", str(work / "gunicorn.ctl"),
            "--timeout", "120", "dotbench.wsgi:application"]
    if worker_class == "gthread":
        argv[5:5] = ["--threads", str(threads)]
    log = work / "gunicorn.log"
    process = resources.spawn(argv, env=env, log=log, cwd=DOT_PROJECT)
    base = f"http://{HOST}:{port}"
    # DOT has no discovery document by default; the token URL answers 405 to GET.
    _wait_for_port(port, process, log)
    config = f"{'hashed' if hashed else 'plain'}, {workers} {worker_class}"
    if worker_class == "gthread":
        config += f" x{threads}"
    target = Target(
        name="dot", config=config, database=database, token_url=f"{base}/o/token/",
        introspect_url=f"{base}/o/introspect/",
        authorization=basic(client["client_id"], client["client_secret"]), process=process,
    )
    target.verify()
    return target


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path,
                   timeout: float = 60.0) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            time.sleep(1.0)  # let every worker boot
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open within {timeout}s:\n{_tail(log)}")


# --- measuring -----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    duration: float
    warmup: float
    connections: tuple[int, ...]
    wrk_threads: int
    wrk_timeout: int


def warm_up(wrk: str, target: Target, plan: Plan) -> None:
    """Unrecorded load first: caches, pools and JIT-free interpreters settle."""
    if plan.warmup <= 0:
        return
    for operation in OPERATIONS:
        run_wrk(wrk, target.url(operation), target.authorization, target.body(operation),
                connections=min(plan.connections), duration=plan.warmup,
                threads=plan.wrk_threads, timeout_s=plan.wrk_timeout)


def measure_cell(wrk: str, target: Target, plan: Plan, connections: int, operation: str,
                 round_number: int) -> Cell:
    drain(target, operation)
    load = os.getloadavg()[0]
    cpu_before = process_group_cpu(target.process.pid)
    summary = run_wrk(wrk, target.url(operation), target.authorization,
                      target.body(operation), connections=connections,
                      duration=plan.duration, threads=plan.wrk_threads,
                      timeout_s=plan.wrk_timeout)
    cpu = process_group_cpu(target.process.pid) - cpu_before
    seconds = summary["duration_us"] / 1e6
    errors = sum(summary[key] for key in (
        "connect_errors", "read_errors", "write_errors", "timeout_errors"))
    cell = Cell(
        target=target.name, config=target.config, database=target.database,
        connections=connections, operation=operation,
        requests=summary["requests"], duration_s=round(seconds, 3),
        rps=round(summary["requests"] / seconds, 1),
        p50_ms=summary["p50_us"] / 1000, p90_ms=summary["p90_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000, max_ms=summary["max_us"] / 1000,
        non_2xx=summary["status_errors"], socket_errors=errors,
        server_cpu_ms_per_request=(round(1000 * cpu / summary["requests"], 3)
                                   if summary["requests"] else None),
        load_average=round(load, 2), round=round_number,
    )
    print(f"  {cell.label:<34} c={connections:<4} {operation:<10} "
          f"{cell.rps:9.1f} req/s  p50 {cell.p50_ms:8.2f} ms  p99 {cell.p99_ms:8.2f} ms"
          f"  non-2xx {cell.non_2xx}  sock-err {cell.socket_errors}"
          f"  cpu/req {_ms(cell.server_cpu_ms_per_request)} ms  load {load:.1f}", flush=True)
    return cell


def drain(target: Target, operation: str) -> None:
    """Wait until requests queued by the previous cell are served (one more goes through).

    A slow server (DOT hashing its client secret) still works through requests
    whose client gave up; they must not count against the next cell.
    """
    with contextlib.suppress(OSError, ValueError):
        request = urllib.request.Request(
            target.url(operation), data=target.body(operation).encode(), method="POST",
            headers={"Authorization": target.authorization,
                     "Content-Type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(request, timeout=300) as answer:
            answer.read()


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def ready_times(resources: Resources, data_dir: Path, env: dict[str, str], workers: int,
                runs: int) -> list[float]:
    """Start ``isthmus serve`` on an initialised data dir; seconds to the first 200."""
    times = []
    for _ in range(runs):
        process, _port, ready, _log = start_isthmus(resources, data_dir, env, workers)
        times.append(round(ready, 3))
        resources.stop(process)
    return times


def dot_configurations(args: argparse.Namespace,
                       databases: list[str]) -> list[tuple[str, bool, int]]:
    """(database, hashed secret, gunicorn workers) for each DOT server to run."""
    configurations = []
    for database in databases:
        for hashed in (True, False):
            if ("hashed" if hashed else "plain") not in args.dot_secrets:
                continue
            if hashed and database == "postgresql" and not args.dot_pg_hashed:
                continue
            # Hashing the secret is CPU work: more workers than cores cannot help it.
            counts = (args.dot_hashed_workers,) if hashed else args.dot_workers
            configurations += [(database, hashed, workers) for workers in counts]
    return configurations


def target_label(target: Target) -> str:
    return f"{target.name} {target.database} {target.config}"


def best_of_rounds(cells: list[Cell], order: list[str]) -> list[Cell]:
    """Per configuration, connections and operation: the round with the most requests/s."""
    best_cells: dict[tuple[str, int, str], Cell] = {}
    for cell in cells:
        key = (cell.label, cell.connections, cell.operation)
        if key not in best_cells or cell.rps > best_cells[key].rps:
            best_cells[key] = cell
    return sorted(best_cells.values(), key=lambda cell: (
        order.index(cell.label), cell.connections, OPERATIONS.index(cell.operation)))


# --- reporting -----------------------------------------------------------------------


def best(cells: list[Cell], target: str, operation: str, connections: int) -> Cell | None:
    candidates = [cell for cell in cells if cell.target == target
                  and cell.operation == operation and cell.connections == connections]
    return max(candidates, key=lambda cell: cell.rps, default=None)


def ratios(cells: list[Cell], connections: tuple[int, ...]) -> list[dict[str, Any]]:
    rows = []
    for operation in OPERATIONS:
        for count in connections:
            ours = best(cells, "isthmus", operation, count)
            theirs = best(cells, "dot", operation, count)
            if ours is None or theirs is None:
                continue
            rows.append({
                "operation": operation, "connections": count,
                "isthmus_best": ours.label, "isthmus_rps": ours.rps,
                "dot_best": theirs.label, "dot_rps": theirs.rps,
                "ratio": round(ours.rps / theirs.rps, 2) if theirs.rps else None,
            })
    return rows


def print_report(cells: list[Cell], ratio_rows: list[dict[str, Any]],
                 ready: dict[str, Any], plan: Plan, rounds: int) -> None:
    print()
    print(f"Results ({plan.duration:g} s per cell, best of {rounds} round(s), "
          f"wrk -t{plan.wrk_threads}, {os.cpu_count()} CPUs, plain HTTP on 127.0.0.1)")
    header = (f"{'target':<8} {'database':<10} {'configuration':<16} {'conns':>5} "
              f"{'operation':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>7} "
              f"{'sockerr':>7} {'cpu ms/req':>10} {'x best DOT':>10}")
    print(header)
    print("-" * len(header))
    for cell in cells:
        theirs = best(cells, "dot", cell.operation, cell.connections)
        ratio = f"{cell.rps / theirs.rps:.2f}" if theirs and theirs.rps else "-"
        print(f"{cell.target:<8} {cell.database:<10} {cell.config:<16} {cell.connections:>5} "
              f"{cell.operation:<10} {cell.rps:>9.1f} {cell.p50_ms:>8.2f} {cell.p99_ms:>8.2f} "
              f"{cell.non_2xx:>7} {cell.socket_errors:>7} "
              f"{_ms(cell.server_cpu_ms_per_request):>10} {ratio:>10}")
    for operation in OPERATIONS:
        print(f"{'hydra':<8} {'memory':<10} {'published':<16} {'-':>5} {operation:<10} "
              f"{HYDRA[operation]:>9.1f} {'-':>8} {'-':>8} {'-':>7} {'-':>7} {'-':>10} "
              f"{'-':>10}")
    print("  hydra: Ory's published figures on 2 CPUs with an in-memory store, not measured here."
          "\n  cpu ms/req: CPU time of the server's processes per request (PostgreSQL's own"
          " backends not included);\n  it varies less than req/s when other work shares the"
          " machine.")
    print()
    print("Isthmus / best DOT configuration")
    for row in ratio_rows:
        print(f"  {row['operation']:<10} c={row['connections']:<4} {row['ratio']:>6.2f}x   "
              f"({row['isthmus_best']}: {row['isthmus_rps']:.1f} req/s vs "
              f"{row['dot_best']}: {row['dot_rps']:.1f} req/s)")
    print()
    for label, entry in ready.items():
        print(f"Restarted server ready to serve ({label}): median {entry['median_s']:.3f} s "
              f"over {len(entry['runs_s'])} runs {entry['runs_s']}")
    bad = [cell for cell in cells if cell.target == "isthmus"
           and (cell.non_2xx or cell.socket_errors)]
    for cell in bad:
        print(f"WARNING: {cell.label} c={cell.connections} {cell.operation}: "
              f"{cell.non_2xx} non-2xx responses, {cell.socket_errors} socket errors")


def _versions(dot_python: Path | None) -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("isthmus", "fastapi", "uvicorn", "sqlalchemy", "psycopg"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    wrk = shutil.which("wrk")
    if wrk:
        first = subprocess.run([wrk, "--version"], capture_output=True, text=True,
                               check=False).stdout.splitlines()
        versions["wrk"] = first[0] if first else "?"
    if dot_python is not None:
        versions["dot"] = ", ".join(DOT_REQUIREMENTS)
    return versions


# --- main ------------------------------------------------------------------------------


def _int_list(text: str) -> tuple[int, ...]:
    values = tuple(int(part) for part in text.split(",") if part.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of unrecorded load per operation before a server's cells")
    parser.add_argument("--connections", type=_int_list, default=(16, 100),
                        help="comma-separated connection counts")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 s cells, 16 connections, 1 s warm-up, 3 ready runs")
    parser.add_argument("--isthmus-workers", type=_int_list, default=(1, 2),
                        help="uvicorn worker processes for `isthmus serve`, one run each")
    parser.add_argument("--dot-workers", type=_int_list, default=(2, 4),
                        help="gunicorn workers for DOT with a plain secret, one run each (the"
                             " best counts: one per core, and two per core since sync workers"
                             " wait on each connection)")
    parser.add_argument("--dot-hashed-workers", type=int, default=os.cpu_count() or 2,
                        help="gunicorn workers for DOT with its hashed secret (CPU-bound)")
    parser.add_argument("--dot-worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--dot-threads", type=int, default=4,
                        help="threads per worker with --dot-worker-class gthread")
    parser.add_argument("--dot-pg-hashed", action="store_true",
                        help="also run DOT on PostgreSQL with the hashed secret")
    parser.add_argument("--dot-secrets", default="hashed,plain",
                        help="DOT client secret storage to run: hashed (DOT's default), plain")
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--skip-dot", action="store_true", help="measure Isthmus only")
    parser.add_argument("--skip-isthmus", action="store_true", help="measure DOT only")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every cell this many times; the table keeps the best")
    parser.add_argument("--ready-runs", type=int, default=7,
                        help="restarts to time for the ready-to-serve median")
    parser.add_argument("--wrk-threads", type=int, default=1,
                        help="wrk threads (1 leaves the most CPU to the servers on 2 cores)")
    parser.add_argument("--wrk-timeout", type=int, default=10,
                        help="seconds before wrk counts a request as timed out")
    parser.add_argument("--json-out", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 2.0
        args.warmup = 1.0
        args.connections = (16,)
        args.ready_runs = 3
    args.databases = tuple(part.strip() for part in args.databases.split(",") if part.strip())
    args.dot_secrets = tuple(part.strip() for part in args.dot_secrets.split(",") if part.strip())
    if set(args.dot_secrets) - {"hashed", "plain"}:
        parser.error("--dot-secrets takes hashed and/or plain")
    unknown = set(args.databases) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    return args


def postgres_available() -> bool:
    try:
        with socket.create_connection((HOST, 5432), timeout=2):
            return True
    except OSError:
        return False


def run(args: argparse.Namespace, resources: Resources) -> dict[str, Any]:
    wrk = ensure_wrk()
    plan = Plan(duration=args.duration, warmup=args.warmup, connections=args.connections,
                wrk_threads=args.wrk_threads, wrk_timeout=args.wrk_timeout)
    databases = list(args.databases)
    if "postgresql" in databases and not postgres_available():
        print("PostgreSQL does not answer on 127.0.0.1:5432: SQLite only", flush=True)
        databases.remove("postgresql")
    dot_python = None if args.skip_dot else ensure_dot_venv()
    ready: dict[str, Any] = {}
    started = time.monotonic()
    load = os.getloadavg()
    print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          f" on {os.cpu_count()} CPUs", flush=True)
    if load[0] > 0.5:
        print("  other work is running: expect lower and noisier numbers", flush=True)

    # Every configuration runs at once (an idle server costs next to nothing), so
    # each cell is measured for all of them back to back: whatever else the
    # machine does then weighs on all of them alike.
    targets: list[Target] = []
    ready_dir: tuple[Path, dict[str, str]] | None = None
    if not args.skip_isthmus:
        for database in databases:
            for workers in args.isthmus_workers:
                print(f"starting isthmus on {database} with {workers} worker(s)", flush=True)
                data_dir, env, client = prepare_isthmus(resources, database)
                targets.append(isthmus_target(resources, data_dir, env, client, database,
                                              workers))
                if database == "sqlite" and ready_dir is None:
                    ready_dir = (data_dir, env)
    if dot_python is not None:
        for database, hashed, workers in dot_configurations(args, databases):
            print(f"starting dot on {database} with {'hashed' if hashed else 'plain'} client"
                  f" secret ({workers} {args.dot_worker_class} workers)", flush=True)
            targets.append(dot_target(resources, dot_python, database, hashed, workers,
                                      args.dot_worker_class, args.dot_threads))
    for target in targets:
        warm_up(wrk, target, plan)
    all_cells: list[Cell] = []
    for round_number in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"round {round_number} of {args.rounds}", flush=True)
        for connections in plan.connections:
            for operation in OPERATIONS:
                for target in targets:
                    all_cells.append(measure_cell(wrk, target, plan, connections, operation,
                                                  round_number))
    for target in targets:
        # Each server must still hand out working tokens after the load.
        drain(target, "token")
        target.verify()
        resources.stop(target.process)
    cells = best_of_rounds(all_cells, [target_label(target) for target in targets])

    if ready_dir is not None and args.ready_runs > 0:
        data_dir, env = ready_dir
        for workers in sorted({1, max(args.isthmus_workers)}):
            runs = ready_times(resources, data_dir, env, workers, args.ready_runs)
            label = f"sqlite, {workers} worker{'s' if workers != 1 else ''}"
            ready[label] = {"runs_s": runs, "median_s": statistics.median(runs)}

    ratio_rows = ratios(cells, plan.connections)
    print_report(cells, ratio_rows, ready, plan, args.rounds)
    return {
        "command": [sys.executable, *sys.argv],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_at_end": [round(value, 2) for value in os.getloadavg()]},
        "versions": _versions(dot_python),
        "plan": asdict(plan),
        "dot": {"workers": list(args.dot_workers), "hashed_workers": args.dot_hashed_workers,
                "worker_class": args.dot_worker_class,
                "threads": args.dot_threads if args.dot_worker_class == "gthread" else 1},
        "rounds": args.rounds,
        "cells": [asdict(cell) for cell in cells],
        "all_cells": [asdict(cell) for cell in all_cells],
        "ratios": ratio_rows,
        "ready_to_serve": ready,
        "hydra_published": {"token_per_s": HYDRA["token"],
                            "introspect_per_s": HYDRA["introspect"],
                            "setup": "2 CPUs, in-memory store (Ory's published benchmark)"},
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def run_cleanly(work: Callable[[Resources], dict[str, Any]]) -> dict[str, Any] | None:
    """``work`` with the servers and files it makes torn down afterwards, also on Ctrl-C or
    SIGTERM (then None). Every benchmark's main runs through this (`run_benchmark`)."""
    resources = Resources()
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        return work(resources)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping servers and removing what they made", file=sys.stderr)
        return None
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        resources.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)


def write_json(path: Path | None, document: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nJSON written to {path}")


def run_benchmark(work: Callable[[Resources], dict[str, Any]], json_out: Path | None) -> int:
    """`run_cleanly` ``work`` and write its document to ``json_out``; the exit status (130
    when interrupted)."""
    document = run_cleanly(work)
    if document is None:
        return 130
    write_json(json_out, document)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_benchmark(lambda resources: run(args, resources), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
