"""The seeds' own 3.x code, verbatim, run by globus-sdk 3.65 against a live server.

The snippets live in `seeds/` exactly as seeds 002 and 003 print them; only the
client id and secret placeholders of seed 002 are filled in, and the auth code
that seed 003 asks for with `input()` is typed into the script's stdin after this
process has gone through the login and consent pages. Each script runs in its own
virtualenv (`.venv-sdk3`, globus-sdk from `requirements.txt` beside this file)
with the environment `isthmus env` gives, followed by a few lines of the test's own
that print what the seed produced as JSON. The seeds' Transfer listings
(`tc.endpoint_search(filter_scope="my-endpoints")`) run against Isthmus's registry.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import User
from tests.live import LiveServer

pytestmark = pytest.mark.sdk3

HERE = Path(__file__).parent
SEEDS = HERE / "seeds"
REQUIREMENTS = HERE / "requirements.txt"
SDK3_VENV = HERE.parents[1] / ".venv-sdk3"
SDK3_VERSION = REQUIREMENTS.read_text().strip().removeprefix("globus-sdk==")

TUTORIAL_CLIENT_ID = "61338d24-54d5-408f-a10d-66c06b59f6d2"
TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"
# What 3.x asks for when oauth2_start_flow() / oauth2_client_credentials_tokens() get no scopes.
DEFAULT_SCOPES = f"openid profile email {TRANSFER_ALL}"
REPORT = "ISTHMUS-REPORT "

# The test's own lines, run after each seed in the same script.
FIRST_STEPS_REPORT = """
import json

report = {
    "authorize_url": authorize_url,
    "by_resource_server": token_response.by_resource_server,
    "id_token": token_response.decode_id_token(),
    "userinfo": globus_sdk.AuthClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(AUTH_TOKEN)
    ).oauth2_userinfo().data,
    "transfer_authorization": authorizer.get_authorization_header(),
}
print("ISTHMUS-REPORT", json.dumps(report))
"""

REFRESH_REPORT = """
import json

first_access_token = authorizer.access_token
authorizer.handle_missing_authorization()  # what a 401 from Transfer does
renewed_header = authorizer.get_authorization_header()  # refreshes through `client`
renewed_access_token = authorizer.access_token
auth_refresh_token = token_response.by_resource_server["auth.globus.org"]["refresh_token"]
auth_client = globus_sdk.AuthClient(
    authorizer=globus_sdk.RefreshTokenAuthorizer(auth_refresh_token, client)
)


def validity():
    tokens = {"refresh": transfer_rt, "first": transfer_at, "renewed": renewed_access_token,
              "unknown": "not-a-token"}
    return {name: client.oauth2_validate_token(token)["active"]
            for name, token in tokens.items()}


report = {
    "authorize_url": authorize_url,
    "by_resource_server": token_response.by_resource_server,
    "renewed": renewed_access_token != first_access_token
    and renewed_header == f"Bearer {renewed_access_token}",
    "userinfo_after_refresh": auth_client.oauth2_userinfo().data,
    "valid_before_revoke": validity(),
}
client.oauth2_revoke_token(transfer_rt)
report["valid_after_revoke"] = validity()
print("ISTHMUS-REPORT", json.dumps(report))
"""

CLIENT_CREDENTIALS_REPORT = """
import json
import sys

report = {
    "by_resource_server": token_response.by_resource_server,
    "userinfo": globus_sdk.AuthClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(globus_auth_token)
    ).oauth2_userinfo().data,
    # 3.x looks identities up with the client's own credentials (Basic auth).
    "by_username": client.get_identities(usernames=sys.argv[1]).data,
    "by_id": client.get_identities(ids=[sys.argv[2], CLIENT_ID]).data,
    "transfer_token": client.oauth2_token_introspect(globus_transfer_token).data,
    "transfer_authorization": authorizer.get_authorization_header(),
}
print("ISTHMUS-REPORT", json.dumps(report))
"""

CC_AUTHORIZER_REPORT = """
import json

