#!/usr/bin/env python3
"""HTTPS data throughput: Isthmus's collection HTTPS against a plain static file server.

One run, one file (``--size``, default 2GiB, random bytes):

* Isthmus: ``isthmus serve`` (one process, its own TLS certificate) in a temporary data
  dir; a user logs in through Auth's pages with the SDK's tutorial client for the default
  collection's ``https`` and ``data_access`` scopes; ``curl -T`` uploads the file into the
  user's folder (a PUT streamed into an atomic write) and ``curl`` downloads it again;
* the baseline: Debian's nginx, one worker process, serving a temporary directory over
  TLS with the same certificate and key (``dav_methods PUT`` for the upload), or, when nginx
  is not installed, ``python -m http.server`` for GET and a small stdlib PUT handler, over
  plain HTTP (the report says which);
* ``--rounds`` rounds (default 3), each a PUT on both servers then a GET on both, the
  servers taking turns to go first; curl's own average speed is reported in MB/s (10^6
  bytes), the best and the median of each cell, with the ratios Isthmus / baseline;
* Isthmus's memory: resident set at rest, and the peak during each transfer (the server
  process's VmHWM, the kernel's high-water mark, reset before each transfer when this runs
  as root, else sampled every 10 ms).

Every server and temporary file is removed at the end, also on Ctrl-C.

    nice -n -15 .venv/bin/python benchmarks/https_data.py     # 2 GiB, 3 rounds
    nice -n -15 .venv/bin/python benchmarks/https_data.py --size 512MiB --rounds 5
    .venv/bin/python benchmarks/https_data.py --json-out results.json
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from oauth_throughput import (
    ISTHMUS,
    Resources,
    free_port,
    process_group_cpu,
    run_benchmark,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HOST = "127.0.0.1"
MiB = 1024 * 1024
TUTORIAL_CLIENT_ID = "61338d24-54d5-408f-a10d-66c06b59f6d2"
USERNAME = "bench"
PASSWORD = "bench-password-not-secret"


# --- sizes, memory, curl ----------------------------------------------------------------


def parse_size(text: str) -> int:
    found = re.fullmatch(r"\s*(\d+)\s*([KMGT]i?B?)?\s*", text, re.IGNORECASE)
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 2GiB or 512MiB")
    unit = (found.group(2) or "").upper()[:1]
    return int(found.group(1)) * {"": 1, "K": 1024, "M": MiB, "G": 1024 * MiB,
                                  "T": 1024 * 1024 * MiB}[unit]


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class PeakMemory:
    """The largest resident set of a process while a block runs: the kernel's high-water
    mark when it can be reset (root), else sampled every 10 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:  # not ours to reset (not root): then the sampler decides
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmHWM"))


