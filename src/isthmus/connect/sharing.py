"""Sharing policies (``/api/sharing_policies``): path restrictions on what some storage
accounts (or all) may share from a mapped collection, managed by its administrators.
`guests` applies them, joined with the collection's own ``sharing_restrict_paths``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from isthmus.connect import collections, documents, paging, schemas
from isthmus.connect.authz import Caller
from isthmus.connect.errors import bad_request, gcs_error, not_found
from isthmus.connect.models import Collection, Endpoint, SharingPolicy

MAX_POLICIES_PER_COLLECTION = 1000


def _administered_mapped(session: Session, endpoint: Endpoint, caller: Caller,
                         collection_id: uuid.UUID, action: str) -> Collection:
    collection = collections.require_administered(session, endpoint, caller, collection_id,
                                                  action)
    if collection.collection_type != "mapped":
        raise gcs_error(422, f"Collection {collection.id} is a guest collection: sharing "
                        "policies apply to mapped collections")
    return collection


def create(session: Session, endpoint: Endpoint, caller: Caller,
           body: Mapping[str, Any]) -> dict[str, Any]:
    values = schemas.SHARING_POLICY.parse(body, creating=True)
    collection = _administered_mapped(session, endpoint, caller,
                                      uuid.UUID(values["collection_id"]),
                                      "create a sharing policy")
    count = session.scalar(select(func.count()).select_from(SharingPolicy).where(
        SharingPolicy.collection_id == collection.id))
    if (count or 0) >= MAX_POLICIES_PER_COLLECTION:
        raise gcs_error(422, f"Collection {collection.id} already has "
                        f"{MAX_POLICIES_PER_COLLECTION} sharing policies")
    policy = SharingPolicy(id=uuid.uuid4(), endpoint_id=endpoint.id,
                           collection_id=collection.id, users=values.get("users"),
                           sharing_restrict_paths=values["sharing_restrict_paths"])
    session.add(policy)
    session.flush()
    return documents.sharing_policy_document(policy)


def list_documents(session: Session, endpoint: Endpoint, caller: Caller,
                   params: Mapping[str, str]) -> paging.Page:
    raw = params.get("collection_id")
    if not raw:
        raise bad_request("collection_id is required: the mapped collection whose sharing "
                          "policies to list")
    try:
        collection_id = uuid.UUID(raw)
    except ValueError:
        raise bad_request("collection_id must be a UUID") from None
    collection = _administered_mapped(session, endpoint, caller, collection_id,
                                      "list sharing policies")
    request = paging.page_request(params)
    username = params.get("username")
    rows: list[SharingPolicy] = list(session.scalars(
        select(SharingPolicy).where(SharingPolicy.collection_id == collection.id)
        .order_by(SharingPolicy.created, SharingPolicy.id)))
    # Few per collection (bounded above): filtered by username here, then paged.
    if username:
        rows = [row for row in rows if row.users is None or username in row.users]
    if request.after is not None:
        rows = [row for row in rows if (row.created, row.id) > request.after]
    page = paging.page_of(rows[:request.size + 1], request)
    return paging.Page([documents.sharing_policy_document(row) for row in page.items],
                       page.marker)


def _require(session: Session, endpoint: Endpoint, caller: Caller, policy_id: str,
             action: str) -> SharingPolicy:
    try:
        key = uuid.UUID(policy_id)
    except ValueError:
        raise not_found("Sharing Policy", policy_id) from None
    policy = session.get(SharingPolicy, key)
    if policy is None or policy.endpoint_id != endpoint.id:
        raise not_found("Sharing Policy", policy_id)
    _administered_mapped(session, endpoint, caller, policy.collection_id, action)
    return policy


def get_document(session: Session, endpoint: Endpoint, caller: Caller,
                 policy_id: str) -> dict[str, Any]:
    return documents.sharing_policy_document(
        _require(session, endpoint, caller, policy_id, "read the sharing policy"))


def delete(session: Session, endpoint: Endpoint, caller: Caller, policy_id: str) -> None:
    session.delete(_require(session, endpoint, caller, policy_id,
                            "delete the sharing policy"))
    session.flush()
