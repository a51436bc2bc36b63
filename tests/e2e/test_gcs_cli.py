"""The `globus-connect-server` command, run the way a GCS administrator scripts it.

From a fresh data dir: `endpoint setup` makes a second endpoint of the deployment and its
deployment key, `node setup` serves it from a node process of its own, the administrator
logs in (pasting the code, as a person does) or acts as a client with `GCS_CLI_*`
credentials, and makes a POSIX storage gateway with an identity mapping, a collection and
a role. The official `GCSClient` and globus-cli then see the same gateway and collection.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
from globus_sdk import GCSClient

from tests.conftest import User, _new_user, answer_login, shell_environment
from tests.database import fresh_database_url, wants_postgres
from tests.e2e.helpers import TRANSFER_ALL, cli_login, globus, native_login, pointed_at
from tests.e2e.test_groups import groups_client
from tests.live import LiveServer, free_port, start_server
from tests.sdk3.test_seeds_sdk3 import sdk3_python  # noqa: F401 (a fixture)

GCS = str(Path(sys.executable).with_name("globus-connect-server"))
POSIX = "145812c8-decc-41f1-83cf-bb2a85a2a70b"
IDENTITY_MAPPING = {
    "DATA_TYPE": "expression_identity_mapping#1.0.0",
    "mappings": [{"source": "{username}", "match": r"(.*)@isthmus\.local",
                  "output": "{0}", "ignore_case": False, "literal": False}],
}
# As the Manager keeps it: each rule tagged with its own DATA_TYPE.
STORED_MAPPING = {**IDENTITY_MAPPING, "mappings": [
    {"DATA_TYPE": "expression_identity_mapping_rule#1.0.0", **rule}
    for rule in IDENTITY_MAPPING["mappings"]]}


def gcs(env: dict[str, str], *args: str, cwd: Path | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GCS, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          timeout=120)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}: {result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def created_id(label: str, printed: str) -> str:
    found = re.fullmatch(rf"{label} ID: ([0-9a-f-]{{36}})\n", printed)
    assert found, printed
    return found.group(1)


@dataclass
class Deployment:
    """A fresh all-in-one server, and a second endpoint served by a node of its own."""

    server: LiveServer
    admin: User
    workdir: Path
    env: dict[str, str]  # the administrator's shell, on the server's machine
    endpoint_id: str
    node_url: str

    @property
    def key_file(self) -> Path:
        return self.workdir / "deployment-key.json"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("gcs-cli")
    with fresh_database_url(root) as database_url:
        # On PostgreSQL (-m postgres) the node shares the server's database as a node on
        # another machine would; on SQLite, the data dir's file.
        shared = {"ISTHMUS_DATABASE_URL": database_url} if wants_postgres() else {}
        yield from _deployment(root, shared)


def _deployment(root: Path, shared: dict[str, str],
                host: str = "127.0.0.1") -> Iterator[Deployment]:
    """``host``: the DNS name the node is reached by (its public URL's)."""
    server = start_server(root / "data", **shared)
    try:
        admin = _new_user(server, "admin")
        env = {**shell_environment(server, root / "home"),
               "ISTHMUS_DATA_DIR": str(server.data_dir), **shared}
        workdir = root / "work"
        workdir.mkdir()
        setup = gcs(env, "endpoint", "setup", "Lab endpoint", "--organization", "Lab",
                    "--owner", admin.username, "--contact-email", "lab@example.org",
                    "--description", "The lab's second endpoint", cwd=workdir)
        endpoint_id = re.search(r"Created endpoint ([0-9a-f-]{36})", ok(setup))
        assert endpoint_id, setup.stdout
        port = free_port()
        try:
            node_url = f"https://{host}:{port}"
            node = gcs(env, "node", "setup", "--port", str(port), "--public-url", node_url,
                       cwd=workdir)
            assert f"serving at {node_url}" in ok(node)
            yield Deployment(server, admin, workdir, env, endpoint_id.group(1), node_url)
        finally:
            _stop_node(env, server.data_dir)
    finally:
        server.stop()


def _stop_node(env: dict[str, str], data_dir: Path) -> None:
    node_file = data_dir / "globus-connect-server" / "node.json"
    if not node_file.exists():
        return
    pid = json.loads(node_file.read_text()).get("pid")
    cleanup = gcs(env, "node", "cleanup")
    if cleanup.returncode != 0 and pid:  # never leave a node process behind
        os.kill(pid, 9)


@pytest.fixture(scope="module")
def logged_in(deployment: Deployment) -> str:
    """`login --no-local-server` on the node's machine, the admin typing the code."""
    return login_as(deployment, deployment.admin, deployment.env, "login", "--no-local-server")


def login_as(deployment: Deployment, user: User, env: dict[str, str], *args: str) -> str:
    """A `globus-connect-server` command that runs a login flow, ``user`` at the keyboard."""
    process = subprocess.Popen([GCS, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env,
                               cwd=deployment.workdir)
    try:
        printed = answer_login(deployment.server, process, user)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, f"{printed}{out}\n{err}"
    return printed + out


@dataclass
class LabSetup:
    gateway_id: str
    collection_id: str
    member: User


@pytest.fixture(scope="module")
def lab(deployment: Deployment, logged_in: str) -> LabSetup:
    """The administrator's script after login: a gateway, a collection, a role."""
    env, cwd = deployment.env, deployment.workdir
    (cwd / "mapping.json").write_text(json.dumps(IDENTITY_MAPPING))
    gateway_id = created_id("Storage Gateway", ok(gcs(
        env, "storage-gateway", "create", "posix", "Lab POSIX", "--domain", "isthmus.local",
        "--identity-mapping", "file:mapping.json", "--user-deny", "root",
        "--restrict-paths", '{"read_write": ["/projects"], "read": [], "none": []}',
        cwd=cwd)))
    collection_id = created_id("Collection", ok(gcs(
        env, "collection", "create", gateway_id, "/projects", "Lab projects",
        "--description", "Project data", "--allow-guest-collections",
        "--keywords", "lab,projects", cwd=cwd)))
    member = _new_user(deployment.server, "member")
    created_id("Role", ok(gcs(env, "collection", "role", "create", collection_id,
                              "access_manager", member.username, cwd=cwd)))
    return LabSetup(gateway_id, collection_id, member)


def manage_collections(endpoint_id: str) -> str:
    return str(GCSClient.get_gcs_endpoint_scopes(endpoint_id).manage_collections)


# --- the administrator's script ------------------------------------------------------


@pytest.mark.postgres
def test_endpoint_setup_writes_a_private_deployment_key_and_registers_the_endpoint(
    deployment: Deployment,
) -> None:
    key = json.loads(deployment.key_file.read_text())
    assert key["DATA_TYPE"] == "deployment_key#1.0.0"
    assert key["endpoint_id"] == key["client_id"] == deployment.endpoint_id
    assert key["auth_url"] == deployment.server.base_url
    assert stat.S_IMODE(deployment.key_file.stat().st_mode) == 0o600
    # The endpoint is an Auth client of its own, and its secret works there.
    clients = deployment.server.run_json("client", "list")["clients"]
    assert deployment.endpoint_id in {client["id"] for client in clients}
    with pointed_at(deployment.server):
        endpoint_client = globus_sdk.ConfidentialAppAuthClient(key["client_id"], key["secret"])
        assert endpoint_client.oauth2_token_introspect("not-a-token")["active"] is False
    # A second setup never overwrites the key.
    again = gcs(deployment.env, "endpoint", "setup", "Other", "--organization", "Lab",
                "--owner", deployment.admin.username, cwd=deployment.workdir)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "already exists" in again.stderr


@pytest.mark.postgres
def test_login_as_a_person_keeps_tokens_readable_by_their_owner_only(
    deployment: Deployment, logged_in: str,
) -> None:
    assert "/v2/oauth2/authorize?" in logged_in
    assert f"logged into GCS endpoint {deployment.endpoint_id}" in logged_in
    assert deployment.node_url in logged_in
    home = Path(deployment.env["HOME"])
    tokens = home / ".globus-connect-server" / "tokens.json"
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert stat.S_IMODE(tokens.parent.stat().st_mode) == 0o700
    stored = json.loads(tokens.read_text())["data"]["user"]
    assert {"auth.globus.org", "transfer.api.globus.org", deployment.endpoint_id} <= set(
        stored)
    assert stored[deployment.endpoint_id]["refresh_token"]
    assert ok(gcs(deployment.env, "whoami")).strip() == deployment.admin.username
    shown = json.loads(ok(gcs(deployment.env, "session", "show", "-F", "json")))
    assert [item["id"] for item in shown["authentications"]] == [deployment.admin.id]


@pytest.mark.postgres
def test_storage_gateway_collection_and_role_from_the_script(
    deployment: Deployment, lab: LabSetup,
) -> None:
    env = deployment.env
    gateway = json.loads(ok(gcs(env, "storage-gateway", "show", lab.gateway_id,
                                "--include-private-policies", "-F", "json")))
    assert gateway["identity_mappings"] == [STORED_MAPPING]
    assert gateway["allowed_domains"] == ["isthmus.local"]
    assert gateway["users_deny"] == ["root"]
    assert gateway["restrict_paths"]["read_write"] == ["/projects"]
    listed = ok(gcs(env, "storage-gateway", "list"))
    assert re.search(rf"{lab.gateway_id} \| Lab POSIX +\| POSIX ", listed), listed

    collection = json.loads(ok(gcs(env, "collection", "show", lab.collection_id, "-F",
                                   "json")))
    assert collection["collection_base_path"] == "/projects"
    assert collection["keywords"] == ["lab", "projects"]
    assert collection["allow_guest_collections"] is True
    assert collection["identity_id"] == deployment.admin.id
    table = ok(gcs(env, "collection", "list"))
    assert lab.collection_id in table and "Lab projects" in table
    assert deployment.admin.username in table  # the owner column names the identity

    roles = json.loads(ok(gcs(env, "collection", "role", "list", lab.collection_id,
                              "--all", "-F", "json")))
    assert {(role["role"], role["principal"]) for role in roles} == {
        ("administrator", f"urn:globus:auth:identity:{deployment.admin.id}"),
        ("access_manager", f"urn:globus:auth:identity:{lab.member.id}"),
    }
    text = ok(gcs(env, "collection", "role", "list", lab.collection_id, "--all"))
    assert lab.member.username in text


def test_endpoint_show_as_json_and_updates(deployment: Deployment, logged_in: str) -> None:
    env = deployment.env
    shown = json.loads(ok(gcs(env, "endpoint", "show", "--format", "json")))
    assert shown["DATA_TYPE"].startswith("endpoint#1.")
    assert shown["id"] == deployment.endpoint_id
    assert shown["display_name"] == "Lab endpoint"
    assert shown["organization"] == "Lab"
    assert shown["contact_email"] == "lab@example.org"
    assert shown["gcs_manager_url"] == deployment.node_url
    updated = ok(gcs(env, "endpoint", "update", "--department", "Physics",
                     "--keywords", "lab,physics"))
    assert updated.strip() == f"Message: Updated endpoint {deployment.endpoint_id}"
    text = ok(gcs(env, "endpoint", "show"))
    assert re.search(r"^Department: +Physics$", text, re.MULTILINE), text
    assert re.search(r"^Keywords: +lab, physics$", text, re.MULTILINE), text
    ok(gcs(env, "endpoint", "set-subscription-id", "DEFAULT"))
    assert json.loads(ok(gcs(env, "endpoint", "show", "-F", "json")))[
        "subscription_id"] == "DEFAULT"
    ok(gcs(env, "endpoint", "set-subscription-id", "null"))
    nodes = json.loads(ok(gcs(env, "node", "list", "-F", "json")))
    assert [(node["DATA_TYPE"], node["status"], node["ip_addresses"]) for node in nodes] == [
        ("node#1.3.0", "active", ["127.0.0.1"])]


@pytest.mark.postgres
def test_service_credentials_need_no_login(
    deployment: Deployment, lab: LabSetup, tmp_path: Path,
) -> None:
    """A client holding an endpoint role drives the CLI on another machine: no login, no
    local install; the Manager is found through Transfer's gcs_manager_url."""
    robot = deployment.server.create_client("lab automation", "client_identity")
    client_identity = f"{robot['id']}@clients.auth.globus.org"
    ok(gcs(deployment.env, "endpoint", "role", "create", "administrator", client_identity))
    env = {**shell_environment(deployment.server, tmp_path / "robot-home"),
           "ISTHMUS_DATA_DIR": str(tmp_path / "elsewhere"),
           "GCS_CLI_CLIENT_ID": robot["id"], "GCS_CLI_CLIENT_SECRET": robot["secret"],
           "GCS_CLI_ENDPOINT_ID": deployment.endpoint_id}
    assert deployment.node_url in ok(gcs(env, "login"))
    assert ok(gcs(env, "whoami")).strip() == client_identity
    collections = json.loads(ok(gcs(env, "collection", "list", "-F", "json")))
    assert lab.collection_id in {item["id"] for item in collections}
    gateways = json.loads(ok(gcs(env, "storage-gateway", "list", "-F", "json")))
    assert lab.gateway_id in {item["id"] for item in gateways}
    made = created_id("Collection", ok(gcs(
        env, "collection", "create", lab.gateway_id, "/projects/robot", "Robot output")))
    ok(gcs(env, "collection", "update", made, "--no-delete-protected"))
    assert f"Deleted Collection {made}" in ok(gcs(env, "collection", "delete", made))
    assert not (Path(env["HOME"]) / ".globus-connect-server" / "tokens.json").exists()

    wrong = gcs({**env, "GCS_CLI_CLIENT_SECRET": "not-the-secret"}, "collection", "list")
    assert wrong.returncode == 4
    assert wrong.stderr.count("\n") == 1 and "GCS_CLI_CLIENT_SECRET" in wrong.stderr


@pytest.mark.postgres
def test_gcs_client_and_globus_cli_see_the_same_gateway_and_collection(
    deployment: Deployment, lab: LabSetup, tmp_path: Path,
) -> None:
    server = deployment.server
    tokens = native_login(server, deployment.admin.username, deployment.admin.password,
                          [manage_collections(deployment.endpoint_id), TRANSFER_ALL])
    with pointed_at(server):
        transfer = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens["transfer.api.globus.org"]["access_token"]))
        advertised = transfer.get_endpoint(deployment.endpoint_id)
        assert advertised["entity_type"] == "GCSv5_endpoint"
        assert advertised["gcs_manager_url"] == deployment.node_url
        client = GCSClient(advertised["gcs_manager_url"],
                           authorizer=globus_sdk.AccessTokenAuthorizer(
                               tokens[deployment.endpoint_id]["access_token"]))
        assert client.get_gcs_info()["endpoint_id"] == deployment.endpoint_id
        gateways = {item["id"]: item for item in client.get_storage_gateway_list()}
        collections = {item["id"]: item for item in client.get_collection_list()}
    gateway = gateways[lab.gateway_id]
    assert gateway["DATA_TYPE"].startswith("storage_gateway#1.")
    assert gateway["connector_id"] == POSIX
    assert gateway["identity_mappings"] == [STORED_MAPPING]
    collection = collections[lab.collection_id]
    assert collection["DATA_TYPE"].startswith("collection#1.")
    assert collection["storage_gateway_id"] == lab.gateway_id
    assert collection["display_name"] == "Lab projects"
    # The all-in-one's own endpoint and collection are another endpoint's, not this one's.
    assert set(collections) == {lab.collection_id}

    env = shell_environment(server, tmp_path / "cli-home")
    cli_login(server, deployment.admin, env, "--gcs", deployment.endpoint_id)
    listed = globus(env, "gcs", "collection", "list", deployment.endpoint_id, "-F", "json")
    assert listed.returncode == 0, listed.stderr
    assert lab.collection_id in {item["id"] for item in json.loads(listed.stdout)["DATA"]}
    table = globus(env, "gcs", "storage-gateway", "list", deployment.endpoint_id)
    assert table.returncode == 0, table.stderr
    assert lab.gateway_id in table.stdout and "Lab POSIX" in table.stdout
    shown = globus(env, "endpoint", "show", deployment.endpoint_id)
    assert shown.returncode == 0, shown.stderr
    assert "Lab endpoint" in shown.stdout and deployment.admin.username in shown.stdout


