"""A real `isthmus serve` in a subprocess, and what tests need to talk to it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ISTHMUS = str(Path(sys.executable).with_name("isthmus"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    data_dir: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    serve_args: tuple[str, ...] = ()
    # The CA that signed the server's certificate, when it is not the data dir's own.
    trusted_ca: str | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        scheme = "http" if "--http" in self.serve_args else "https"
        return f"{scheme}://127.0.0.1:{self.port}/"

    @property
    def ca_file(self) -> str:
        return self.trusted_ca or str(self.data_dir / "tls" / "ca.pem")

    @property
    def access_log(self) -> Path | None:
        """The file given to `isthmus serve --access-log`, if any."""
        if "--access-log" not in self.serve_args:
            return None
        return Path(self.serve_args[self.serve_args.index("--access-log") + 1])

    def access_log_lines(self) -> list[str]:
        assert self.access_log is not None, "this server was started without --access-log"
        if not self.access_log.exists():
            return []
        return self.access_log.read_text().splitlines()

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """Run an `isthmus` administrative command against this deployment."""
        result = subprocess.run(
            [ISTHMUS, *args, "--data-dir", str(self.data_dir)],
            input=stdin, capture_output=True, text=True, env=self.process_env(), timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"isthmus {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def run_json(self, *args: str, stdin: str | None = None) -> Any:
        return json.loads(self.run(*args, "--json", stdin=stdin))

    def create_user(self, username: str, password: str, **fields: str) -> dict[str, Any]:
        extra = [item for key, value in fields.items() for item in (f"--{key}", value)]
        result: dict[str, Any] = self.run_json(
            "user", "create", username, "--password-stdin", *extra, stdin=password + "\n"
        )
        return result

    def create_client(self, name: str, client_type: str, *redirect_uris: str) -> dict[str, Any]:
        extra = [item for uri in redirect_uris for item in ("--redirect-uri", uri)]
        result: dict[str, Any] = self.run_json(
            "client", "create", name, "--type", client_type, *extra
        )
        return result

    def process_env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("GLOBUS_", "ISTHMUS_"))}
        env.update(self.env)
        return env

    def start(self) -> None:
        self.spawn()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def spawn(self) -> None:
        """Start the process without waiting for it to answer."""
        self.log_path = self.data_dir.with_suffix(".log")
        with self.log_path.open("wb") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [ISTHMUS, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                 *self.serve_args],
                stdout=log, stderr=subprocess.STDOUT, env=self.process_env(),
            )

    def wait_ready(self, timeout: float = 20.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"isthmus serve exited: {self.log()}")
            try:
                answer = requests.get(self.base_url + ".well-known/openid-configuration",
                                      verify=self.ca_file, timeout=2)
                if answer.status_code == 200:
                    return time.monotonic() - started
            except (requests.ConnectionError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"isthmus serve did not become ready: {self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def manager_url(self) -> str:
        """The endpoint's GCS Manager address as Transfer advertises it (`gcs_manager_url`)."""
        return self.base_url.rstrip("/")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def sdk_environment(self) -> dict[str, str]:
        return {
            "GLOBUS_SDK_SERVICE_URL_AUTH": self.base_url,
            "GLOBUS_SDK_SERVICE_URL_GROUPS": self.base_url + "groups/",
            "GLOBUS_SDK_SERVICE_URL_TRANSFER": self.base_url,
            "GLOBUS_SDK_VERIFY_SSL": self.ca_file,
            "NO_PROXY": "127.0.0.1,localhost",
        }


@contextmanager
def server_on_fresh_database(tmp: Path, *serve_args: str) -> Iterator[LiveServer]:
    """A server in ``tmp/data`` on its own database: SQLite there, or a fresh PostgreSQL
    database when the run asks for one (see ``tests.database``); stopped and dropped after."""
    from tests.database import fresh_database_url, wants_postgres

    with fresh_database_url(tmp) as database_url:
        env = {"ISTHMUS_DATABASE_URL": database_url} if wants_postgres() else {}
        server = start_server(tmp / "data", *serve_args, **env)
        try:
            yield server
        finally:
            server.stop()


def start_server(data_dir: Path, *serve_args: str, **env: str) -> LiveServer:
    if data_dir.exists():
        shutil.rmtree(data_dir)
    # free_port() lets the port go before `serve` binds it, and in that gap another worker's
    # server or an outgoing connection may take it: then try another port.
    for attempt in range(3):
        server = LiveServer(data_dir=data_dir, port=free_port(), env=env, serve_args=serve_args)
        try:
            server.start()
        except RuntimeError:
            if attempt == 2 or "address already in use" not in server.log():
                raise
            shutil.rmtree(data_dir)
            continue
        return server
    raise AssertionError("unreachable")
