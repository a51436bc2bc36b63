"""Endpoints and nodes beyond the all-in-one's: what `globus-connect-server endpoint setup`,
`endpoint cleanup`, `node setup` and `node cleanup` do on a machine of the deployment.

These commands run where the deployment's database is reachable (every node shares
``ISTHMUS_DATABASE_URL``), as GCS runs them on its nodes, and work through the services'
public functions: Connect's tables, Auth's registrations (the endpoint's client, its
``manage_collections`` scope, its deployment-key secret) and Transfer's registry.

The deployment key (``deployment-key.json``, mode 0600) holds the endpoint's Auth client
credentials; whoever holds it may add nodes to the endpoint or delete it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isthmus.auth import clients, identities
from isthmus.auth.errors import OAuthError
from isthmus.connect import endpoints, nodes
from isthmus.connect.models import Endpoint, Node
from isthmus.core.db import reading, transaction
from isthmus.core.errors import APIError, bad_request
from isthmus.core.secrets import same_digest
from isthmus.deployment import Deployment

KEY_DATA_TYPE = "deployment_key#1.0.0"


@dataclass(frozen=True)
class DeploymentKey:
    endpoint_id: uuid.UUID
    client_id: uuid.UUID
    secret: str
    # Where the deployment's Auth (and Transfer) is reached: what nodes point clients at.
    auth_url: str

    def document(self) -> dict[str, str]:
        return {"DATA_TYPE": KEY_DATA_TYPE, "endpoint_id": str(self.endpoint_id),
                "client_id": str(self.client_id), "secret": self.secret,
                "auth_url": self.auth_url}

    def write(self, path: Path, *, replace: bool = False) -> None:
        """Write the key readable by its owner only; never over another key by accident."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
        try:
            descriptor = os.open(path, flags, 0o600)
        except FileExistsError:
            raise bad_request(f"{path} already exists: it holds another endpoint's "
                              "deployment key") from None
        with os.fdopen(descriptor, "w") as handle:
            json.dump(self.document(), handle, indent=2)
            handle.write("\n")
        path.chmod(0o600)

    @classmethod
    def read(cls, path: Path) -> DeploymentKey:
        try:
            document = json.loads(path.read_text())
        except OSError as error:
            raise bad_request(f"Cannot read the deployment key {path}: "
                              f"{error.strerror}") from None
        except ValueError:
            raise bad_request(f"{path} is not a deployment key (not JSON)") from None
        return cls.parse(document, str(path))

    @classmethod
    def parse(cls, document: Any, where: str) -> DeploymentKey:
        if not isinstance(document, dict):
            raise bad_request(f"{where} is not a deployment key")
        try:
            return cls(uuid.UUID(str(document["endpoint_id"])),
                       uuid.UUID(str(document["client_id"])), str(document["secret"]),
                       str(document.get("auth_url") or ""))
        except (KeyError, ValueError):
            raise bad_request(f"{where} is not a deployment key: it needs endpoint_id, "
                              "client_id and secret") from None


def resolve_identity(deployment: Deployment, name: str) -> tuple[uuid.UUID, str]:
    """An identity by id or username (a bare name is in the local domain), as (id, username);
    a local-domain user who has not logged in yet is provisioned, as Auth's lookup does."""
    with transaction(deployment.auth.sessions) as session:
        try:
            key = uuid.UUID(name)
        except ValueError:
            wanted = identities.qualify(session, name) if "@" not in name else name
            found = identities.find_identities(session, ids=None, usernames=wanted,
                                               provision=True)
        else:
            found = identities.find_identities(session, ids=str(key), usernames=None,
                                               provision=False)
        if not found:
            raise bad_request(f"No identity {name!r} is known to Auth")
        return found[0].id, found[0].username