# --- failures are one line with a meaningful exit status -----------------------------------


@pytest.mark.parametrize(("args", "status", "fragment"), [
    (("collection", "create", "--bogus"), 2, "No such option '--bogus'"),
    (("collection", "show"), 2, "Missing argument 'COLLECTION_ID'"),
    (("endpoint", "show", "--format", "xml"), 2, "'xml' is not one of"),
    (("collection", "show", "not-a-uuid"), 2, "COLLECTION_ID must be a UUID"),
    (("endpoint", "update"), 2, "Nothing to change"),
    (("storage-gateway", "create", "posix", "No domain"), 2, "--domain"),
    (("endpoint", "role", "create", "owner", "someone"), 2, "'owner' is not one of"),
    (("storage-gateway", "create", "box", "Drive", "--domain", "x"), 3,
     "no box connector; it has posix, s3, activescale, webdav"),
    (("storage-gateway", "update", "google-drive", str(uuid.uuid4())), 3,
     "no google-drive connector; it has posix, s3, activescale, webdav"),
    (("storage-gateway", "create", "webdav", "Upstream"), 2, "Missing option '--webdav-url'"),
    (("user-credentials", "oauth-create", str(uuid.uuid4())), 2,
     "Missing option '--globus-identity'"),
    (("storage-gateway", "create", "s3", "Bucket"), 2, "--domain"),
    (("user-credentials", "s3-keys-update", str(uuid.uuid4()), "--s3-key-id", "k"), 2,
     "--path-prefix or --s3-secret-key"),
    (("oidc", "update"), 2, "Nothing to change: give --display-name or --pam-service"),
    (("audit", "query", "--start", "yesterday"), 2, "ISO 8601"),
    (("endpoint", "domain", "create", "data.example.org"), 2,
     "Missing option '--certificate-file'"),
])
def test_bad_command_lines_fail_in_one_line(
    deployment: Deployment, logged_in: str, args: tuple[str, ...], status: int, fragment: str,
) -> None:
    result = gcs(deployment.env, *args)
    assert result.returncode == status, result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, \
        result.stderr
    assert fragment in result.stderr
    assert result.stdout == ""


