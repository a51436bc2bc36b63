"""Storage gateways beyond POSIX on live servers, for the tests that need them.

- `gcs_login`: the endpoint owner's `globus-connect-server login`, the code pasted back;
- `add_s3_collection`: an S3 gateway over moto's server, the owner's keys registered with
  `user-credentials s3-create`, and a mapped collection on a bucket;
- `start_pair`: two Isthmus servers, the upstream's Auth holding a confidential client for
  the downstream endpoint; `make_gateway` puts a WebDAV gateway (and a collection) on the
  downstream over the upstream's "<host> files", and `connect_storage` makes the owner's
  OAuth2 user credential through the upstream's login and consent pages.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from globus_sdk import AccessTokenAuthorizer, GCSClient

from tests.browser import Browser, query_of
from tests.conftest import User, _new_user, answer_login, shell_environment
from tests.e2e.data_helpers import DataSite, collection_scopes, start_data_site
from tests.e2e.helpers import native_login, pointed_at
from tests.e2e.test_gcs_cli import GCS, created_id, ok
from tests.e2e.test_gcs_cli import gcs as run_gcs
from tests.live import LiveServer
from tests.s3_server import MotoS3


def gcs_login(server: LiveServer, endpoint_id: str, env: dict[str, str], user: User,
              cwd: Path | None = None) -> None:
    """`globus-connect-server login ENDPOINT_ID`, the user pasting the code."""
    process = subprocess.Popen([GCS, "login", endpoint_id, "--no-local-server"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        printed = answer_login(server, process, user)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, f"{printed}{out}\n{err}"


def manager_client(site: DataSite, user: User) -> GCSClient:
    """The official SDK's GCSClient on the endpoint, with ``user``'s token."""
    scope = GCSClient.get_gcs_endpoint_scopes(site.endpoint_id).manage_collections
    tokens = native_login(site.server, user.username, user.password, [str(scope)])
    with pointed_at(site.server):
        return GCSClient(site.server.manager_url, authorizer=AccessTokenAuthorizer(
            tokens[site.endpoint_id]["access_token"]))


# --- S3 --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Site:
    site: DataSite
    moto: MotoS3
    env: dict[str, str]  # the owner's shell, logged in to the endpoint
    bucket: str
    gateway_id: str
    credential_id: str
    collection_id: str
    base: str = "projects"  # the collection's root in the bucket

    @property
    def url(self) -> str:
        return f"{self.site.server.base_url}data/{self.collection_id}"

    def token(self, user: User) -> str:
        return self.site.token(user, collection_id=self.collection_id)

    def manager(self, user: User) -> GCSClient:
        return manager_client(self.site, user)


def add_s3_collection(site: DataSite, env: dict[str, str], moto: MotoS3,
                      base: str = "projects") -> S3Site:
    """A new bucket, an S3 gateway over moto on it, the owner's keys, and a collection on
    ``/<bucket>/<base>``; ``env`` is the owner's shell after `gcs_login`."""
    domain = site.owner.username.rpartition("@")[2]
    bucket = moto.new_bucket("lab")
    gateway_id = created_id("Storage Gateway", ok(run_gcs(
        env, "storage-gateway", "create", "s3", "Lab object store", "--domain", domain,
        "--s3-endpoint", moto.endpoint_url, "--bucket", bucket, "--s3-user-credential")))
    credential_id = created_id("User Credential", ok(run_gcs(
        env, "user-credentials", "s3-create", gateway_id,
        "--s3-key-id", moto.key_id, "--s3-secret-key", moto.secret_key)))
    collection_id = created_id("Collection", ok(run_gcs(
        env, "collection", "create", gateway_id, f"/{bucket}/{base}", "Lab bucket")))
    return S3Site(site, moto, env, bucket, gateway_id, credential_id, collection_id, base)


