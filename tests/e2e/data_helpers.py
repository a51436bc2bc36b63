"""Pieces the HTTPS/WebDAV tests share: a server of their own, data tokens, and curl."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from globus_sdk import GCSClient

from tests.conftest import User, _new_user
from tests.e2e.helpers import native_login
from tests.live import LiveServer, start_server


@dataclass(frozen=True)
class DataSite:
    """A server whose first user (``owner``) owns the endpoint, and its "<host> files"."""

    server: LiveServer
    owner: User
    endpoint_id: str
    collection_id: str

    @property
    def files(self) -> Path:
        """Where the collection's files are on disk."""
        return self.server.data_dir / "files"

    @property
    def url(self) -> str:
        """The collection's ``https_url``."""
        return f"{self.server.base_url}data/{self.collection_id}"

    def home_url(self, user: User) -> str:
        return f"{self.url}/{quote(user.username)}"

    def home_dir(self, user: User) -> Path:
        return self.files / user.username

    def token(self, user: User, scopes: list[str] | None = None,
              collection_id: str | None = None) -> str:
        """An access token for the collection (its https and data_access scopes unless
        ``scopes`` says otherwise), from a login with the SDK's tutorial client."""
        collection = collection_id or self.collection_id
        tokens = native_login(self.server, user.username, user.password,
                              scopes or collection_scopes(collection))
        return str(tokens[collection]["access_token"])


def collection_scopes(collection_id: str) -> list[str]:
    scopes = GCSClient.get_gcs_collection_scopes(collection_id)
    return [str(scopes.https), str(scopes.data_access)]


def start_data_site(tmp: Path) -> Iterator[DataSite]:
    live = start_server(tmp / "data")
    try:
        owner = _new_user(live, "owner")
        printed = live.log()
        endpoint = re.search(r"Globus Connect Server endpoint: ([0-9a-f-]{36})", printed)
        collection = re.search(r'collection "[^"]+": ([0-9a-f-]{36})', printed)
        assert endpoint and collection, printed
        yield DataSite(live, owner, endpoint.group(1), collection.group(1))
    finally:
        live.stop()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def curl(server: LiveServer, token: str | None, *args: str, output: Path | None = None,
         timeout: float = 600) -> Answer:
    """Run the real curl with the server's CA and a bearer token; the final response."""
    with tempfile.TemporaryDirectory() as tmp:
        head, body = Path(tmp) / "head", output or Path(tmp) / "body"
        argv = ["curl", "-sS", "--cacert", server.ca_file, "-D", str(head), "-o", str(body)]
        if token is not None:
            argv += ["-H", f"Authorization: Bearer {token}"]
        done = subprocess.run([*argv, *args], capture_output=True, timeout=timeout,
                              check=False)
        assert done.returncode == 0, done.stderr.decode()
        status, headers = _last_response(head.read_text("latin-1"))
        content = b"" if output is not None or not body.exists() else body.read_bytes()
        return Answer(status, headers, content)


def _last_response(dump: str) -> tuple[int, dict[str, str]]:
    """The status and headers of the last response in curl's -D dump (after 100s)."""
    blocks = [block for block in re.split(r"\r?\n\r?\n", dump) if block.strip()]
    lines = blocks[-1].splitlines()
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


class OnServer(Protocol):
    @property
    def server(self) -> LiveServer: ...


def dav(site: OnServer, token: str | None, method: str, url: str, *args: str) -> Answer:
    """curl with another method (WebDAV's, or DELETE and PUT) on a site's server."""
    return curl(site.server, token, "-X", method, *args, url)


def rclone(server: LiveServer, token: str, url: str, config_dir: Path,
           *args: str) -> subprocess.CompletedProcess[str]:
    """Run Debian's rclone with its webdav backend, as remote ``isthmus:`` at ``url``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RCLONE_")}
    env.update(RCLONE_CONFIG=str(config_dir / "rclone.conf"),
               RCLONE_CONFIG_ISTHMUS_TYPE="webdav", RCLONE_CONFIG_ISTHMUS_URL=url,
               RCLONE_CONFIG_ISTHMUS_VENDOR="other", RCLONE_CONFIG_ISTHMUS_BEARER_TOKEN=token,
               NO_PROXY="127.0.0.1,localhost")
    return subprocess.run(["rclone", "--ca-cert", server.ca_file, "--retries", "1",
                           *args], capture_output=True, text=True, env=env, timeout=300,
                          check=False)


def hrefs(multistatus: str) -> list[str]:
    """The hrefs of a PROPFIND's multistatus answer, in order."""
    return re.findall(r"<D:href>([^<]*)</D:href>", multistatus)