def test_service_refusals_and_missing_logins_are_one_line(
    deployment: Deployment, lab: LabSetup, tmp_path: Path,
) -> None:
    missing = gcs(deployment.env, "collection", "show", str(uuid.uuid4()))
    assert missing.returncode == 1
    assert re.fullmatch(r"Error: Collection \S+ not found \(404 not_found\)\n",
                        missing.stderr), missing.stderr
    in_use = gcs(deployment.env, "storage-gateway", "delete", lab.gateway_id)
    assert in_use.returncode == 1 and "409 conflict" in in_use.stderr

    stranger = {**shell_environment(deployment.server, tmp_path / "stranger"),
                "ISTHMUS_DATA_DIR": str(tmp_path / "nowhere")}
    nobody = gcs(stranger, "endpoint", "show")
    assert nobody.returncode == 4 and "login ENDPOINT_ID" in nobody.stderr
    not_yet = gcs({**stranger, "GCS_CLI_ENDPOINT_ID": deployment.endpoint_id},
                  "endpoint", "show")
    assert not_yet.returncode == 4
    assert f"login {deployment.endpoint_id}" in not_yet.stderr
    assert not_yet.stderr.count("\n") == 1


def test_isthmus_connect_is_the_same_command(deployment: Deployment, logged_in: str) -> None:
    from tests.live import ISTHMUS

    shown = subprocess.run([ISTHMUS, "connect", "endpoint", "show", "-F", "json"],
                           capture_output=True, text=True, env=deployment.env, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == deployment.endpoint_id
    bad = subprocess.run([ISTHMUS, "connect", "node", "list", "--bogus"],
                         capture_output=True, text=True, env=deployment.env, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


@pytest.mark.postgres
def test_endpoint_cleanup_undoes_setup(deployment: Deployment, tmp_path: Path) -> None:
    env = deployment.env
    setup = ok(gcs(env, "endpoint", "setup", "Short-lived", "--organization", "Lab",
                   "--owner", deployment.admin.username, "-d", "short.json", "-F", "json",
                   cwd=tmp_path))
    endpoint_id = json.loads(setup)["endpoint_id"]
    tokens = native_login(deployment.server, deployment.admin.username,
                          deployment.admin.password, [TRANSFER_ALL])
    with pointed_at(deployment.server):
        transfer = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens["transfer.api.globus.org"]["access_token"]))
        assert transfer.get_endpoint(endpoint_id)["display_name"] == "Short-lived"
        refused = gcs(env, "endpoint", "cleanup", "-d", "short.json", cwd=tmp_path)
        assert refused.returncode == 2 and "--agree-to-delete-endpoint" in refused.stderr
        ok(gcs(env, "endpoint", "cleanup", "-d", "short.json", "--agree-to-delete-endpoint",
               cwd=tmp_path))
        with pytest.raises(globus_sdk.TransferAPIError) as gone:
            transfer.get_endpoint(endpoint_id)
        assert gone.value.code == "EndpointDeleted"
    clients = deployment.server.run_json("client", "list")["clients"]
    assert endpoint_id not in {client["id"] for client in clients}
    again = gcs(env, "endpoint", "cleanup", "-d", "short.json", "--agree-to-delete-endpoint",
                cwd=tmp_path)
    assert again.returncode == 1 and "not found" in again.stderr


