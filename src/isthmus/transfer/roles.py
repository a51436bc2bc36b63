"""An endpoint's or collection's roles as Transfer shows them (`endpoint_role_list`,
`get_endpoint_role`, what ``globus endpoint role list/show`` print): the grants Connect
publishes to the registry. On GCSv5 roles are made and removed through the GCS Manager API
(``globus gcs endpoint role``, ``globus gcs collection role``), so Transfer only reads them.

Only those the entity's roles concern see them: its owner and the holders of a role on it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from isthmus.core.errors import APIError
from isthmus.core.registry import GROUP_PRINCIPAL, IDENTITY_PRINCIPAL
from isthmus.transfer import registry
from isthmus.transfer.models import RegistryEntity, RegistryGrant
from isthmus.transfer.registry import Caller

# Grants have no id of their own: a role's id is a stable digest of what it grants.
_ROLE_IDS = uuid.UUID("6f1d2c0a-6a4e-4b8e-9a57-2f0b3c9d7e11")


def role_id(entity_id: uuid.UUID, grant: RegistryGrant) -> str:
    return str(uuid.uuid5(_ROLE_IDS, f"{entity_id} {grant.principal} {grant.role}"))


def role_document(entity_id: uuid.UUID, grant: RegistryGrant) -> dict[str, Any]:
    if grant.principal.startswith(GROUP_PRINCIPAL):
        kind, principal = "group", grant.principal.removeprefix(GROUP_PRINCIPAL)
    else:
        kind, principal = "identity", grant.principal.removeprefix(IDENTITY_PRINCIPAL)
    return {"DATA_TYPE": "role", "id": role_id(entity_id, grant), "principal_type": kind,
            "principal": principal, "role": grant.role}


def _readable(session: Session, caller: Caller, entity_id: str) -> RegistryEntity:
    entity = registry.require_visible(session, caller, entity_id)
    principals = set(caller.principals)
    if not (any(owner.identity_id in caller.identities for owner in entity.owners)
            or entity.endpoint_id in caller.identities
            or any(grant.principal in principals for grant in entity.grants)):
        raise APIError(403, "PermissionDenied",
                       f"You hold no role on '{entity.id}': its roles are not yours to see")
    return entity


def _ordered(entity: RegistryEntity) -> list[RegistryGrant]:
    return sorted(entity.grants, key=lambda grant: (grant.role, grant.principal))


def list_roles(session: Session, caller: Caller, entity_id: str) -> dict[str, Any]:
    entity = _readable(session, caller, entity_id)
    return {"DATA_TYPE": "role_list",
            "DATA": [role_document(entity.id, grant) for grant in _ordered(entity)]}


def get_role(session: Session, caller: Caller, entity_id: str, wanted: str) -> dict[str, Any]:
    entity = _readable(session, caller, entity_id)
    for grant in _ordered(entity):
        if role_id(entity.id, grant) == wanted.lower():
            return role_document(entity.id, grant)
    raise APIError(404, "ClientError.NotFound",
                   f"No role '{wanted}' on endpoint '{entity.id}'")
