"""The real `globus` command (globus-cli 3.43) against a live server, pointed there by
`isthmus env` and nothing else: login without a local server, whoami, session, logout."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tests.conftest import User
from tests.live import LiveServer

GLOBUS = str(Path(sys.executable).with_name("globus"))
CLI_TEMPLATE_ID = "95fdeba8-fac2-42bd-a357-e068d82ff78e"
# What globus-cli 3.43 asks for at login, one token per resource server.
CLI_RESOURCE_SERVERS = {
    "auth.globus.org", "transfer.api.globus.org", "groups.api.globus.org",
    "search.api.globus.org", "524230d7-ea86-4a52-8312-86065a9e0417", "flows.globus.org",
}


def globus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GLOBUS, *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)


def login(env: dict[str, str], user: User, answer_login_prompt: Any) -> dict[str, list[str]]:
    """`globus login --no-local-server` with a person at the keyboard; the authorize query."""
    process = subprocess.Popen(
        [GLOBUS, "login", "--no-local-server"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        printed = answer_login_prompt(process, user)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, f"{printed}{out}\n{err}"
    assert "You have successfully logged in to the Globus CLI!" in out
    url = next(line for line in printed.splitlines() if "/v2/oauth2/authorize?" in line)
    return parse_qs(urlsplit(url.strip()).query)


def stored(env: dict[str, str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The CLI's instance-client credentials and tokens, from its storage in $HOME."""
    database = Path(env["HOME"]) / ".globus" / "cli" / "storage.db"
    with sqlite3.connect(database) as connection:
        configs = dict(connection.execute(
            "SELECT config_name, config_data_json FROM config_storage"
        ).fetchall())
        token_rows = connection.execute(
            "SELECT resource_server, token_data_json FROM token_storage"
        ).fetchall()
    connection.close()
    client = json.loads(configs["auth_client_data"]) if "auth_client_data" in configs else {}
    return client, {rs: json.loads(data) for rs, data in token_rows}


def client_ids(server: LiveServer) -> set[str]:
    return {row["id"] for row in server.run_json("client", "list")["clients"]}


def refresh(server: LiveServer, client: dict[str, Any], refresh_token: str) -> requests.Response:
    return requests.post(
        server.base_url + "v2/oauth2/token", verify=server.ca_file, timeout=30,
        auth=(client["client_id"], client["client_secret"]),
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )


def test_login_whoami_session_logout(
    server: LiveServer, user: User, isthmus_env: dict[str, str], answer_login_prompt: Any
) -> None:
    env = isthmus_env
    not_yet = globus(env, "whoami")
    assert not_yet.returncode != 0 and "MissingLoginError" in not_yet.stderr

    query = login(env, user, answer_login_prompt)
    client, tokens = stored(env)
    # The CLI registered a native-app instance of its template, and logged in as that.
    assert query["client_id"] == [client["client_id"]] != [CLI_TEMPLATE_ID]
    assert query["prompt"] == ["login"]
    assert query["access_type"] == ["offline"]
    assert query["redirect_uri"] == [server.base_url + "v2/web/auth-code"]
    assert client["client_id"] in client_ids(server)
    assert set(tokens) == CLI_RESOURCE_SERVERS
    assert all(data["refresh_token"] for data in tokens.values())

    whoami = globus(env, "whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout.strip() == user.username

    linked = globus(env, "whoami", "--linked-identities")
    assert linked.returncode == 0, linked.stderr
    assert user.username in linked.stdout
    as_json = globus(env, "whoami", "--linked-identities", "-F", "json")
    assert as_json.returncode == 0, as_json.stderr
    identity_set = json.loads(as_json.stdout)
    assert [member["sub"] for member in identity_set] == [user.id]
    assert identity_set[0]["username"] == user.username

    session = globus(env, "session", "show")
    assert session.returncode == 0, session.stderr
    assert user.username in session.stdout and user.id in session.stdout
    # In JSON the CLI shows introspection's session_info as it came.
    session_info = json.loads(globus(env, "session", "show", "-F", "json").stdout)
    assert list(session_info["authentications"]) == [user.id]
    assert session_info["authentications"][user.id]["auth_time"] > 0

    logout = globus(env, "logout", "--yes")
    assert logout.returncode == 0, logout.stderr
    assert f"Logging out of Globus as {user.username}" in logout.stdout
    after = globus(env, "whoami")
    assert after.returncode != 0
    assert "MissingLoginError" in after.stderr and "globus login" in after.stderr
    # Revoked on the server, not only forgotten by the CLI (it revokes through its template).
    auth_token = tokens["auth.globus.org"]["access_token"]
    userinfo = requests.get(server.base_url + "v2/oauth2/userinfo", verify=server.ca_file,
                            headers={"Authorization": f"Bearer {auth_token}"}, timeout=30)
    assert userinfo.status_code == 401
    for data in tokens.values():
        assert refresh(server, client, data["refresh_token"]).status_code in (400, 401)
    # CLI 3.43 keeps its instance client on a plain logout, and uses it for the next login.
    assert client["client_id"] in client_ids(server)

    login(env, user, answer_login_prompt)
    again, _ = stored(env)
    assert again == client
    assert globus(env, "whoami").stdout.strip() == user.username

    # The hidden --delete-client flag also deletes the instance, with its own credentials.
    deleted = globus(env, "logout", "--yes", "--delete-client")
    assert deleted.returncode == 0, deleted.stderr
    assert client["client_id"] not in client_ids(server)
    assert stored(env) == ({}, {})
    gone = globus(env, "whoami")
    assert gone.returncode != 0 and "MissingLoginError" in gone.stderr
