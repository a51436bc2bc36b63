"""Who a caller is on a mapped collection: their identities through the gateway's policies
and identity mapping, to one local account.

`GatewayIdentityMapper` is the `access.IdentityMapper` the gateway's own documents
describe (`identity_mapping`: expression rules, external programs, the default mapping);
`resolve_caller` tries a caller's identities in order with `gateway_policies` deciding
domains and users, and says which identity the account came from (its username keys the
caller's home folder on a shared account).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from isthmus.connect.access import CollectionLocation, IdentityMapper, locate
from isthmus.connect.errors import gcs_error
from isthmus.connect.gateway_policies import (
    AccessPolicyError,
    NoAccountMappedError,
    check_user_allowed,
    require_allowed_domain,
)
from isthmus.connect.identity_mapping import (
    IdentityMappingError,
    map_single_identity,
    parse_identity_mappings,
)

logger = logging.getLogger("isthmus.connect")


class GatewayIdentityMapper:
    """`IdentityMapper` by the gateway's ``identity_mappings`` documents, tried in order;
    with none, the default mapping (``user@domain`` -> ``user`` for one allowed domain)."""

    def map_identity(
        self, location: CollectionLocation, identity: Mapping[str, Any]
    ) -> str | None:
        mappings = parse_identity_mappings(
            list(location.identity_mappings), connector_id=str(location.connector_id),
            storage_gateway_id=str(location.storage_gateway_id))
        return map_single_identity(identity, mappings, location.allowed_domains)


@dataclass(frozen=True)
class MappedCaller:
    location: CollectionLocation
    local_username: str
    # The identity the account was mapped from (the caller's own, or a linked one).
    identity: Mapping[str, Any]


def resolve_caller(
    session: Session, collection_id: uuid.UUID, identities: Sequence[Mapping[str, Any]],
    mapper: IdentityMapper,
) -> MappedCaller:
    """The collection's location and the local account a caller acts as there.

    ``identities`` are the caller's, their own first, then those linked to it: the first
    one in the gateway's allowed domains that maps to an account decides. Refuses (403,
    with the GCS detail documents) a caller with no identity in the allowed domains, one
    that maps to no account, and an account ``users_allow``/``users_deny`` exclude.
    """
    location = locate(session, collection_id)
    try:
        for identity in require_allowed_domain(identities, location.allowed_domains):
            local = mapper.map_identity(location, identity)
            if local:
                check_user_allowed(local, location.users_allow, location.users_deny)
                return MappedCaller(location, local, identity)
        raise NoAccountMappedError()
    except AccessPolicyError as refused:
        raise gcs_error(403, refused.message, refused.detail) from None
    except IdentityMappingError as failed:
        # The program or the stored rules failed: the detail is for the log, not the caller.
        logger.warning("identity mapping on storage gateway %s failed: %s (%s)",
                       location.storage_gateway_id, failed.message, failed.detail)
        raise gcs_error(403, f"{failed.message}: no local account could be found") from None
