"""Shared fixtures: live servers started with the real `isthmus serve`, and users on them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser import Browser
from tests.live import LiveServer, start_server
from tests.s3_server import MotoS3, start_moto


@dataclass(frozen=True)
class User:
    username: str
    password: str
    id: str


def _new_user(server: LiveServer, prefix: str) -> User:
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    created = server.create_user(name, password, email=f"{name}@example.org",
                                 name=prefix.title())
    return User(created["username"], password, created["id"])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("isthmus")
    live = start_server(root / "data", "--access-log", str(root / "access.log"))
    yield live
    live.stop()


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """One moto S3 server for the whole run; tests make buckets of their own on it."""
    moto = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    yield moto
    moto.stop()


@dataclass(frozen=True)
class EndpointSite:
    """A server of its own whose first user owns the Connect endpoint, as `serve` told it."""

    server: LiveServer
    owner: User
    endpoint_id: str
    collection_id: str
    collection_name: str


@pytest.fixture(scope="session")
def endpoint_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndpointSite]:
    import re

    live = start_server(tmp_path_factory.mktemp("isthmus-gcs") / "data")
    try:
        owner = _new_user(live, "owner")
        printed = live.log()
        endpoint = re.search(r"Globus Connect Server endpoint: ([0-9a-f-]{36})", printed)
        collection = re.search(r'collection "([^"]+)": ([0-9a-f-]{36})', printed)
        assert endpoint and collection, printed
        yield EndpointSite(live, owner, endpoint.group(1), collection.group(2),
                           collection.group(1))
    finally:
        live.stop()


@pytest.fixture(scope="session")
def short_lived_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Access tokens live 3 seconds, so tests can watch them expire and be renewed."""
    live = start_server(tmp_path_factory.mktemp("isthmus-short") / "data",
                        ISTHMUS_ACCESS_TOKEN_LIFETIME="3")
    yield live
    live.stop()


# The upstream Isthmus's own users are alice@upstream.example, ...; downstream, its
# provider "upstream" names them <sub>@lab.example, and "upstream-named" keeps their
# preferred_username (which is in upstream.example).
UPSTREAM_LOCAL_DOMAIN = "upstream.example"
SUB_DOMAIN = "lab.example"


@dataclass(frozen=True)
class UpstreamPair:
    """Two live servers: `downstream` lets its users sign in through `upstream`."""

    upstream: LiveServer
    downstream: LiveServer
    # The upstream's client for the downstream (id and secret).
    client: dict[str, str]
    # Downstream identity-provider ids: "upstream" (sub) and "upstream-named".
    provider_id: str
    named_provider_id: str

    @property
    def callback(self) -> str:
        return self.downstream.base_url + "v2/web/oidc/callback"

    def add_provider(self, name: str, *options: str, secret: str | None = None) -> str:
        """`isthmus idp add-oidc NAME` on the downstream, for the upstream; returns its id."""
        added = self.downstream.run_json(
            "idp", "add-oidc", name, "--issuer", self.upstream.base_url,
            "--client-id", self.client["id"], "--client-secret-stdin",
            "--ca-file", self.upstream.ca_file, *options,
            stdin=(secret or self.client["secret"]) + "\n",
        )
        return str(added["id"])


@pytest.fixture(scope="session")
def upstream_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamPair]:
    tmp = tmp_path_factory.mktemp("idp")
    upstream = start_server(tmp / "upstream", ISTHMUS_LOCAL_IDP_DOMAIN=UPSTREAM_LOCAL_DOMAIN)
    try:
        downstream = start_server(tmp / "downstream")
        try:
            client = upstream.create_client(
                "Downstream Isthmus", "confidential_client",
                downstream.base_url + "v2/web/oidc/callback",
            )
            pair = UpstreamPair(upstream, downstream, client, "", "")
            provider_id = pair.add_provider("upstream", "--domain", SUB_DOMAIN,
                                            "--display-name", "Upstream Lab")
            named_id = pair.add_provider(
                "upstream-named", "--domain", UPSTREAM_LOCAL_DOMAIN,
                "--username-claim", "preferred_username", "--display-name", "Upstream Named",
            )
            yield UpstreamPair(upstream, downstream, client, provider_id, named_id)
        finally:
            downstream.stop()
    finally:
        upstream.stop()


@pytest.fixture
def sdk_env(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
    """Point the official SDK, in this process, at the session's server."""
    for key, value in server.sdk_environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GLOBUS_SDK_ENVIRONMENT", raising=False)
    return server


@pytest.fixture
def user(server: LiveServer) -> User:
    return _new_user(server, "alice")


@pytest.fixture
def browser(server: LiveServer) -> Browser:
    return Browser(server.ca_file)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def shell_environment(server: LiveServer, home: Path) -> dict[str, str]:
    """A shell's environment after `eval "$(isthmus env)"`, with HOME at ``home``.

    The CLI keeps its tokens under ~/.globus: a HOME of its own keeps the real one out of reach.
    """
    import os
    import subprocess

    from tests.live import ISTHMUS

    home.mkdir(exist_ok=True)
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("GLOBUS_", "ISTHMUS_"))}
    clean["HOME"] = str(home)
    # Evaluated as a user's shell does, so the `export` and `unset` lines mean what they say.
    dumped = subprocess.run(
        ["bash", "-c", 'eval "$("$0" env --data-dir "$1")" && env -0', ISTHMUS,
         str(server.data_dir)],
        capture_output=True, env=clean, check=True, timeout=60,
    ).stdout.decode()
    env = dict(item.split("=", 1) for item in dumped.split("\0") if "=" in item)
    assert env["GLOBUS_SDK_SERVICE_URL_AUTH"] == server.base_url
    assert env["GLOBUS_SDK_SERVICE_URL_GROUPS"] == server.base_url + "groups/"
    assert env["GLOBUS_SDK_SERVICE_URL_TRANSFER"] == server.base_url
    assert env["GLOBUS_SDK_VERIFY_SSL"] == server.ca_file
    assert "GLOBUS_SDK_ENVIRONMENT" not in env
    return env


@pytest.fixture
def isthmus_env(server: LiveServer, tmp_path: Path) -> dict[str, str]:
    """A shell's environment after `eval "$(isthmus env)"`, with a fresh HOME."""
    return shell_environment(server, tmp_path / "home")


def answer_login(server: LiveServer, process: Any, user: User) -> str:
    """Play the user at a terminal: read the authorize URL a program prints, log in and
    consent in a browser, and type the code the server shows into the program's stdin.
    Returns what the program printed up to the URL."""
    import re

    assert process.stdout is not None and process.stdin is not None
    printed: list[str] = []
    for line in process.stdout:
        printed.append(line)
        found = re.search(r"https?://\S+/v2/oauth2/authorize\?\S+", line)
        if found:
            break
    else:
        _, errors = process.communicate(timeout=60)
        raise AssertionError(f"no authorize URL was printed:\n{''.join(printed)}\n{errors}")
    browser = Browser(server.ca_file)
    location = browser.authorize(found.group(0), user.username, user.password)
    assert location.startswith(server.base_url + "v2/web/auth-code?"), location
    process.stdin.write(browser.code_from_page(location) + "\n")
    process.stdin.flush()
    return "".join(printed)


@pytest.fixture
def answer_login_prompt(server: LiveServer):  # -> Callable[[Popen[str], User], str]
    """`answer_login` on the session's server."""

    def answer(process: Any, user: User) -> str:
        return answer_login(server, process, user)

    return answer