def test_every_group_and_command_has_help() -> None:
    from click.testing import CliRunner

    from isthmus.gcs_cli.main import cli

    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    paths = list(walk(cli, []))
    assert ["endpoint", "setup"] in paths and ["collection", "role", "create"] in paths
    runner = CliRunner()
    for path in paths:
        shown = runner.invoke(cli, [*path, "--help"], prog_name="globus-connect-server")
        assert shown.exit_code == 0, (path, shown.output)
        assert shown.output.startswith("Usage: globus-connect-server"), path
        assert "-F, --format" in shown.output and "--version" in shown.output


@pytest.mark.postgres
def test_node_and_collection_administration_commands(
    deployment: Deployment, lab: LabSetup, tmp_path: Path,
) -> None:
    env = deployment.env
    export = tmp_path / "spare-node.json"
    spare = created_id("Node", ok(gcs(env, "node", "create", "--ip-address", "192.0.2.10",
                                      "--export-node", str(export))))
    assert json.loads(export.read_text())["node_id"] == spare
    assert f"Updated Node {spare}" in ok(gcs(env, "node", "disable", spare))
    shown = ok(gcs(env, "node", "show", spare))
    assert re.search(r"^Status: +inactive$", shown, re.MULTILINE), shown
    ok(gcs(env, "node", "update", spare, "--incoming-port-range", "50000", "50500"))
    assert json.loads(ok(gcs(env, "node", "show", spare, "-F", "json")))[
        "incoming_port_range"] == [50000, 50500]
    assert f"Deleted Node {spare}" in ok(gcs(env, "node", "delete", spare))

    checked = gcs(env, "collection", "check", lab.collection_id)
    # /projects lies under the gateway's root "/", which this machine has no /projects in.
    assert checked.returncode == 1 and "/projects does not exist" in checked.stdout
    assert checked.stderr == "Error: 1 collection(s) have problems\n"

    ok(gcs(env, "collection", "set-owner-string", lab.collection_id, deployment.admin.username))
    tokens = native_login(deployment.server, deployment.admin.username,
                          deployment.admin.password, [TRANSFER_ALL])
    with pointed_at(deployment.server):
        transfer = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens["transfer.api.globus.org"]["access_token"]))
        assert transfer.get_endpoint(lab.collection_id)["owner_string"] == \
            deployment.admin.username
        ok(gcs(env, "collection", "reset-owner-string", lab.collection_id))
        assert transfer.get_endpoint(lab.collection_id)["owner_string"] == \
            f"{deployment.endpoint_id}@clients.auth.globus.org"
    ok(gcs(env, "collection", "set-subscription-admin-verified", lab.collection_id, "true"))
    assert json.loads(ok(gcs(env, "collection", "show", lab.collection_id, "-F", "json")))[
        "subscription_admin_verified"] is True