def curl(url: str, *args: str, ca_file: str | None, token: str | None = None) -> dict[str, Any]:
    """One curl transfer; its status and average speed (bytes/s) as curl measured them."""
    argv = ["curl", "-sS", "-o", "/dev/null", "-w",
            '{"status": %{http_code}, "download": %{speed_download}, '
            '"upload": %{speed_upload}, "seconds": %{time_total}}']
    if ca_file:
        argv += ["--cacert", ca_file]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run([*argv, *args, url], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"curl {' '.join(args)} {url} failed: {done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# --- the servers ------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    base_url: str  # where the file is read from and written to (no trailing slash)
    ca_file: str | None
    token: str | None
    pid: int
    tls: bool


def wait_ready(url: str, ca_file: str | None, process: subprocess.Popen[bytes],
               timeout: float = 60) -> None:
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@dataclass
class IsthmusSite:
    """An `isthmus serve` of the benchmarks' own, with one user (`USERNAME`)."""

    base_url: str
    ca_file: str
    collection_id: str  # its "<host> files" collection
    username: str
    data_dir: Path
    pid: int


def launch_isthmus(resources: Resources, work: Path) -> IsthmusSite:
    data_dir = work / "isthmus"
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GLOBUS_", "ISTHMUS_"))}
    log = work / "isthmus.log"
    process = resources.spawn([str(ISTHMUS), "serve", "--port", str(port), "--data-dir",
                               str(data_dir)], env=env, log=log)
    base = f"https://{HOST}:{port}/"
    ca_file = str(data_dir / "tls" / "ca.pem")
    started = time.monotonic()
    while not Path(ca_file).exists() and time.monotonic() - started < 60:
        time.sleep(0.05)
    wait_ready(base + ".well-known/openid-configuration", ca_file, process)
    found = re.search(r'collection "[^"]+": ([0-9a-f-]{36})', log.read_text())
    if found is None:
        raise RuntimeError(f"isthmus serve named no collection:\n{log.read_text()}")
    created = subprocess.run([str(ISTHMUS), "user", "create", USERNAME, "--password-stdin",
                              "--json", "--data-dir", str(data_dir)], input=PASSWORD + "\n",
                             text=True, env=env, check=True, capture_output=True)
    return IsthmusSite(base, ca_file, found.group(1), json.loads(created.stdout)["username"],
                       data_dir, process.pid)


def start_isthmus(resources: Resources, work: Path) -> tuple[Server, Path]:
    site = launch_isthmus(resources, work)
    scopes = collection_scopes(site.collection_id)
    token = login(site, [scopes.https, scopes.data_access])[site.collection_id]
    url = f"{site.base_url}data/{site.collection_id}/{quote(site.username)}"
    return Server("isthmus", url, site.ca_file, token, site.pid, tls=True), site.data_dir


def collection_scopes(collection_id: str) -> Any:
    import globus_sdk

    return globus_sdk.GCSClient.get_gcs_collection_scopes(collection_id)


def login(site: IsthmusSite, scopes: list[str]) -> dict[str, str]:
    """Log in as a person does (Auth's pages, the tutorial client), consenting to
    ``scopes``: the access tokens by resource server."""
    import globus_sdk
    from tests.browser import Browser

    os.environ.update({"GLOBUS_SDK_SERVICE_URL_AUTH": site.base_url,
                       "GLOBUS_SDK_SERVICE_URL_TRANSFER": site.base_url,
                       "GLOBUS_SDK_VERIFY_SSL": site.ca_file})
    os.environ.pop("GLOBUS_SDK_ENVIRONMENT", None)
    client = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    client.oauth2_start_flow(requested_scopes=[str(scope) for scope in scopes])
    browser = Browser(site.ca_file)
    location = browser.authorize(client.oauth2_get_authorize_url(), USERNAME, PASSWORD)
    tokens = client.oauth2_exchange_code_for_tokens(browser.code_from_page(location))
    return {server: str(token["access_token"])
            for server, token in tokens.by_resource_server.items()}


NGINX_CONFIG = """\
worker_processes 1;
daemon off;
{user}
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    server {{
        listen {host}:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {root};
        client_max_body_size 0;
        location / {{ dav_methods PUT; }}
    }}
}}
"""


def start_nginx(resources: Resources, work: Path, tls_dir: Path) -> Server:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    root = work / "static"
    root.mkdir()
    port = free_port()
    config = work / "nginx.conf"
    config.write_text(NGINX_CONFIG.format(
        user="user root;" if os.geteuid() == 0 else "", work=work, host=HOST, port=port,
        cert=tls_dir / "server.pem", key=tls_dir / "server-key.pem", root=root))
    process = resources.spawn([nginx, "-c", str(config), "-p", str(work)], env=dict(os.environ),
                              log=work / "nginx.log")
    ca_file = str(tls_dir / "ca.pem")
    wait_ready(f"https://{HOST}:{port}/", ca_file, process)
    return Server("nginx (TLS)", f"https://{HOST}:{port}", ca_file, None, process.pid, tls=True)


class _PutHandler(http.server.SimpleHTTPRequestHandler):
    """GET as http.server serves files; PUT streams the body into the file, 1 MiB at a time."""

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        target = Path(self.translate_path(self.path))
        with target.open("wb") as out:
            while length > 0:
                chunk = self.rfile.read(min(MiB, length))
                if not chunk:
                    break
                out.write(chunk)
                length -= len(chunk)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def serve_static(directory: str, port: int) -> None:
    """The fallback baseline's server process (``--serve-static``)."""
    handler = lambda *args: _PutHandler(*args, directory=directory)  # noqa: E731
    with http.server.ThreadingHTTPServer((HOST, port), handler) as server:
        server.serve_forever()


def start_python_server(resources: Resources, work: Path) -> Server:
    root = work / "static"
    root.mkdir()
    port = free_port()
    process = resources.spawn([sys.executable, __file__, "--serve-static", str(root),
                               "--port", str(port)], env=dict(os.environ),
                              log=work / "static.log")
    wait_ready(f"http://{HOST}:{port}/", None, process)
    return Server("python http.server (plain HTTP)", f"http://{HOST}:{port}", None, None,
                  process.pid, tls=False)


# --- the run ----------------------------------------------------------------------------


def make_file(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as out:
        for offset in range(0, size, MiB):
            # Every MiB differs, so nothing along the way can shortcut repeated blocks.
            out.write((offset.to_bytes(8, "big") + block)[: min(MiB, size - offset)])


@dataclass
class Measured:
    server: str
    operation: str
    mb_per_s: float
    seconds: float
    # CPU time the server's processes spent per GB moved: steadier than MB/s when other
    # work shares the machine.
    cpu_s_per_gb: float
    peak_rss_kib: int  # the server's resident high-water mark during this transfer


def transfer(server: Server, operation: str, source: Path) -> Measured:
    url = f"{server.base_url}/bench.bin"
    # nginx leaves an upload in memory for the kernel to write out later (Isthmus fsyncs
    # it): each transfer starts once nothing is waiting to be written, or it would pay for
    # the previous one's disk writes.
    os.sync()
    cpu = process_group_cpu(server.pid)
    with PeakMemory(server.pid) as peak:
        if operation == "PUT":
            done = curl(url, "-T", str(source), ca_file=server.ca_file, token=server.token)
            speed = done["upload"]
        else:
            done = curl(url, ca_file=server.ca_file, token=server.token)
            speed = done["download"]
    spent = process_group_cpu(server.pid) - cpu
    if done["status"] not in (200, 201, 204):
        raise RuntimeError(f"{server.name} {operation} answered {done['status']}")
    return Measured(server.name, operation, speed / 1e6, done["seconds"],
                    spent / (source.stat().st_size / 1e9), peak.peak_kib)


def measure(servers: list[Server], source: Path, rounds: int) -> list[Measured]:
    """Every round does each operation on each server, the servers in turns (who goes first
    alternates), so that whatever else the machine does falls on both alike."""
    found: list[Measured] = []
    for index in range(rounds):
        ordered = servers if index % 2 == 0 else servers[::-1]
        for operation in ("PUT", "GET"):
            for server in ordered:
                done = transfer(server, operation, source)
                found.append(done)
                print(f"  round {index + 1}: {server.name} {operation} "
                      f"{done.mb_per_s:.1f} MB/s, {done.cpu_s_per_gb:.2f} CPU s/GB", flush=True)
    return found


def cell(found: list[Measured], server: str, operation: str) -> list[Measured]:
    """One server's runs of one operation, slowest first."""
    return sorted((item for item in found if item.server == server
                   and item.operation == operation), key=lambda item: item.mb_per_s)


def run(args: argparse.Namespace, resources: Resources) -> dict[str, Any]:
    work = resources.temporary_directory("isthmus-https-bench-")
    print(f"load average before the run: {os.getloadavg()}")
    print(f"making a {args.size / MiB:.0f} MiB file of random bytes in {work}")
    source = work / "source.bin"
    make_file(source, args.size)

    isthmus, data_dir = start_isthmus(resources, work)
    rest_kib = status_kib(isthmus.pid, "VmRSS")
    baseline_server = (start_nginx(resources, work, data_dir / "tls")
                       if args.baseline in ("auto", "nginx") and shutil.which("nginx")
                       else start_python_server(resources, work))
    if args.baseline == "nginx" and not baseline_server.tls:
        raise RuntimeError("nginx is not installed (apt-get install -y nginx-light)")
    found = measure([isthmus, baseline_server], source, args.rounds)

    print(f"\nfile: {args.size / MiB:.0f} MiB, {args.rounds} rounds, curl {curl_version()}, "
          f"load average now {os.getloadavg()[0]:.1f}")
    print(f"baseline: {baseline_server.name}")
    print(f"{'':<10}{'MB/s, best (median)':^44}{'ratio':^16}{'CPU s/GB, best run':^24}")
    print(f"{'operation':<10}{'Isthmus':>22}{'baseline':>22}{'best':>8}{'median':>8}"
          f"{'Isthmus':>12}{'baseline':>12}{'Isthmus peak RSS':>20}")
    rows = []
    for operation in ("PUT", "GET"):
        ours = cell(found, isthmus.name, operation)
        theirs = cell(found, baseline_server.name, operation)
        best, median = ours[-1], ours[len(ours) // 2]
        reference, reference_median = theirs[-1], theirs[len(theirs) // 2]
        ratio = best.mb_per_s / reference.mb_per_s
        median_ratio = median.mb_per_s / reference_median.mb_per_s
        peak_kib = max(item.peak_rss_kib for item in ours)
        rows.append({"operation": operation, "isthmus_mb_s": round(best.mb_per_s, 1),
                     "isthmus_median_mb_s": round(median.mb_per_s, 1),
                     "baseline_mb_s": round(reference.mb_per_s, 1),
                     "baseline_median_mb_s": round(reference_median.mb_per_s, 1),
                     "ratio": round(ratio, 2), "median_ratio": round(median_ratio, 2),
                     "isthmus_cpu_s_per_gb": round(best.cpu_s_per_gb, 2),
                     "baseline_cpu_s_per_gb": round(reference.cpu_s_per_gb, 2),
                     "isthmus_peak_rss_kib": peak_kib})
        print(f"{operation:<10}"
              f"{f'{best.mb_per_s:.1f} ({median.mb_per_s:.1f})':>22}"
              f"{f'{reference.mb_per_s:.1f} ({reference_median.mb_per_s:.1f})':>22}"
              f"{ratio:>8.2f}{median_ratio:>8.2f}{best.cpu_s_per_gb:>12.2f}"
              f"{reference.cpu_s_per_gb:>12.2f}{f'{peak_kib / 1024:.1f} MiB':>20}")
    peak_kib = max(int(row["isthmus_peak_rss_kib"]) for row in rows)
    print(f"Isthmus resident memory: {rest_kib / 1024:.1f} MiB at rest, "
          f"{peak_kib / 1024:.1f} MiB at the peak of the transfers "
          f"(+{(peak_kib - rest_kib) / 1024:.1f} MiB; VmHWM of the server process)")
    return {"size_bytes": args.size, "rounds": args.rounds, "baseline": baseline_server.name,
            "rows": rows, "isthmus_rss_rest_kib": rest_kib, "isthmus_rss_peak_kib": peak_kib,
            "measurements": [asdict(item) for item in found],
            "load_average": os.getloadavg()}


def curl_version() -> str:
    done = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.split()[1] if done.stdout else "?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("2GiB"),
                        help="size of the file moved (2GiB, 512MiB, ...; default 2GiB)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="transfers per cell; the fastest and the median are shown "
                             "(default 3)")
    parser.add_argument("--baseline", choices=("auto", "nginx", "python"), default="auto",
                        help="nginx when installed (auto), or python's http.server")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--serve-static", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)



def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_static:
        serve_static(args.serve_static, args.port)
        return 0
    return run_benchmark(lambda resources: run(args, resources), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
