"""WebDAV gateways' connectors come from the endpoint's pool: one per (upstream folder, user
credential, trusted CAs), so the sessions of one user reuse its HTTPS connections and no
other user's session is ever lent it."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from isthmus.connect.connectors import ConnectorPool
from isthmus.connect.models import StorageGateway, UserCredential
from isthmus.connect.webdav_gateways import SEALED_SECRET, lease_connector
from isthmus.core.encryption import SecretBox
from isthmus.storage.webdav import WebDAVConnector


def _gateway(box: SecretBox, url: str) -> StorageGateway:
    gateway_id = uuid.uuid4()
    return StorageGateway(id=gateway_id, document={
        "policies": {"webdav_url": url, "oauth_authorize_url": "https://up.example/authorize",
                     "oauth_token_url": "https://up.example/token", "oauth_client_id": "c"},
        SEALED_SECRET: box.seal("secret", f"webdav-client-secret:{gateway_id}")})


def test_one_connector_per_credential_and_folder(tmp_path: Path) -> None:
    box = SecretBox.load_or_create(tmp_path / "keys")
    pool = ConnectorPool()
    unused: sessionmaker[Session] = sessionmaker()  # tokens are read only by requests
    gateway = _gateway(box, "https://up.example/data/c")
    alice, bob = UserCredential(id=uuid.uuid4()), UserCredential(id=uuid.uuid4())
    first = lease_connector(pool, unused, box, gateway, alice, "/lab")
    assert isinstance(first.connector, WebDAVConnector)
    assert first.connector.base_url == "https://up.example/data/c/lab"
    first.release()
    again = lease_connector(pool, unused, box, gateway, alice, "/lab")
    assert again.connector is first.connector  # its connections kept
    others = [lease_connector(pool, unused, box, gateway, bob, "/lab"),
              lease_connector(pool, unused, box, gateway, alice, "/other"),
              lease_connector(pool, unused, box, _gateway(box, "https://elsewhere.example/dav"),
                              alice, "/lab")]
    assert len({id(lease.connector) for lease in [again, *others]}) == 4
    for lease in [again, *others]:
        lease.release()
    pool.close()
    assert len(pool) == 0
