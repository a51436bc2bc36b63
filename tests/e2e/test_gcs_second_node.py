"""A node on a second machine: `globus-connect-server node setup` in a network namespace.

The namespace is the second host: its own network stack, its own address on a veth link
(the host keeps the other end), nothing of the host's loopback. There, with a data dir of
its own, the deployment key copied over and the deployment's PostgreSQL database, `node
setup` starts a node serving the endpoint at the namespace's address. A user's token from
the main server's Auth then reads and writes a collection's files over HTTPS through that
address, and `node list` shows both nodes.

What the namespace shares with the host is the filesystem: the collection's files (as an
NFS mount would be on a real second host) and PostgreSQL's Unix socket, which is how the
node reaches the database (the test server listens on the host's loopback only).
Needs root (namespaces, veth) and PostgreSQL; skipped otherwise, saying which is missing.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import globus_sdk
import pytest
from globus_sdk import GCSClient

from tests.conftest import User, _new_user, shell_environment
from tests.database import postgres_database, postgres_reachable
from tests.e2e.data_helpers import collection_scopes, curl
from tests.e2e.helpers import native_login, pointed_at
from tests.e2e.test_gcs_cli import GCS, created_id, gcs, manage_collections, ok
from tests.live import LiveServer, free_port, start_server

pytestmark = pytest.mark.postgres

PG_SOCKET_DIR = Path("/var/run/postgresql")


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces and veth links need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if not postgres_reachable() or not PG_SOCKET_DIR.is_dir():
        return "no PostgreSQL at 127.0.0.1:5432 with a Unix socket in /var/run/postgresql"
    return None


@dataclass(frozen=True)
class Host:
    """A network namespace with one address, linked to the host by a veth pair."""

    name: str
    address: str

    def run(self, env: dict[str, str], *args: str,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.name, GCS, *args],
                              capture_output=True, text=True, env=env, cwd=cwd,
                              stdin=subprocess.DEVNULL, timeout=120)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def second_host() -> Iterator[Host]:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    suffix = secrets.token_hex(3)
    name, outside, inside = f"isthmus-{suffix}", f"vi{suffix}a", f"vi{suffix}b"
    subnet = f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", name)
        _ip("addr", "add", f"{subnet}.1/30", "dev", outside)
        _ip("link", "set", outside, "up")
        for args in (("addr", "add", f"{subnet}.2/30", "dev", inside),
                     ("link", "set", inside, "up"), ("link", "set", "lo", "up")):
            _ip("netns", "exec", name, "ip", *args)
        yield Host(name, f"{subnet}.2")
    finally:
        # The host's end of the link goes with the namespace's.
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


@dataclass(frozen=True)
class TwoNodes:
    server: LiveServer
    owner: User
    endpoint_id: str
    first_url: str
    second_url: str
    second_ca: str
    admin_env: dict[str, str]  # the owner's machine, acting with GCS_CLI_* credentials

    @property
    def second(self) -> LiveServer:
        """What `curl` needs to trust the second host: its CA (made on that host)."""
        return LiveServer(self.server.data_dir, 0, trusted_ca=self.second_ca)


@pytest.fixture(scope="module")
def two_nodes(second_host: Host, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[TwoNodes]:
    root = tmp_path_factory.mktemp("second-node")
    with postgres_database() as database:
        tcp = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
        server = start_server(root / "data", ISTHMUS_DATABASE_URL=tcp)
        try:
            yield from _nodes(server, second_host, root, database)
        finally:
            server.stop()


def _nodes(server: LiveServer, host: Host, root: Path, database: str) -> Iterator[TwoNodes]:
    owner = _new_user(server, "nodeowner")
    env = {**shell_environment(server, root / "home"), "ISTHMUS_DATA_DIR": str(server.data_dir),
           "ISTHMUS_DATABASE_URL": server.env["ISTHMUS_DATABASE_URL"]}
    workdir = root / "work"
    workdir.mkdir()
    setup = ok(gcs(env, "endpoint", "setup", "Two hosts", "--organization", "Lab",
                   "--owner", owner.username, cwd=workdir))
    endpoint_id = setup.split("Created endpoint ")[1].split()[0]
    first_port, second_port = free_port(), free_port()
    ok(gcs(env, "node", "setup", "--port", str(first_port), cwd=workdir))
    # The second host: its own data dir, the key copied over, the same database.
    elsewhere = root / "second-host"
    elsewhere.mkdir()
    shutil.copy(workdir / "deployment-key.json", elsewhere / "deployment-key.json")
    remote = {**env, "ISTHMUS_DATA_DIR": str(elsewhere / "data"), "HOME": str(elsewhere),
              "ISTHMUS_DATABASE_URL": f"postgresql+psycopg://postgres@/{database}"
                                      f"?host={PG_SOCKET_DIR}"}
    node_file = elsewhere / "data" / "globus-connect-server" / "node.json"
    try:
        started = host.run(remote, "node", "setup", "--ip-address", host.address,
                           "--port", str(second_port), cwd=elsewhere)
        second_url = f"https://{host.address}:{second_port}"
        assert f"is serving at {second_url}" in ok(started)
        robot = server.create_client("node automation", "client_identity")
        tokens = native_login(server, owner.username, owner.password,
                              [manage_collections(endpoint_id)])
        with pointed_at(server):
            GCSClient(f"https://127.0.0.1:{first_port}",
                      authorizer=globus_sdk.AccessTokenAuthorizer(
                          tokens[endpoint_id]["access_token"])).create_role(
                globus_sdk.GCSRoleDocument(role="administrator",
                                           principal=f"urn:globus:auth:identity:{robot['id']}"))
        admin_env = {**env, "GCS_CLI_CLIENT_ID": robot["id"],
                     "GCS_CLI_CLIENT_SECRET": robot["secret"],
                     "GCS_CLI_ENDPOINT_ID": endpoint_id,
                     "ISTHMUS_DATA_DIR": str(root / "admin-machine")}
        yield TwoNodes(server, owner, endpoint_id, f"https://127.0.0.1:{first_port}",
                       second_url, json.loads(node_file.read_text())["ca_file"], admin_env)
    finally:
        for machine, run in ((remote, host.run), (env, gcs)):
            stopped = run(machine, "node", "cleanup")
            if stopped.returncode != 0:  # never leave a node process behind
                _kill_node(Path(machine["ISTHMUS_DATA_DIR"]))


def _kill_node(data_dir: Path) -> None:
    node_file = data_dir / "globus-connect-server" / "node.json"
    if node_file.exists() and (pid := json.loads(node_file.read_text()).get("pid")):
        os.kill(pid, 9)


def test_node_list_shows_both_hosts(two_nodes: TwoNodes, second_host: Host) -> None:
    nodes = json.loads(ok(gcs(two_nodes.admin_env, "node", "list", "-F", "json")))
    assert sorted(address for node in nodes for address in node["ip_addresses"]) == sorted([
        "127.0.0.1", second_host.address])
    assert {node["status"] for node in nodes} == {"active"}
    # The second host answers for the same endpoint.
    info = curl(two_nodes.second, None, f"{two_nodes.second_url}/api/info")
    assert json.loads(info.text)["data"][0]["endpoint_id"] == two_nodes.endpoint_id


def test_the_second_host_serves_a_collection_over_https(
    two_nodes: TwoNodes, tmp_path: Path,
) -> None:
    env = two_nodes.admin_env
    shared = tmp_path / "projects"
    shared.mkdir()
    mapping = {"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": [
        {"source": "{username}", "match": r".*@isthmus\.local", "output": getpass.getuser()}]}
    (tmp_path / "mapping.json").write_text(json.dumps(mapping))
    gateway_id = created_id("Storage Gateway", ok(gcs(
        env, "storage-gateway", "create", "posix", "Shared disk", "--domain", "isthmus.local",
        "--identity-mapping", f"file:{tmp_path / 'mapping.json'}")))
    collection_id = created_id("Collection", ok(gcs(
        env, "collection", "create", gateway_id, str(shared), "Shared projects")))
    token = native_login(two_nodes.server, two_nodes.owner.username, two_nodes.owner.password,
                         collection_scopes(collection_id))[collection_id]["access_token"]

    # Written through the second host, on the disk both hosts share, read from either.
    upload = tmp_path / "upload.txt"
    upload.write_text("from the second host\n")
    url = f"{two_nodes.second_url}/data/{collection_id}/notes.txt"
    second = two_nodes.second
    put = curl(second, token, "-T", str(upload), url)
    assert put.status in (200, 201, 204), put.text
    assert (shared / "notes.txt").read_text() == "from the second host\n"
    got = curl(second, token, url)
    assert (got.status, got.text) == (200, "from the second host\n")
    first = curl(two_nodes.server, token, f"{two_nodes.first_url}/data/{collection_id}/notes.txt")
    assert (first.status, first.text) == (200, "from the second host\n")
    # Without the token, the second host lets nothing through.
    refused = curl(second, "not-a-token", url)
    assert refused.status == 401