def setup_endpoint(
    deployment: Deployment, display_name: str, fields: Mapping[str, Any], *, public: bool,
    owner: tuple[uuid.UUID, str], advertise_owner: bool,
) -> DeploymentKey:
    """Make an endpoint: its row and owner, its Auth client (id = endpoint id) with the
    manage_collections scope and a secret for the key, and its entry in Transfer."""
    with transaction(deployment.auth.sessions) as session:
        endpoint = endpoints.create_endpoint(session, display_name, fields, public=public,
                                             owner=owner, advertise_owner=advertise_owner)
        endpoint_id = endpoint.id
    deployment.connect_for(endpoint_id).reconcile()
    with transaction(deployment.auth.sessions) as session:
        client = clients.require_client(session, endpoint_id)
        _, secret = clients.add_credential(session, client, "deployment key")
    return DeploymentKey(endpoint_id, endpoint_id, secret, deployment.settings.public_url)


def _endpoint(deployment: Deployment, key: DeploymentKey) -> None:
    """The key's endpoint exists here and the key's secret is its client's (or 403)."""
    with reading(deployment.auth.sessions) as session:
        endpoints.require_endpoint(session, key.endpoint_id)
        try:
            clients.authenticate_confidential(session, str(key.client_id), key.secret)
        except OAuthError:
            raise APIError(403, "FORBIDDEN", "The deployment key's client credentials are "
                           f"not endpoint {key.endpoint_id}'s") from None
    if key.client_id != key.endpoint_id:
        raise APIError(403, "FORBIDDEN", "The deployment key's client is not its endpoint's")


def cleanup_endpoint(deployment: Deployment, key: DeploymentKey) -> list[uuid.UUID]:
    """Delete the endpoint with everything on it, its Auth clients, its Transfer entries and
    its OIDC server's identity provider; the ids of the collections that went."""
    _endpoint(deployment, key)
    with transaction(deployment.auth.sessions) as session:
        endpoint = endpoints.require_endpoint(session, key.endpoint_id)
        collection_ids = endpoints.delete_endpoint(session, endpoint)
    connect = deployment.connect_for(key.endpoint_id)
    deployment.transfer.withdraw([key.endpoint_id, *collection_ids])
    for client_id in [*collection_ids, key.endpoint_id]:
        connect.registrar.unregister(client_id)
    # Its own OIDC server went with it: Auth stops offering it (a no-op if it had none).
    connect.identity_providers.unregister_provider(key.endpoint_id)
    return collection_ids


def register_node(
    deployment: Deployment, key: DeploymentKey, node_id: uuid.UUID | None,
    fields: Mapping[str, Any], manager_url: str,
) -> uuid.UUID:
    """Record a node of the key's endpoint served at ``manager_url`` (see `nodes.register`)."""
    _endpoint(deployment, key)
    with transaction(deployment.auth.sessions) as session:
        endpoint = endpoints.require_endpoint(session, key.endpoint_id)
        node = nodes.register(session, endpoint, node_id, fields, manager_url)
        registered = node.id
    deployment.connect_for(key.endpoint_id).reconcile()
    return registered


def remove_node(deployment: Deployment, endpoint_id: uuid.UUID, node_id: uuid.UUID) -> bool:
    """Delete a node record (False when it was already gone)."""
    with transaction(deployment.auth.sessions) as session:
        endpoint = session.get(Endpoint, endpoint_id)
        node = session.get(Node, node_id)
        if endpoint is None or node is None or node.endpoint_id != endpoint_id:
            return False
        nodes.remove(session, endpoint, node)
    deployment.connect_for(endpoint_id).reconcile()
    return True


def rotate_secret(deployment: Deployment, key: DeploymentKey) -> DeploymentKey:
    """A new secret for the endpoint's client; the key's old one is revoked."""
    _endpoint(deployment, key)
    with transaction(deployment.auth.sessions) as session:
        client = clients.require_client(session, key.client_id)
        retired = [credential for credential in client.credentials
                   if same_digest(key.secret, credential.secret_digest)]
        _, secret = clients.add_credential(session, client, "deployment key")
        for credential in retired:
            session.delete(credential)
    return DeploymentKey(key.endpoint_id, key.client_id, secret, key.auth_url)
