"""First start: the default endpoint, its node, a POSIX storage gateway and "<host> files".

The collection lies over ``<data dir>/files``; identities of the local
identity provider's domain map to the account the server runs as (the only
account a server that is not root can act as). The first user created owns
the endpoint.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.connect import collections, documents, endpoints, gateways
from isthmus.connect.authz import ADMINISTRATOR, identity_principal
from isthmus.connect.models import Collection, Endpoint, Node, Role, StorageGateway


@dataclass(frozen=True)
class Site:
    """Where and as whom this server runs, as the default endpoint needs to know."""

    host_name: str
    manager_url: str
    files_dir: Path
    local_domain: str
    server_account: str
    addresses: tuple[str, ...]


def _expression_literal(text: str) -> str:
    """``text`` matched literally by an identity-mapping expression (a reduced POSIX ERE)."""
    return "".join(f"\\{char}" if char in ".?*|()\\" else char for char in text)


def default_endpoint(session: Session) -> Endpoint | None:
    return session.scalars(select(Endpoint).order_by(Endpoint.created).limit(1)).first()


def ensure_default_endpoint(
    session: Session, site: Site, *, advertise: bool
) -> tuple[Endpoint, bool]:
    """The endpoint this server hosts, made on first start; True when it was made now.

    ``advertise``: ``site.manager_url`` is where the server is reached now (the
    server itself is starting), so the endpoint advertises it from now on.
    """
    existing = default_endpoint(session)
    if existing is not None:
        if advertise and existing.manager_url != site.manager_url:
            existing.manager_url = site.manager_url
            session.flush()
        return existing, False
    endpoint_id = uuid.uuid4()
    endpoint = Endpoint(
        id=endpoint_id, display_name=f"Isthmus on {site.host_name}", public=True,
        owner_identity_id=None, owner_string=endpoints.client_owner_string(endpoint_id),
        manager_url=site.manager_url, document=copy.deepcopy(endpoints.DEFAULTS),
    )
    session.add(endpoint)
    session.flush()
    session.add(Node(endpoint_id=endpoint.id, status="active", document={
        "ip_addresses": list(site.addresses), "incoming_port_range": None,
        "outgoing_port_range": None}))
    gateway = StorageGateway(
        id=uuid.uuid4(), endpoint_id=endpoint.id, display_name=f"{site.host_name} POSIX",
        connector_id=documents.POSIX_CONNECTOR_ID, high_assurance=False,
        document={**copy.deepcopy(gateways.DEFAULTS), "root": str(site.files_dir),
                  "allowed_domains": [site.local_domain], "identity_mappings": [{
                      "DATA_TYPE": "expression_identity_mapping#1.0.0",
                      "mappings": [{"source": "{username}",
                                    "match": f"(.*)@{_expression_literal(site.local_domain)}",
                                    "output": site.server_account,
                                    "ignore_case": True, "literal": False}]}],
                  # Each user's ~ is their own folder (<files>/<username>), and only it.
                  "restrict_paths": {"DATA_TYPE": "path_restrictions#1.0.0",
                                     "read_write": ["$HOME"], "read": [], "none": []},
                  "policies": {"DATA_TYPE": "posix_storage_policies#1.0.0",
                               "groups_allow": [], "groups_deny": []}},
    )
    session.add(gateway)
    session.flush()
    collection = Collection(
        id=uuid.uuid4(), endpoint_id=endpoint.id, collection_type="mapped",
        storage_gateway_id=gateway.id, display_name=f"{site.host_name} files",
        identity_id=None, public=True,
        document={**collections.defaults_for("mapped"), "collection_base_path": "/",
                  "default_directory": "/~/", "allow_guest_collections": True,
                  "description": f"Files of the users of the Isthmus server on "
                                 f"{site.host_name}"},
    )
    session.add(collection)
    endpoint.default_collection_id = collection.id
    session.flush()
    site.files_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return endpoint, True


def default_collection_id(session: Session, endpoint: Endpoint) -> uuid.UUID | None:
    collection_id = endpoint.default_collection_id
    if collection_id is None or session.get(Collection, collection_id) is None:
        return None
    return collection_id


def claim_ownership(
    session: Session, endpoint: Endpoint, identity_id: uuid.UUID, username: str
) -> bool:
    """The first user becomes owner and administrator of the endpoint, and owner of its
    default collection; later users change nothing."""
    if endpoint.owner_identity_id is not None:
        return False
    endpoints.set_owner(session, endpoint, identity_id, username)
    collection_id = default_collection_id(session, endpoint)
    collection = session.get(Collection, collection_id) if collection_id else None
    if collection is not None and collection.identity_id is None:
        collection.identity_id = identity_id
        session.add(Role(endpoint_id=endpoint.id, collection_id=collection.id,
                         principal=identity_principal(identity_id), role=ADMINISTRATOR,
                         protected=True))
    session.flush()
    return True
