"""What this machine knows about the deployment: where Auth is, and which endpoint runs here.

`node setup` writes ``<data dir>/globus-connect-server/info.json`` for the endpoint its node
serves; `isthmus serve` writes ``<data dir>/server.json`` for the all-in-one's endpoint; a
real GCS node has ``/var/lib/globus-connect-server/info.json`` (the file the SDK's
`LocalGlobusConnectServer` reads). The first found names the local endpoint. The Auth and
Transfer addresses come from the `GLOBUS_SDK_*` variables (`isthmus env`) when they are set,
else from the same file, so a command run on a node works without `eval "$(isthmus env)"`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INFO_DIR = "globus-connect-server"
INFO_FILE = "info.json"
SERVER_STATE_FILE = "server.json"
SYSTEM_INFO_FILE = Path("/var/lib/globus-connect-server/info.json")
AUTH_URL_VARIABLE = "GLOBUS_SDK_SERVICE_URL_AUTH"
TRANSFER_URL_VARIABLE = "GLOBUS_SDK_SERVICE_URL_TRANSFER"
VERIFY_VARIABLE = "GLOBUS_SDK_VERIFY_SSL"


def data_dir() -> Path:
    return Path(os.environ.get("ISTHMUS_DATA_DIR") or "~/.isthmus").expanduser()


def info_path(directory: Path) -> Path:
    return directory / INFO_DIR / INFO_FILE


@dataclass(frozen=True)
class LocalEndpoint:
    """The endpoint served on this machine, and how to reach it and its Auth."""

    endpoint_id: str
    manager_url: str | None
    auth_url: str | None
    ca_file: str | None
    source: Path


def _read(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _text(document: dict[str, Any], key: str) -> str | None:
    value = document.get(key)
    return value if isinstance(value, str) and value else None


def find_local_endpoint() -> LocalEndpoint | None:
    directory = data_dir()
    node = _read(info_path(directory))
    if node and _text(node, "endpoint_id"):
        return LocalEndpoint(str(node["endpoint_id"]), _text(node, "manager_url"),
                             _text(node, "auth_url"), _text(node, "ca_file"),
                             info_path(directory))
    server = _read(directory / SERVER_STATE_FILE)
    if server and _text(server, "endpoint_id"):
        base = _text(server, "public_url")
        return LocalEndpoint(str(server["endpoint_id"]), base.rstrip("/") if base else None,
                             base, _text(server, "ca_file"), directory / SERVER_STATE_FILE)
    system = _read(SYSTEM_INFO_FILE)
    if system and _text(system, "endpoint_id"):
        domain = _text(system, "domain_name")
        return LocalEndpoint(str(system["endpoint_id"]),
                             f"https://{domain}" if domain else None, None, None,
                             SYSTEM_INFO_FILE)
    return None


def point_sdk_at_local_services(local: LocalEndpoint | None) -> None:
    """Fill in the SDK's service addresses from the local install where the environment
    does not give them (what `eval "$(isthmus env)"` would have set)."""
    if local is None or local.auth_url is None or os.environ.get(AUTH_URL_VARIABLE):
        return
    base = local.auth_url if local.auth_url.endswith("/") else local.auth_url + "/"
    os.environ[AUTH_URL_VARIABLE] = base
    os.environ.setdefault(TRANSFER_URL_VARIABLE, base)
    if local.ca_file and not os.environ.get(VERIFY_VARIABLE):
        os.environ[VERIFY_VARIABLE] = local.ca_file