def rclone_s3(moto: MotoS3, *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's rclone with its s3 backend, as remote ``moto:``."""
    return subprocess.run(["rclone", *args], capture_output=True, text=True,
                          env=moto.rclone_env(), timeout=300, check=False)


# --- WebDAV with OAuth2 user credentials, against a second Isthmus --------------------------


@dataclass
class Pair:
    upstream: DataSite
    downstream: DataSite
    person: User  # the upstream account whose files the gateway reaches
    client: dict[str, str]  # the upstream's client for the downstream endpoint
    env: dict[str, str]  # the downstream owner's shell, logged in with globus-connect-server
    workdir: Path
    gateway_id: str = ""
    collection_id: str = ""

    @property
    def callback(self) -> str:
        return self.downstream.server.base_url + "api/v1/authcallback"

    @property
    def upstream_home(self) -> Path:
        return self.upstream.home_dir(self.person)


def gcs(pair: Pair, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`globus-connect-server` in the downstream owner's shell."""
    return run_gcs(pair.env, *args, cwd=pair.workdir, stdin=stdin)


def start_pair(root: Path) -> Iterator[Pair]:
    """An upstream and a downstream server under ``root``, the downstream's owner logged in
    with `globus-connect-server`; both stop when the generator is closed."""
    for name in ("upstream", "downstream"):
        (root / name).mkdir()
    upstream_sites = start_data_site(root / "upstream")
    upstream = next(upstream_sites)
    downstream_sites = start_data_site(root / "downstream")
    try:
        downstream = next(downstream_sites)
        person = _new_user(upstream.server, "uma")
        client = upstream.server.create_client(
            "Downstream endpoint", "confidential_client",
            downstream.server.base_url + "api/v1/authcallback")
        env = {**shell_environment(downstream.server, root / "home"),
               "ISTHMUS_DATA_DIR": str(downstream.server.data_dir)}
        workdir = root / "work"
        workdir.mkdir()
        built = Pair(upstream, downstream, person, client, env, workdir)
        gcs_login(downstream.server, downstream.endpoint_id, env, downstream.owner, workdir)
        yield built
    finally:
        for sites in (downstream_sites, upstream_sites):
            sites.close()


def make_gateway(pair: Pair, name: str) -> tuple[str, str]:
    """The administrator's script: a WebDAV gateway on the upstream's collection and a
    collection on it; their ids."""
    upstream = pair.upstream.server.base_url
    domain = pair.downstream.owner.username.split("@")[1]
    options = ["--domain", domain, "--webdav-url", pair.upstream.url,
               "--oauth-authorize-url", upstream + "v2/oauth2/authorize",
               "--oauth-token-url", upstream + "v2/oauth2/token",
               "--oauth-client-id", pair.client["id"],
               "--ca-file", pair.upstream.server.ca_file]
    for scope in collection_scopes(pair.upstream.collection_id):
        options += ["--oauth-scope", scope]
    # The secret is typed at the prompt, never on the command line.
    gateway_id = created_id("Storage Gateway", ok(gcs(
        pair, "storage-gateway", "create", "webdav", name, *options,
        stdin=pair.client["secret"] + "\n")))
    collection_id = created_id("Collection", ok(gcs(
        pair, "collection", "create", gateway_id, "/", f"{name} via WebDAV")))
    return gateway_id, collection_id


def oauth_create(pair: Pair, user: User, *options: str, gateway_id: str = "") -> str:
    """`user-credentials oauth-create`: the upstream authorize URL it prints."""
    printed = ok(gcs(pair, "user-credentials", "oauth-create", gateway_id or pair.gateway_id,
                     "--globus-identity", user.username, *options))
    lines = printed.splitlines()
    assert lines[0] == "To complete credential creation, visit", printed
    assert lines[1].startswith(pair.upstream.server.base_url + "v2/oauth2/authorize?")
    return lines[1]


def grant(pair: Pair, url: str, person: User | None = None, *,
          decision: str = "allow") -> str:
    """A user at the upstream's login and consent pages; the callback it redirects to."""
    browser = Browser(pair.upstream.server.ca_file)
    who = person or pair.person
    location = browser.authorize(url, who.username, who.password, decision=decision)
    assert location.startswith(pair.callback + "?"), location
    return location


def open_downstream(pair: Pair, url: str) -> requests.Response:
    return Browser(pair.downstream.server.ca_file).open(url)


def credential_ids(pair: Pair) -> set[str]:
    printed = ok(gcs(pair, "user-credentials", "list", "--format", "json"))
    return {str(item["id"]) for item in json.loads(printed)}


def connect_storage(pair: Pair, gateway_id: str) -> tuple[str, str]:
    """oauth-create, the upstream's pages, the downstream's success page: the new
    credential's id, and the callback URL that made it."""
    url = oauth_create(pair, pair.downstream.owner, gateway_id=gateway_id)
    params = query_of(url)
    assert params["client_id"] == pair.client["id"]
    assert params["redirect_uri"] == pair.callback
    assert params["code_challenge_method"] == "S256"
    assert params["login_hint"] == pair.downstream.owner.username
    callback = grant(pair, url)

    done = open_downstream(pair, callback)
    assert done.status_code == 302, done.text
    complete = done.headers["Location"]
    assert complete.startswith(pair.downstream.server.base_url + "api/v1/authclicomplete?")
    credential_id = query_of(complete)["user_credential_id"]
    page = open_downstream(pair, complete)
    assert page.status_code == 200 and "Credential created" in page.text
    assert credential_id in credential_ids(pair)
    return credential_id, callback