def test_sharing_policies_on_the_manager(deployment: Deployment, lab: LabSetup) -> None:
    """create, list (all, and one account's), show and delete through /api/sharing_policies,
    and the same policy as the official GCSClient reads it."""
    env = deployment.env
    restrict = '{"read": ["/projects/shared"], "none": ["/"]}'
    for_alice = created_id("Sharing Policy", ok(gcs(
        env, "sharing-policy", "create", lab.collection_id,
        "--sharing-restrict-paths", restrict, "--user", "alice")))
    for_everyone = created_id("Sharing Policy", ok(gcs(
        env, "sharing-policy", "create", lab.collection_id,
        "--sharing-restrict-paths", '{"read_write": ["/projects"]}')))

    listed = json.loads(ok(gcs(env, "sharing-policy", "list", lab.collection_id,
                               "-F", "json")))
    assert [item["id"] for item in listed] == [for_alice, for_everyone]
    assert listed[0]["users"] == ["alice"] and listed[1]["users"] is None
    only_bob = json.loads(ok(gcs(env, "sharing-policy", "list", lab.collection_id,
                                 "--username", "bob", "-F", "json")))
    assert [item["id"] for item in only_bob] == [for_everyone]
    table = ok(gcs(env, "sharing-policy", "list", lab.collection_id))
    assert for_alice in table and for_everyone in table

    shown = ok(gcs(env, "sharing-policy", "show", for_alice))
    assert re.search(rf"^Collection ID: +{lab.collection_id}$", shown, re.MULTILINE), shown
    assert "/projects/shared" in shown
    tokens = native_login(deployment.server, deployment.admin.username,
                          deployment.admin.password, [manage_collections(deployment.endpoint_id)])
    with pointed_at(deployment.server):
        client = GCSClient(deployment.node_url, authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens[deployment.endpoint_id]["access_token"]))
        stored = client.get(f"sharing_policies/{for_alice}")["data"][0]
    assert stored["DATA_TYPE"] == "sharing_policy#1.0.0"
    assert stored["sharing_restrict_paths"]["read"] == ["/projects/shared"]

    assert f"Deleted Sharing Policy {for_alice}" in ok(gcs(
        env, "sharing-policy", "delete", for_alice))
    gone = gcs(env, "sharing-policy", "show", for_alice)
    assert gone.returncode == 1 and gone.stderr.count("\n") == 1 and "404" in gone.stderr
    bad = gcs(env, "sharing-policy", "create", lab.collection_id,
              "--sharing-restrict-paths", '{"read": "not a list"}')
    assert bad.returncode == 1 and bad.stderr.startswith("Error: ")
    ok(gcs(env, "sharing-policy", "delete", for_everyone))
    assert ok(gcs(env, "sharing-policy", "list", lab.collection_id)).strip() == \
        "No sharing policies."


