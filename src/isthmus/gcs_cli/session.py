"""Who a command acts as, and for which endpoint: a person's stored login or a client's
credentials (`GCS_CLI_CLIENT_ID` / `GCS_CLI_CLIENT_SECRET`), both through the SDK's GlobusApp.

A person's tokens live in ``~/.globus-connect-server/tokens.json`` (mode 0600, refresh tokens,
so commands need no new login until `logout`); which endpoint they logged in to, and extra
consents given with `session consent`, in ``state.json`` beside it. A client's tokens are
fetched with the client-credentials grant on each run and never written down.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import globus_sdk
from globus_sdk.login_flows import CommandLineLoginFlowManager
from globus_sdk.scopes import AuthScopes, Scope, ScopeParser, TransferScopes
from globus_sdk.token_storage import JSONTokenStorage

from isthmus.auth.builtins import GCS_CLI_CLIENT_ID
from isthmus.gcs_cli import local
from isthmus.gcs_cli.errors import CLIError, LoginRequiredError

APP_NAME = "globus-connect-server"
CLIENT_ID_VARIABLE = "GCS_CLI_CLIENT_ID"
CLIENT_SECRET_VARIABLE = "GCS_CLI_CLIENT_SECRET"
ENDPOINT_VARIABLE = "GCS_CLI_ENDPOINT_ID"
AUTH_RESOURCE_SERVER = "auth.globus.org"
TRANSFER_RESOURCE_SERVER = "transfer.api.globus.org"
AUTH_SCOPES = ("openid", "profile", "email", str(AuthScopes.view_identity_set),
               str(AuthScopes.manage_projects))


def config_dir() -> Path:
    return Path("~/.globus-connect-server").expanduser()


def manage_collections_scope(endpoint_id: str) -> str:
    return f"urn:globus:auth:scope:{endpoint_id}:manage_collections"


def data_access_scope(collection_id: str) -> str:
    return f"https://auth.globus.org/scopes/{collection_id}/data_access"


def check_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CLIError(f"{what} must be a UUID, not {value!r}", 2) from None


# --- what is remembered between runs -------------------------------------------------


@dataclass
class State:
    """The endpoint the person last logged in to, and consents asked for per endpoint."""

    endpoint_id: str | None = None
    consents: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> State:
        try:
            raw = json.loads((config_dir() / "state.json").read_text())
        except (OSError, ValueError):
            return cls()
        if not isinstance(raw, dict):
            return cls()
        consents = raw.get("consents")
        return cls(raw.get("endpoint_id") if isinstance(raw.get("endpoint_id"), str) else None,
                   {str(key): [str(item) for item in value]
                    for key, value in consents.items() if isinstance(value, list)}
                   if isinstance(consents, dict) else {})

    def save(self) -> None:
        directory = config_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / "state.json"
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"endpoint_id": self.endpoint_id, "consents": self.consents}, handle)
        temporary.replace(path)

    @staticmethod
    def forget() -> None:
        with contextlib.suppress(FileNotFoundError):
            (config_dir() / "state.json").unlink()


# --- scopes ------------------------------------------------------------------------


def resource_server_of(scope: Scope, endpoint_id: str) -> str:
    """Which resource server a scope string belongs to (the key GlobusApp files tokens under)."""
    text = scope.scope_string
    if text in ("openid", "profile", "email") or text.startswith(
            "urn:globus:auth:scope:auth.globus.org:"):
        return AUTH_RESOURCE_SERVER
    if text.startswith("urn:globus:auth:scope:"):
        return text.split(":")[4]
    parts = urlsplit(text)
    if parts.netloc == "auth.globus.org" and parts.path.startswith("/scopes/"):
        return parts.path.split("/")[2]
    raise CLIError(f"Cannot tell which service the scope {text!r} is for (endpoint "
                   f"{endpoint_id})", 2)


def scope_requirements(endpoint_id: str, extra: list[str]) -> dict[str, list[Scope]]:
    """Auth (identity, linked identities, projects for auth policies), Transfer (to find the
    endpoint's Manager URL) and the endpoint's manage_collections, plus consents asked for."""
    wanted: dict[str, list[Scope]] = {
        AUTH_RESOURCE_SERVER: [Scope(text) for text in AUTH_SCOPES],
        TRANSFER_RESOURCE_SERVER: [Scope(str(TransferScopes.all))],
        endpoint_id: [],
    }
    for text in [manage_collections_scope(endpoint_id), *extra]:
        for scope in ScopeParser.parse(text):
            server = resource_server_of(scope, endpoint_id)
            current = wanted.setdefault(server, [])
            same = [known for known in current if known.scope_string == scope.scope_string]
            if same:
                # One scope with every dependency asked for so far.
                merged = same[0].with_dependencies(
                    [dep for dep in scope.dependencies if dep not in same[0].dependencies])
                current[current.index(same[0])] = merged
            else:
                current.append(scope)
    return wanted


# --- the app -----------------------------------------------------------------------


class FlushingCommandLineLogin(CommandLineLoginFlowManager):
    """The SDK's copy-and-paste login, with the URL flushed before waiting for the code
    (stdout may be a pipe to whoever opens the URL)."""

    def print_authorize_url(self, authorize_url: str) -> None:
        super().print_authorize_url(authorize_url)
        with contextlib.suppress(OSError, ValueError):
            import sys

            sys.stdout.flush()


def service_credentials() -> tuple[str, str] | None:
    client_id = os.environ.get(CLIENT_ID_VARIABLE, "").strip()
    secret = os.environ.get(CLIENT_SECRET_VARIABLE, "").strip()
    if not client_id and not secret:
        return None
    if not client_id or not secret:
        raise CLIError(f"Set both {CLIENT_ID_VARIABLE} and {CLIENT_SECRET_VARIABLE}, or "
                       "neither", 2)
    return check_uuid(client_id, CLIENT_ID_VARIABLE), secret


def token_storage() -> JSONTokenStorage:
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "tokens.json"
    if path.exists():
        path.chmod(0o600)
    return JSONTokenStorage(path, namespace="user")


def make_app(endpoint_id: str, extra_scopes: list[str], *,
             local_server: bool = False) -> globus_sdk.GlobusApp:
    requirements = scope_requirements(endpoint_id, extra_scopes)
    credentials = service_credentials()
    if credentials is not None:
        client_id, secret = credentials
        return globus_sdk.ClientApp(
            APP_NAME, client_id=client_id, client_secret=secret,
            scope_requirements=requirements,
            config=globus_sdk.GlobusAppConfig(token_storage="memory"))
    return globus_sdk.UserApp(
        APP_NAME, client_id=str(GCS_CLI_CLIENT_ID), scope_requirements=requirements,
        config=globus_sdk.GlobusAppConfig(
            token_storage=token_storage(), request_refresh_tokens=True,
            login_flow_manager="local-server" if local_server else FlushingCommandLineLogin,
            # A command other than login never starts a login on its own: it says so.
            token_validation_error_handler=None,
        ))


# --- a command's session -------------------------------------------------------------


def resolve_endpoint(argument: str | None = None) -> str:
    """The endpoint a command works on: GCS_CLI_ENDPOINT_ID, the one given to (or last given
    to) login, or the one installed on this machine."""
    named = os.environ.get(ENDPOINT_VARIABLE, "").strip()
    if named:
        return check_uuid(named, ENDPOINT_VARIABLE)
    if argument and argument != "localhost":
        return check_uuid(argument, "ENDPOINT_ID")
    if argument is None:
        remembered = State.load().endpoint_id
        if remembered and service_credentials() is None:
            return remembered
    found = local.find_local_endpoint()
    if found is not None:
        return found.endpoint_id
    raise LoginRequiredError(
        "No endpoint to work on: run 'globus-connect-server login ENDPOINT_ID', or set "
        f"{ENDPOINT_VARIABLE}")


@dataclass
class Session:
    endpoint_id: str
    app: globus_sdk.GlobusApp
    explicit_host: str | None = None
    _manager_url: str | None = None

    @property
    def is_client(self) -> bool:
        return isinstance(self.app, globus_sdk.ClientApp)

    def require_login(self) -> None:
        if self.is_client:
            self.app.login()
        elif self.app.login_required():
            raise LoginRequiredError(
                f"Not logged in to endpoint {self.endpoint_id} with the consents it needs: "
                f"run 'globus-connect-server login {self.endpoint_id}'")

    def auth_client(self) -> globus_sdk.AuthClient:
        self.require_login()
        return globus_sdk.AuthClient(app=self.app)

    def transfer_client(self) -> globus_sdk.TransferClient:
        self.require_login()
        return globus_sdk.TransferClient(app=self.app)

    def manager_url(self) -> str:
        """The endpoint's GCS Manager address: this machine's, or what Transfer advertises."""
        if self._manager_url is None:
            found = local.find_local_endpoint()
            if found is not None and found.endpoint_id == self.endpoint_id \
                    and found.manager_url:
                url = found.manager_url
            else:
                document = self.transfer_client().get_endpoint(self.endpoint_id)
                advertised = document.get("gcs_manager_url")
                if not advertised:
                    raise CLIError(f"{self.endpoint_id} is not a Globus Connect Server v5 "
                                   "endpoint with a GCS Manager URL")
                url = str(advertised)
            self._manager_url = with_explicit_host(url, self.explicit_host)
        return self._manager_url

    def gcs_client(self) -> globus_sdk.GCSClient:
        self.require_login()
        url = self.manager_url()
        return globus_sdk.GCSClient(url, authorizer=self.app.get_authorizer(self.endpoint_id))


def with_explicit_host(url: str, explicit_host: str | None) -> str:
    """``--use-explicit-host``: an address (the port stays) or a whole URL replaces the host."""
    if not explicit_host:
        return url
    if "://" in explicit_host:
        return explicit_host.rstrip("/")
    parts = urlsplit(url)
    host = f"[{explicit_host}]" if ":" in explicit_host else explicit_host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")


def open_session(endpoint: str | None = None, *, explicit_host: str | None = None,
                 local_server: bool = False, extra_scopes: list[str] | None = None) -> Session:
    local.point_sdk_at_local_services(local.find_local_endpoint())
    endpoint_id = resolve_endpoint(endpoint)
    consents = State.load().consents.get(endpoint_id, []) if service_credentials() is None \
        else []
    app = make_app(endpoint_id, [*consents, *(extra_scopes or [])], local_server=local_server)
    return Session(endpoint_id, app, explicit_host)


def decoded(document: Any) -> dict[str, Any]:
    """A response's JSON document as a plain dict."""
    data = getattr(document, "data", document)
    return dict(data) if isinstance(data, dict) else {}


def envelope(response: Any) -> dict[str, Any]:
    """The Manager's whole result document (with its ``message``), even from a response
    the SDK unpacks."""
    full = getattr(response, "full_data", None)
    return dict(full) if isinstance(full, dict) else decoded(response)
