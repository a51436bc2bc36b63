"""Consents: what an identity approved for a client, kept as a tree of rows.

The root of each tree names the app and the scope it asked for; each child
names the resource server that may use a dependent scope on the user's
behalf. GlobusApp and globus-cli read this tree back through the consents API
to check dependent requirements, so its shape is part of the wire contract.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.auth.models import Consent
from isthmus.auth.scopes import ResolvedScope
from isthmus.core.db import utcnow

_Key = tuple[int | None, uuid.UUID, uuid.UUID]  # (parent consent, client, scope)


def _index(session: Session, identity_id: uuid.UUID) -> dict[_Key, Consent]:
    rows = session.scalars(
        select(Consent).where(Consent.identity_id == identity_id, Consent.status == "approved")
    )
    return {(row.parent_id, row.client_id, row.scope_id): row for row in rows}


def is_consented(
    session: Session, identity_id: uuid.UUID, client_id: uuid.UUID, roots: list[ResolvedScope]
) -> bool:
    index = _index(session, identity_id)
    return all(_find(index, None, client_id, root) for root in roots)


def _find(
    index: dict[_Key, Consent], parent: int | None, client_id: uuid.UUID, node: ResolvedScope
) -> bool:
    row = index.get((parent, client_id, node.scope.id))
    if row is None:
        return False
    if not node.dependencies:
        return True
    acting = node.scope.client_id
    return acting is not None and all(
        _find(index, row.id, acting, child) for child in node.dependencies
    )


def record(
    session: Session,
    identity_id: uuid.UUID,
    client_id: uuid.UUID,
    roots: list[ResolvedScope],
    *,
    auto_approved: bool = False,
) -> list[Consent]:
    """Store every path of the trees not yet approved; returns the root rows."""
    index = _index(session, identity_id)
    now = utcnow()
    return [
        _record_node(session, index, identity_id, None, [], client_id, root, now, auto_approved)
        for root in roots
    ]


def _record_node(
    session: Session,
    index: dict[_Key, Consent],
    identity_id: uuid.UUID,
    parent: Consent | None,
    path: list[int],
    client_id: uuid.UUID,
    node: ResolvedScope,
    now: datetime,
    auto_approved: bool,
) -> Consent:
    key = (parent.id if parent else None, client_id, node.scope.id)
    row = index.get(key)
    if row is None:
        row = Consent(
            identity_id=identity_id,
            client_id=client_id,
            scope_id=node.scope.id,
            parent_id=parent.id if parent else None,
            status="approved",
            allows_refresh=node.scope.allows_refresh_token,
            auto_approved=auto_approved,
            # A dependent consent can be withdrawn without breaking its parent.
            atomically_revocable=parent is not None,
            created=now,
            updated=now,
            last_used=now,
        )
        session.add(row)
        session.flush()
        row.dependency_path = [*path, row.id]
        index[key] = row
    else:
        row.last_used = now
    acting = node.scope.client_id
    if acting is not None:
        for child in node.dependencies:
            _record_node(session, index, identity_id, row, row.dependency_path, acting, child,
                         now, auto_approved)
    return row


def list_for(
    session: Session, identity_id: uuid.UUID, *, client_ids: Iterable[uuid.UUID] | None = None
) -> list[Consent]:
    """An identity's consents; with ``client_ids``, only the trees rooted at those clients."""
    rows = list(session.scalars(
        select(Consent).where(Consent.identity_id == identity_id).order_by(Consent.id)
    ))
    if client_ids is None:
        return rows
    wanted = set(client_ids)
    roots = {row.id for row in rows if row.parent_id is None and row.client_id in wanted}
    return [row for row in rows if row.dependency_path and row.dependency_path[0] in roots]


def revoke(session: Session, consent: Consent) -> list[Consent]:
    """Withdraw a consent and every consent that depends on it; returns the removed rows."""
    removed = [
        row for row in list_for(session, consent.identity_id)
        if consent.id in (row.dependency_path or [])
    ]
    # Deepest first, so no row outlives the parent it points to.
    for row in sorted(removed, key=lambda row: len(row.dependency_path or []), reverse=True):
        session.delete(row)
    session.flush()
    return removed