def test_session_consent_update_and_logout(
    deployment: Deployment, lab: LabSetup, tmp_path: Path,
) -> None:
    """In a home of its own: log in, consent to data_access on a collection, authenticate
    again, log out (the tokens are revoked, not only forgotten)."""
    env = {**deployment.env, "HOME": str(tmp_path / "home")}
    login_as(deployment, deployment.admin, env, "login", deployment.endpoint_id,
             "--no-local-server")
    before = json.loads(ok(gcs(env, "session", "show", "-F", "json")))["authentications"]

    consented = login_as(deployment, deployment.admin, env, "session", "consent",
                         "--collection", lab.collection_id, "--no-local-server")
    dependent = (f"urn:globus:auth:scope:{deployment.endpoint_id}:manage_collections"
                 f"[*https://auth.globus.org/scopes/{lab.collection_id}/data_access]")
    assert dependent in consented
    state = json.loads((tmp_path / "home" / ".globus-connect-server" / "state.json")
                       .read_text())
    assert state["consents"] == {deployment.endpoint_id: [dependent]}
    # Later commands ask for that consent too, and have it.
    ok(gcs(env, "collection", "list"))

    updated = login_as(deployment, deployment.admin, env, "session", "update",
                       deployment.admin.username, "--no-local-server")
    assert "prompt=login" in updated and deployment.admin.id in updated
    after = json.loads(ok(gcs(env, "session", "show", "-F", "json")))["authentications"]
    assert after[0]["auth_time"] >= before[0]["auth_time"]
    stranger = gcs(env, "session", "update", "nobody@example.org")
    assert stranger.returncode == 2 and "not one of your linked identities" in stranger.stderr

    tokens = json.loads((tmp_path / "home" / ".globus-connect-server" / "tokens.json")
                        .read_text())["data"]["user"][deployment.endpoint_id]
    assert ok(gcs(env, "logout")).strip() == "You have successfully logged out."
    with pointed_at(deployment.server):
        introspecting = globus_sdk.ConfidentialAppAuthClient(
            *(json.loads(deployment.key_file.read_text())[key] for key in ("client_id",
                                                                            "secret")))
        assert introspecting.oauth2_token_introspect(tokens["access_token"])["active"] is False
    gone = gcs(env, "whoami")
    assert gone.returncode == 4 and "login" in gone.stderr