report = {
    "authorization": cc_authorizer.get_authorization_header(),
    "access_token": cc_authorizer.access_token,
    "introspection": confidential_client.oauth2_token_introspect(
        cc_authorizer.access_token
    ).data,
    "validate": confidential_client.oauth2_validate_token(cc_authorizer.access_token).data,
}
print("ISTHMUS-REPORT", json.dumps(report))
"""


def _sdk3_ready(python: Path) -> bool:
    if not python.exists():
        return False
    check = subprocess.run(
        [str(python), "-c", "import globus_sdk; print(globus_sdk.__version__)"],
        capture_output=True, text=True, timeout=60,
    )
    return check.returncode == 0 and check.stdout.strip() == SDK3_VERSION


@pytest.fixture(scope="session")
def sdk3_python() -> str:
    """The second environment's python; `make test` installs it, this makes it if missing."""
    python = SDK3_VENV / "bin" / "python"
    if not _sdk3_ready(python):
        subprocess.run([sys.executable, "-m", "venv", str(SDK3_VENV)], check=True, timeout=120)
        subprocess.run(
            [str(SDK3_VENV / "bin" / "pip"), "install", "--quiet", "-r", str(REQUIREMENTS)],
            check=True, timeout=600,
        )
    assert _sdk3_ready(python), f"{SDK3_VENV} has no globus-sdk {SDK3_VERSION}"
    return str(python)


def seed(name: str, **placeholders: str) -> str:
    """A seed snippet with its `NAME = '...'` placeholders filled in."""
    code = (SEEDS / name).read_text()
    for key, value in placeholders.items():
        placeholder = f"{key} = '...'"
        assert code.count(placeholder) == 1, f"{name} has no {placeholder}"
        code = code.replace(placeholder, f"{key} = {value!r}")
    return code


