"""A Connect node: one endpoint's Manager API (and data) in a process of its own.

`globus-connect-server node setup` writes the node's configuration (``node.json``) and
starts ``python -m isthmus.node_server <node.json>``; the process opens the deployment's
shared database (``ISTHMUS_DATABASE_URL``, or the data dir's SQLite file) and serves the
endpoint it names at the node's address, while Auth, Groups and Transfer stay with the
server at ``auth_url``.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

NODE_FILE = "node.json"


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    endpoint_id: str
    data_dir: str
    # The deployment's shared database (a file readable by its owner only keeps it).
    database_url: str
    listen_host: str
    port: int
    public_url: str
    tls_cert: str
    tls_key: str
    ca_file: str | None
    auth_url: str
    pid: int | None = None

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        document: dict[str, Any] = json.loads(path.read_text())
        values: dict[str, Any] = {key: document.get(key) for key in cls.__dataclass_fields__}
        return cls(**values)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(asdict(self), handle, indent=2)
        temporary.replace(path)


def serve(config: NodeConfig) -> None:
    import uvicorn

    from isthmus.core.config import Settings
    from isthmus.deployment import open_services
    from isthmus.server import NODE_SERVICES, create_app

    settings = Settings.load(config.data_dir, database_url=config.database_url,
                             host=config.listen_host, port=config.port,
                             public_url=config.public_url)
    deployment = open_services(settings, serving=True,
                               endpoint_id=uuid.UUID(config.endpoint_id),
                               auth_url=config.auth_url)
    app = create_app(deployment, services=NODE_SERVICES)
    print(f"Node {config.node_id} of endpoint {config.endpoint_id} is serving at "
          f"{config.public_url}", flush=True)
    uvicorn.run(app, host=config.listen_host, port=config.port, log_level="warning",
                access_log=False, server_header=False, timeout_graceful_shutdown=3,
                ssl_certfile=config.tls_cert, ssl_keyfile=config.tls_key)


if __name__ == "__main__":
    serve(NodeConfig.load(Path(sys.argv[1])))