def test_a_collection_role_for_a_group_reaches_its_members(
    deployment: Deployment, lab: LabSetup,
) -> None:
    """`collection role create ... --principal-type group` with a group made through the
    Groups API: its member administers the collection on the node's Manager API."""
    curator = _new_user(deployment.server, "curator")
    with pointed_at(deployment.server):
        groups = globus_sdk.GroupsManager(groups_client(deployment.server, deployment.admin))
        group_id = groups.create_group("Lab curators", "who curates the projects")["id"]
        groups.add_member(group_id, curator.id)
        tokens = native_login(deployment.server, curator.username, curator.password,
                              [manage_collections(deployment.endpoint_id)])
        curator_gcs = GCSClient(deployment.node_url, authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens[deployment.endpoint_id]["access_token"]))
        with pytest.raises(globus_sdk.GCSAPIError) as before:
            curator_gcs.get_role_list(lab.collection_id, include="all_roles")
        assert before.value.http_status == 404  # a private collection, to him
        role_id = created_id("Role", ok(gcs(
            deployment.env, "collection", "role", "create", lab.collection_id,
            "administrator", group_id, "--principal-type", "group")))
        try:
            shown = json.loads(ok(gcs(deployment.env, "collection", "role", "show", role_id,
                                      "-F", "json")))
            assert shown["principal"] == f"urn:globus:groups:id:{group_id}"
            listed = curator_gcs.get_role_list(lab.collection_id, include="all_roles")
            assert role_id in {role["id"] for role in listed}
        finally:
            ok(gcs(deployment.env, "collection", "role", "delete", role_id))
        with pytest.raises(globus_sdk.GCSAPIError) as after:
            curator_gcs.get_role_list(lab.collection_id, include="all_roles")
        assert after.value.http_status == 404


def test_auth_policies_through_auth(deployment: Deployment, logged_in: str) -> None:
    env = deployment.env
    none_yet = gcs(env, "auth-policy", "create", "--display-name", "Campus only")
    assert none_yet.returncode == 2 and "--project-id" in none_yet.stderr
    tokens = native_login(deployment.server, deployment.admin.username,
                          deployment.admin.password,
                          ["urn:globus:auth:scope:auth.globus.org:manage_projects"])
    with pointed_at(deployment.server):
        auth = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens["auth.globus.org"]["access_token"]))
        project_id = auth.create_project("Lab endpoint", "lab@example.org",
                                         admin_ids=[deployment.admin.id])["project"]["id"]
    policy_id = created_id("Auth Policy", ok(gcs(
        env, "auth-policy", "create", "--display-name", "Campus only",
        "--description", "Lab members", "--include", "isthmus.local")))
    shown = json.loads(ok(gcs(env, "auth-policy", "show", policy_id, "-F", "json")))
    assert shown["project_id"] == project_id
    assert shown["domain_constraints_include"] == ["isthmus.local"]
    assert policy_id in ok(gcs(env, "auth-policy", "list"))
    ok(gcs(env, "auth-policy", "update", policy_id, "--require-mfa",
           "--exclude", "example.org"))
    shown = json.loads(ok(gcs(env, "auth-policy", "show", policy_id, "-F", "json")))
    assert shown["required_mfa"] is True
    assert shown["domain_constraints_exclude"] == ["example.org"]
    assert f"Deleted Auth Policy {policy_id}" in ok(gcs(env, "auth-policy", "delete",
                                                        policy_id))
    missing = gcs(env, "auth-policy", "show", policy_id)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


def test_gateway_update_and_delete_and_endpoint_roles(
    deployment: Deployment, logged_in: str, tmp_path: Path,
) -> None:
    env = deployment.env
    gateway_id = created_id("Storage Gateway", ok(gcs(
        env, "storage-gateway", "create", "posix", "Scratch", "--domain", "isthmus.local",
        "--identity-mapping", "external:/usr/local/bin/map-identity --verbose",
        "--posix-group-allow", "lab")))
    private = json.loads(ok(gcs(env, "storage-gateway", "show", gateway_id,
                                "--include-private-policies", "-F", "json")))
    assert private["identity_mappings"] == [{
        "DATA_TYPE": "external_identity_mapping#1.0.0",
        "command": ["/usr/local/bin/map-identity", "--verbose"]}]
    assert private["policies"]["groups_allow"] == ["lab"]
    updated = ok(gcs(env, "storage-gateway", "update", "posix", gateway_id,
                     "--display-name", "Scratch space", "--domain", "isthmus.local",
                     "--domain", "example.org", "--users-allow", "alice"))
    assert updated.strip() == f"Message: Updated Storage Gateway {gateway_id}"
    shown = json.loads(ok(gcs(env, "storage-gateway", "show", gateway_id,
                              "--include-private-policies", "-F", "json")))
    assert shown["display_name"] == "Scratch space"
    assert shown["allowed_domains"] == ["isthmus.local", "example.org"]
    assert shown["users_allow"] == ["alice"]
    bad_mapping = gcs(env, "storage-gateway", "update", "posix", gateway_id,
                      "--identity-mapping", "{not json")
    assert bad_mapping.returncode == 2 and "not JSON" in bad_mapping.stderr
    refused = gcs(env, "storage-gateway", "update", "posix", gateway_id,
                  "--identity-mapping", '{"DATA_TYPE": "nonsense#1.0.0"}')
    assert refused.returncode == 1 and "400 bad_request" in refused.stderr
    assert f"Deleted Storage Gateway {gateway_id}" in ok(gcs(
        env, "storage-gateway", "delete", gateway_id))

    member = _new_user(deployment.server, "monitor")
    role_id = created_id("Role", ok(gcs(env, "endpoint", "role", "create",
                                        "activity_monitor", member.id)))
    shown_role = ok(gcs(env, "endpoint", "role", "show", role_id))
    assert re.search(rf"^Principal: +{re.escape(member.username)}$", shown_role,
                     re.MULTILINE), shown_role
    assert member.username in ok(gcs(env, "endpoint", "role", "list", "--all"))
    ok(gcs(env, "endpoint", "role", "delete", role_id))
    assert member.username not in ok(gcs(env, "endpoint", "role", "list", "--all"))


