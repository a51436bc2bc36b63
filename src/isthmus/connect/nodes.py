"""Nodes: the processes that serve an endpoint's Manager API and data (`node#1.x`).

`node setup` registers the node it starts (`register`); the Manager API lists and changes
them. Anyone with a role on the endpoint may read them; its owner and administrators
change them.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.connect import authz, documents, paging, schemas
from isthmus.connect.authz import Caller
from isthmus.connect.changes import Changes
from isthmus.connect.errors import invalid_input, missing_role, not_found
from isthmus.connect.models import Endpoint, Node

DEFAULTS: dict[str, Any] = {
    "ip_addresses": [], "incoming_port_range": [50000, 51000], "outgoing_port_range": None,
    "data_interface": None, "data_interface6": None, "lan_addresses": [],
    "internal_stream_port_range": None,
}


def _require_reader(session: Session, endpoint: Endpoint, caller: Caller) -> None:
    if not authz.caller_roles(session, endpoint, caller).endpoint:
        raise missing_role("Could not read the nodes. Insufficient permissions",
                           (authz.OWNER, authz.ADMINISTRATOR, authz.ACTIVITY_MANAGER,
                            authz.ACTIVITY_MONITOR))


def _require(session: Session, endpoint: Endpoint, node_id: str) -> Node:
    try:
        key = uuid.UUID(node_id)
    except ValueError:
        raise not_found("Node", node_id) from None
    node = session.get(Node, key)
    if node is None or node.endpoint_id != endpoint.id:
        raise not_found("Node", node_id)
    return node


def list_documents(session: Session, endpoint: Endpoint, caller: Caller,
                   params: Mapping[str, str]) -> paging.Page:
    _require_reader(session, endpoint, caller)
    request = paging.page_request(params)
    statement = select(Node).where(Node.endpoint_id == endpoint.id)
    rows: list[Node] = list(session.scalars(paging.paged(statement, Node.created, Node.id,
                                                         request)))
    page = paging.page_of(rows, request)
    return paging.Page([documents.node_document(node) for node in page.items], page.marker)


def get_document(session: Session, endpoint: Endpoint, caller: Caller,
                 node_id: str) -> dict[str, Any]:
    _require_reader(session, endpoint, caller)
    return documents.node_document(_require(session, endpoint, node_id))


def _apply(node: Node, stored: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if key == "status":
            node.status = value
        else:
            stored[key] = copy.deepcopy(DEFAULTS.get(key)) if value is None else value
    if not stored.get("ip_addresses"):
        raise invalid_input("node", [("ip_addresses", "must name at least one address")])
    node.document = stored


def create(session: Session, endpoint: Endpoint, caller: Caller,
           body: Mapping[str, Any]) -> dict[str, Any]:
    """A node record (`node create`), e.g. for a host set up later with --import-node."""
    authz.require_endpoint_admin(session, endpoint, caller, "create a node")
    values = schemas.NODE.parse(body, creating=True)
    node = Node(id=uuid.uuid4(), endpoint_id=endpoint.id, status="active")
    _apply(node, copy.deepcopy(DEFAULTS), values)
    session.add(node)
    session.flush()
    return documents.node_document(node)


def update(session: Session, endpoint: Endpoint, caller: Caller, node_id: str,
           body: Mapping[str, Any], *, replace: bool) -> dict[str, Any]:
    """PATCH (absent unchanged, null clears) or PUT (the whole document)."""
    authz.require_endpoint_admin(session, endpoint, caller, "update the node")
    node = _require(session, endpoint, node_id)
    values = schemas.NODE.parse(body, creating=replace,
                                stored=documents.node_document(node))
    stored = dict(node.document)
    if replace:
        kept = {documents.NODE_MANAGER_URL: stored[documents.NODE_MANAGER_URL]} \
            if documents.NODE_MANAGER_URL in stored else {}
        stored = {**copy.deepcopy(DEFAULTS), **kept}
    _apply(node, stored, values)
    session.flush()
    return documents.node_document(node)


def delete(session: Session, endpoint: Endpoint, caller: Caller, node_id: str,
           changes: Changes) -> None:
    authz.require_endpoint_admin(session, endpoint, caller, "delete the node")
    remove(session, endpoint, _require(session, endpoint, node_id))
    # Collections are advertised at the endpoint's address, which may have moved.
    changes.all_collections = True


# --- what node setup and cleanup do on the machine --------------------------------------


def register(session: Session, endpoint: Endpoint, node_id: uuid.UUID | None,
             fields: Mapping[str, Any], manager_url: str) -> Node:
    """Record the node `node setup` starts (or take over ``node_id``, made by `node create`);
    the first node to serve an endpoint gives it its Manager URL."""
    values = schemas.NODE.parse({"DATA_TYPE": schemas.NODE.data_type, "status": "active",
                                 **fields}, creating=True)
    node = session.get(Node, node_id) if node_id is not None else None
    if node_id is not None and (node is None or node.endpoint_id != endpoint.id):
        raise not_found("Node", node_id)
    if node is None:
        node = Node(id=uuid.uuid4(), endpoint_id=endpoint.id, status="active")
        session.add(node)
    _apply(node, {**copy.deepcopy(DEFAULTS), documents.NODE_MANAGER_URL: manager_url},
           values)
    if not endpoint.manager_url:
        endpoint.manager_url = manager_url
    session.flush()
    return node


def remove(session: Session, endpoint: Endpoint, node: Node) -> None:
    """Delete a node; if the endpoint was advertised at its address, advertise another
    active node's (or none)."""
    gone = node.document.get(documents.NODE_MANAGER_URL)
    session.delete(node)
    session.flush()
    if gone and endpoint.manager_url == gone:
        others = [row.document.get(documents.NODE_MANAGER_URL) for row in session.scalars(
            select(Node).where(Node.endpoint_id == endpoint.id, Node.status == "active")
            .order_by(Node.created))]
        endpoint.manager_url = next((url for url in others if url), "")
        session.flush()
