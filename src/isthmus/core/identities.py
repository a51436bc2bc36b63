"""How services learn who an identity id names, behind one interface Auth implements.

Groups (and later Transfer's access rules) show usernames next to identity ids
and refuse ids that name nobody. In the all-in-one process Auth answers in
process; a split deployment plugs in a client of Auth's ``/v2/api/identities``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class IdentityRecord:
    """The public facts about one identity that other services show."""

    id: uuid.UUID
    username: str
    # Where the identity is mailed (task notifications), when it has an address.
    email: str | None = None


class IdentityDirectory(Protocol):
    def lookup_identities(
        self, identity_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, IdentityRecord]:
        """The identities among ``identity_ids`` that exist; unknown ids are left out."""
