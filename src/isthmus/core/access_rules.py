"""Access rules on guest collections: Transfer stores them, Connect asks them when it serves data.

Transfer's API (`endpoint_acl_list`, `add_endpoint_acl_rule`, ...) is where a guest
collection's owner and access managers write rules; Connect decides what a caller may
do on a guest collection from the rules that name them, asked through `AccessRules`
(Transfer implements it: in process in the all-in-one server, over HTTPS when split),
never by reading Transfer's tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

IDENTITY = "identity"
GROUP = "group"
ALL_AUTHENTICATED_USERS = "all_authenticated_users"
ANONYMOUS = "anonymous"
PRINCIPAL_TYPES = (IDENTITY, GROUP, ALL_AUTHENTICATED_USERS, ANONYMOUS)

# Permissions, weakest first: no access, read, read and write.
NO_ACCESS, READ, READ_WRITE = "", "r", "rw"
PERMISSIONS = (READ, READ_WRITE)


@dataclass(frozen=True)
class AccessRule:
    """One rule as Connect needs it to decide: who, where, what."""

    principal_type: str  # one of PRINCIPAL_TYPES
    principal: str  # an identity or group id; "" for all_authenticated_users and anonymous
    path: str  # absolute in the guest collection, ending in "/": the rule covers its subtree
    permissions: str  # "r" or "rw"


class AccessRules(Protocol):
    def rules_for(
        self,
        collection_id: uuid.UUID,
        identity_ids: Collection[uuid.UUID],
        group_ids: Collection[uuid.UUID],
    ) -> tuple[AccessRule, ...]:
        """The guest collection's unexpired rules that apply to a caller with these
        identities and groups: those naming one of them, ``all_authenticated_users`` when
        ``identity_ids`` is not empty, and ``anonymous`` ones (which apply to everyone)."""