SDK3_LISTING = """
import json
import sys

import globus_sdk

manager_url, gcs_token = sys.argv[1:3]
gcs = globus_sdk.GCSClient(manager_url,
                           authorizer=globus_sdk.AccessTokenAuthorizer(gcs_token))
print("ISTHMUS-REPORT", json.dumps({
    "version": globus_sdk.__version__,
    "gateways": [dict(item) for item in gcs.get_storage_gateway_list()],
    "collections": [dict(item) for item in gcs.get_collection_list()],
}))
"""


@pytest.mark.sdk3
def test_gcs_client_of_sdk_3_lists_them_too(
    deployment: Deployment, lab: LabSetup, tmp_path: Path,
    sdk3_python: str,  # noqa: F811 (the fixture imported above)
) -> None:
    from tests.sdk3.test_seeds_sdk3 import SDK3_VERSION, run

    tokens = native_login(deployment.server, deployment.admin.username,
                          deployment.admin.password, [manage_collections(deployment.endpoint_id)])
    env = shell_environment(deployment.server, tmp_path / "home")
    report = run(sdk3_python, SDK3_LISTING, env, tmp_path, deployment.node_url,
                 tokens[deployment.endpoint_id]["access_token"])
    assert report["version"] == SDK3_VERSION
    gateways = {item["id"]: item for item in report["gateways"]}
    assert gateways[lab.gateway_id]["DATA_TYPE"].startswith("storage_gateway#1.")
    assert gateways[lab.gateway_id]["display_name"] == "Lab POSIX"
    collections = {item["id"]: item for item in report["collections"]}
    assert collections[lab.collection_id]["DATA_TYPE"].startswith("collection#1.")
    assert collections[lab.collection_id]["storage_gateway_id"] == lab.gateway_id


def test_endpoint_setup_owner_is_whoever_runs_it(
    deployment: Deployment, tmp_path: Path,
) -> None:
    """Without --owner: the GCS_CLI_* client, or the person who logs in when asked."""
    robot = deployment.server.create_client("setup robot", "client_identity")
    as_client = {**deployment.env, "GCS_CLI_CLIENT_ID": robot["id"],
                 "GCS_CLI_CLIENT_SECRET": robot["secret"]}
    made = json.loads(ok(gcs(as_client, "endpoint", "setup", "Robot's", "--organization",
                             "Lab", "-d", "robot.json", "-F", "json", cwd=tmp_path)))
    assert made["owner"] == f"{robot['id']}@clients.auth.globus.org"

    printed = login_as(deployment, deployment.admin, deployment.env, "endpoint", "setup",
                       "Person's", "--organization", "Lab", "--no-local-server", "-d",
                       str(tmp_path / "person.json"))
    assert "authenticate with Globus to set the owner of the endpoint" in printed
    assert f"Owner: {deployment.admin.username}" in printed
    for key in ("robot.json", "person.json"):
        ok(gcs(deployment.env, "endpoint", "cleanup", "-d", key, "--agree-to-delete-endpoint",
               cwd=tmp_path))


def test_a_node_that_cannot_start_leaves_nothing_behind(
    deployment: Deployment, logged_in: str, tmp_path: Path,
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        # Another machine's data dir, the server's database.
        env = {**deployment.env, "ISTHMUS_DATABASE_URL": deployment.env.get(
            "ISTHMUS_DATABASE_URL", f"sqlite:///{deployment.server.data_dir / 'isthmus.db'}")}
        failed = gcs(env, "node", "setup", "-d", str(deployment.key_file), "--port", port,
                     "--data-dir", str(tmp_path / "other"))
    assert failed.returncode == 1, failed.stdout
    assert failed.stderr.startswith("Error: The node process exited")
    assert failed.stderr.count("\n") == 1
    assert not (tmp_path / "other" / "globus-connect-server" / "node.json").exists()
    nodes = json.loads(ok(gcs(deployment.env, "node", "list", "-F", "json")))
    assert len(nodes) == 1  # only the node that serves
    wrong_key = tmp_path / "wrong-key.json"
    wrong_key.write_text(json.dumps({**json.loads(deployment.key_file.read_text()),
                                     "secret": "not-the-secret"}))
    refused = gcs(env, "node", "setup", "-d", str(wrong_key), "--port", port,
                  "--data-dir", str(tmp_path / "other"))
    assert refused.returncode == 1 and "client credentials" in refused.stderr
