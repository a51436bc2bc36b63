"""Which groups an identity belongs to, behind one interface the Groups service implements.

Auth asks it when a project is administered by a group (``admin_group_ids``);
Transfer and Connect will ask it for group principals in access rules and roles.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Protocol


class GroupMembership(Protocol):
    def groups_of(self, identity_ids: Collection[uuid.UUID]) -> frozenset[uuid.UUID]:
        """The groups in which any of ``identity_ids`` is an active member."""