def run(
    python: str, code: str, env: dict[str, str], tmp_path: Path, *args: str,
    login: tuple[Any, User] | None = None,
) -> dict[str, Any]:
    """Run a script in the 3.x environment (logging in when it asks) and return its report."""
    script = tmp_path / "seed.py"
    script.write_text(code)
    environment = dict(env)
    # A person at a terminal, not a pipe that flushes each line: input() must flush itself.
    environment.pop("PYTHONUNBUFFERED", None)
    process = subprocess.Popen(
        [python, str(script), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=environment, cwd=tmp_path,
    )
    try:
        printed = ""
        if login is not None:
            answer_login_prompt, user = login
            printed = answer_login_prompt(process, user)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, f"{printed}{out}\n{err}"
    lines = [line for line in out.splitlines() if line.startswith(REPORT)]
    assert len(lines) == 1, out
    report: dict[str, Any] = json.loads(lines[0].removeprefix(REPORT))
    report["printed"] = out
    return report


def listed(report: dict[str, Any], heading: str) -> list[tuple[str, str]]:
    """The ``[id] display name`` lines a seed printed under ``heading``."""
    after = report["printed"].split(heading + "\n", 1)[1].split(REPORT, 1)[0]
    lines = after.splitlines()
    found = [re.fullmatch(r"\[([0-9a-f-]{36})\] (.+)", line) for line in lines]
    assert all(found), lines
    return [(match.group(1), match.group(2)) for match in found if match]


def authorize_query(report: dict[str, Any], server: LiveServer) -> dict[str, str]:
    url = report["authorize_url"]
    assert url.startswith(server.base_url + "v2/oauth2/authorize?")
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_tutorial_first_steps(
    sdk3_python: str, server: LiveServer, user: User, isthmus_env: dict[str, str],
    answer_login_prompt: Any, tmp_path: Path,
) -> None:
    """Steps 2-4: log in with the tutorial client, tokens for Auth and Transfer by RS."""
    report = run(sdk3_python, seed("tutorial_first_steps.py") + FIRST_STEPS_REPORT,
                 isthmus_env, tmp_path, login=(answer_login_prompt, user))
    query = authorize_query(report, server)
    assert query["client_id"] == TUTORIAL_CLIENT_ID
    assert query["scope"] == DEFAULT_SCOPES
    assert query["redirect_uri"] == server.base_url + "v2/web/auth-code"
    assert query["access_type"] == "online"
    assert query["code_challenge_method"] == "S256"

    # Step 4: what the tutorial shows str(token_response.by_resource_server) to hold.
    by_rs = report["by_resource_server"]
    assert set(by_rs) == {"auth.globus.org", "transfer.api.globus.org"}
    assert set(by_rs["auth.globus.org"]["scope"].split()) == {"openid", "profile", "email"}
    assert by_rs["transfer.api.globus.org"]["scope"] == TRANSFER_ALL
    for data in by_rs.values():
        assert data["token_type"] == "Bearer"
        assert data["refresh_token"] is None
        assert data["expires_at_seconds"] > time.time() + 3600
    assert report["transfer_authorization"] == (
        "Bearer " + by_rs["transfer.api.globus.org"]["access_token"]
    )
    assert report["id_token"]["sub"] == user.id
    assert report["id_token"]["aud"] == TUTORIAL_CLIENT_ID
    assert report["userinfo"]["sub"] == user.id
    assert report["userinfo"]["preferred_username"] == user.username
    # Step 3's listing ran. It lists the server's endpoint and files collection when this
    # user owns them (the session server's first user does), else nothing.
    owned = {entity_id for entity_id, _ in listed(report, "My Endpoints:")}
    assert owned in (set(), set(re.findall(
        r'(?:endpoint|collection "[^"]+"): ([0-9a-f-]{36})', server.log())))


def test_tutorial_refresh_tokens(
    sdk3_python: str, server: LiveServer, user: User, isthmus_env: dict[str, str],
    answer_login_prompt: Any, tmp_path: Path,
) -> None:
    """Step 5: refresh tokens, a RefreshTokenAuthorizer, and 3.x's oauth2_validate_token."""
    report = run(sdk3_python, seed("tutorial_refresh_tokens.py") + REFRESH_REPORT,
                 isthmus_env, tmp_path, login=(answer_login_prompt, user))
    query = authorize_query(report, server)
    assert query["scope"] == DEFAULT_SCOPES
    assert query["access_type"] == "offline"

    by_rs = report["by_resource_server"]
    assert set(by_rs) == {"auth.globus.org", "transfer.api.globus.org"}
    assert all(data["refresh_token"] for data in by_rs.values())
    assert report["renewed"] is True
    assert report["userinfo_after_refresh"]["sub"] == user.id
    assert report["valid_before_revoke"] == {
        "refresh": True, "first": True, "renewed": True, "unknown": False,
    }
    # Revoking the refresh token ends the access tokens it stood behind.
    assert report["valid_after_revoke"] == {
        "refresh": False, "first": False, "renewed": False, "unknown": False,
    }


def test_client_credentials(
    sdk3_python: str, server: LiveServer, user: User, isthmus_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """Seed 002: client credentials with 3.x's default scopes; 3.x's Basic-auth identities."""
    created = server.create_client("seed 002", "confidential_client")
    client_id = created["id"]
    code = seed("client_credentials.py", CLIENT_ID=client_id, CLIENT_SECRET=created["secret"])
    report = run(sdk3_python, code + CLIENT_CREDENTIALS_REPORT, isthmus_env, tmp_path,
                 user.username, user.id)

    by_rs = report["by_resource_server"]
    assert set(by_rs) == {"auth.globus.org", "transfer.api.globus.org"}
    assert set(by_rs["auth.globus.org"]["scope"].split()) == {"openid", "profile", "email"}
    assert by_rs["transfer.api.globus.org"]["scope"] == TRANSFER_ALL
    assert all(data["refresh_token"] is None for data in by_rs.values())
    assert report["transfer_authorization"] == (
        "Bearer " + by_rs["transfer.api.globus.org"]["access_token"]
    )
    # The "current user" is the client itself.
    client_username = f"{client_id}@clients.auth.globus.org"
    assert report["userinfo"]["sub"] == client_id
    assert report["userinfo"]["preferred_username"] == client_username
    assert report["transfer_token"]["active"] is True
    assert report["transfer_token"]["username"] == client_username
    assert report["transfer_token"]["scope"] == TRANSFER_ALL

    # A client that set nothing up owns nothing.
    assert listed(report, f"Endpoints Belonging to {client_username}:") == []

    assert [found["id"] for found in report["by_username"]["identities"]] == [user.id]
    assert report["by_username"]["identities"][0]["username"] == user.username
    by_id = {found["id"]: found for found in report["by_id"]["identities"]}
    assert set(by_id) == {user.id, client_id}
    assert by_id[client_id]["username"] == client_username


def test_client_credentials_authorizer(
    sdk3_python: str, server: LiveServer, isthmus_env: dict[str, str], tmp_path: Path,
) -> None:
    """Seed 002: ClientCredentialsAuthorizer with the transfer scope gets one token."""
    created = server.create_client("seed 002 authorizer", "confidential_client")
    code = seed("client_credentials_authorizer.py", CLIENT_ID=created["id"],
                CLIENT_SECRET=created["secret"])
    report = run(sdk3_python, code + CC_AUTHORIZER_REPORT, isthmus_env, tmp_path)

    assert report["authorization"] == f"Bearer {report['access_token']}"
    introspection = report["introspection"]
    assert introspection["active"] is True
    assert introspection["scope"] == TRANSFER_ALL
    assert introspection["sub"] == created["id"]
    assert introspection["username"] == f"{created['id']}@clients.auth.globus.org"
    assert "transfer.api.globus.org" in introspection["aud"]
    assert report["validate"] == {"active": True}


GCS_SCRIPT = """
import json
import sys

import globus_sdk

manager_url, gcs_token, transfer_token = sys.argv[1:4]
gcs = globus_sdk.GCSClient(manager_url,
                           authorizer=globus_sdk.AccessTokenAuthorizer(gcs_token))
tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(transfer_token))

print("My Endpoints:")
for ep in tc.endpoint_search(filter_scope="my-endpoints"):
    print("[{}] {}".format(ep["id"], ep["display_name"]))

gateway = gcs.create_storage_gateway(globus_sdk.StorageGatewayDocument(
    display_name="made by 3.x", connector_id="145812c8-decc-41f1-83cf-bb2a85a2a70b", root="/",
    allowed_domains=["example.org"],
    policies=globus_sdk.POSIXStoragePolicies(groups_allow=["staff"])))
collection = gcs.create_collection(globus_sdk.MappedCollectionDocument(
    display_name="made by 3.x", storage_gateway_id=gateway["id"], delete_protected=False,
    policies=globus_sdk.POSIXCollectionPolicies(sharing_groups_allow=["g"])))
report = {
    "client_id": gcs.endpoint_client_id,
    "endpoint": gcs.get_endpoint().data,
    "gateways": [dict(item) for item in gcs.get_storage_gateway_list()],
    "collection_pages": [[item["id"] for item in page]
                         for page in gcs.paginated.get_collection_list(page_size=1).pages()],
    "created": [gateway.data, collection.data],
    "found": tc.get_endpoint(collection["id"]).data,
    "deleted": [gcs.delete_collection(collection["id"])["code"],
                gcs.delete_storage_gateway(gateway["id"])["code"]],
}
print("ISTHMUS-REPORT", json.dumps(report))
"""


def test_gcs_client_and_my_endpoints(
    sdk3_python: str, endpoint_site: Any, tmp_path: Path,
) -> None:
    """3.x's GCSClient against the endpoint, and the seeds' my-endpoints listing of its owner."""
    from tests.conftest import shell_environment
    from tests.e2e.helpers import native_login

    site = endpoint_site
    scope = f"urn:globus:auth:scope:{site.endpoint_id}:manage_collections"
    tokens = native_login(site.server, site.owner.username, site.owner.password,
                          [scope, TRANSFER_ALL])
    env = shell_environment(site.server, tmp_path / "home")
    report = run(sdk3_python, GCS_SCRIPT, env, tmp_path, site.server.manager_url,
                 tokens[site.endpoint_id]["access_token"],
                 tokens["transfer.api.globus.org"]["access_token"])

    listing = dict(listed(report, "My Endpoints:"))
    assert site.endpoint_id in listing
    assert listing[site.collection_id] == site.collection_name
    assert report["client_id"] == site.endpoint_id
    assert report["endpoint"]["DATA_TYPE"].startswith("endpoint#")
    assert any(item["DATA_TYPE"].startswith("storage_gateway#")
               for item in report["gateways"])
    pages = report["collection_pages"]
    assert len(pages) >= 2 and all(len(page) == 1 for page in pages)
    assert site.collection_id in {item for page in pages for item in page}
    gateway, collection = report["created"]
    assert gateway["policies"]["groups_allow"] == ["staff"]
    assert collection["collection_type"] == "mapped"
    assert collection["policies"]["sharing_groups_allow"] == ["g"]
    assert report["found"]["entity_type"] == "GCSv5_mapped_collection"
    assert report["deleted"] == ["success", "success"]
