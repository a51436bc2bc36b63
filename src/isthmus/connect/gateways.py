"""Storage gateways: creating, listing, changing and deleting them, with their policies.

A gateway names its connector; this server has the connectors in
`documents.CONNECTORS` and refuses others. Policies and identity mappings are
stored as the documents the client sent; the storage layer applies them.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from isthmus.connect import authz, documents, paging, schemas, webdav_gateways
from isthmus.connect.authz import Caller
from isthmus.connect.changes import Changes
from isthmus.connect.endpoints import require_visible
from isthmus.connect.errors import bad_request, conflict, gcs_error, invalid_input, not_found
from isthmus.connect.models import Collection, Endpoint, StorageGateway
from isthmus.connect.schemas import InvalidValueError
from isthmus.core.encryption import SecretBox

# What a gateway document has before anyone sets it.
DEFAULTS: dict[str, Any] = {
    "root": "/", "identity_mappings": None, "restrict_paths": None, "users_allow": None,
    "users_deny": None, "require_mfa": False,
    "authentication_timeout_mins": documents.DEFAULT_AUTHENTICATION_TIMEOUT_MINS,
    "admin_managed_credentials": False, "network_use": None, "max_concurrency": None,
    "preferred_concurrency": None, "max_parallelism": None, "preferred_parallelism": None,
    "process_user": None, "load_dsi_module": None,
}
# Each connector's gateway policy document.
POLICY_SCHEMAS = {documents.POSIX_CONNECTOR_ID: schemas.posix_storage_policies,
                  documents.S3_CONNECTOR_ID: schemas.s3_storage_policies,
                  documents.ACTIVESCALE_CONNECTOR_ID: schemas.s3_storage_policies,
                  documents.WEBDAV_CONNECTOR_ID: webdav_gateways.gateway_policies_schema}
INCLUDES = ("private_policies",)


def includes(params: Mapping[str, str]) -> set[str]:
    wanted = {value.strip() for value in params.get("include", "").split(",") if value.strip()}
    unknown = wanted - set(INCLUDES)
    if unknown:
        raise bad_request(f"Unsupported include value {sorted(unknown)[0]!r}: this list "
                          f"accepts {', '.join(INCLUDES)}")
    return wanted


def _require(session: Session, endpoint: Endpoint, gateway_id: str) -> StorageGateway:
    try:
        key = uuid.UUID(gateway_id)
    except ValueError:
        raise not_found("Storage Gateway", gateway_id) from None
    gateway = session.get(StorageGateway, key)
    if gateway is None or gateway.endpoint_id != endpoint.id:
        raise not_found("Storage Gateway", gateway_id)
    return gateway


def _private(session: Session, endpoint: Endpoint, caller: Caller, wanted: set[str]) -> bool:
    return "private_policies" in wanted and authz.caller_roles(
        session, endpoint, caller).endpoint_admin


def list_documents(
    session: Session, endpoint: Endpoint, caller: Caller, params: Mapping[str, str]
) -> paging.Page:
    require_visible(session, endpoint, caller, "list storage gateways")
    private = _private(session, endpoint, caller, includes(params))
    request = paging.page_request(params)
    statement = select(StorageGateway).where(StorageGateway.endpoint_id == endpoint.id)
    rows: list[StorageGateway] = list(session.scalars(
        paging.paged(statement, StorageGateway.created, StorageGateway.id, request)))
    page = paging.page_of(rows, request)
    return paging.Page([documents.gateway_document(gateway, private=private)
                        for gateway in page.items], page.marker)


def get_document(
    session: Session, endpoint: Endpoint, caller: Caller, gateway_id: str,
    params: Mapping[str, str],
) -> dict[str, Any]:
    require_visible(session, endpoint, caller, "read the storage gateway")
    private = _private(session, endpoint, caller, includes(params))
    return documents.gateway_document(_require(session, endpoint, gateway_id), private=private)


def _check_connector(values: Mapping[str, Any]) -> uuid.UUID:
    connector_id = uuid.UUID(values["connector_id"])
    if connector_id not in documents.CONNECTORS:
        names = ", ".join(f"{name} ({known})" for known, name in documents.CONNECTORS.items())
        raise gcs_error(422, f"Connector {connector_id} is not available on this server; "
                        f"it has: {names}")
    return connector_id


def _check_policies(connector_id: uuid.UUID, policies: Any) -> dict[str, Any] | None:
    if policies is None:
        return None
    try:
        checked: dict[str, Any] = POLICY_SCHEMAS[connector_id](policies)
    except InvalidValueError as error:
        raise invalid_input("storage_gateway", [("policies", str(error))]) from None
    return checked


def _apply(gateway: StorageGateway, stored: dict[str, Any], values: Mapping[str, Any],
           box: SecretBox | None) -> None:
    for key, value in values.items():
        if key == "display_name":
            gateway.display_name = value
        elif key == "high_assurance":
            gateway.high_assurance = value
        elif key == "policies":
            stored[key] = _check_policies(gateway.connector_id, value)
        elif key != "connector_id":
            stored[key] = DEFAULTS.get(key) if value is None else value
    if stored.get("require_mfa") and not gateway.high_assurance:
        raise gcs_error(422, "require_mfa needs a high_assurance storage gateway")
    if webdav_gateways.is_webdav(gateway):
        webdav_gateways.seal_policies(gateway, stored, box)
    gateway.document = stored


def create(
    session: Session, endpoint: Endpoint, caller: Caller, body: Mapping[str, Any],
    box: SecretBox | None = None,
) -> dict[str, Any]:
    authz.require_endpoint_admin(session, endpoint, caller, "create a storage gateway")
    values = schemas.STORAGE_GATEWAY.parse(body, creating=True)
    gateway = StorageGateway(id=uuid.uuid4(), endpoint_id=endpoint.id,
                             connector_id=_check_connector(values), high_assurance=False)
    _apply(gateway, copy.deepcopy(DEFAULTS), values, box)
    session.add(gateway)
    session.flush()
    return documents.gateway_document(gateway, private=True)


def update(
    session: Session, endpoint: Endpoint, caller: Caller, gateway_id: str,
    body: Mapping[str, Any], changes: Changes, *, replace: bool, box: SecretBox | None = None,
) -> dict[str, Any]:
    """PATCH (absent unchanged, null clears) or PUT (the whole document; same connector)."""
    authz.require_endpoint_admin(session, endpoint, caller, "update the storage gateway")
    gateway = _require(session, endpoint, gateway_id)
    current = documents.gateway_document(gateway, private=True)
    values = schemas.STORAGE_GATEWAY.parse(body, creating=False, stored=current)
    if replace:
        missing = [key for key in ("display_name", "allowed_domains") if key not in values]
        if missing:
            raise invalid_input("storage_gateway", [(key, "is required") for key in missing])
    kept = {key: value for key, value in gateway.document.items()
            if key == documents.SEALED_SECRET}  # a PUT need not send the secret again
    _apply(gateway, {**copy.deepcopy(DEFAULTS), **kept} if replace else dict(gateway.document),
           values, box)
    session.flush()
    # Collections show the gateway's assurance settings in Transfer.
    changes.published.update(session.scalars(
        select(Collection.id).where(Collection.storage_gateway_id == gateway.id)))
    return documents.gateway_document(gateway, private=True)


def delete(session: Session, endpoint: Endpoint, caller: Caller, gateway_id: str) -> None:
    authz.require_endpoint_admin(session, endpoint, caller, "delete the storage gateway")
    gateway = _require(session, endpoint, gateway_id)
    in_use = session.scalar(select(func.count()).select_from(Collection).where(
        Collection.storage_gateway_id == gateway.id))
    if in_use:
        raise conflict(f"Storage Gateway {gateway.id} still has {in_use} collection(s); "
                       "delete them first", [str(gateway.id)])
    session.delete(gateway)
    session.flush()
