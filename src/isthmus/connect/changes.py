"""What a unit of work changed that Auth and Transfer must learn once it has committed.

Connect's writes and the registrations they imply live in different services;
they are told after the commit (a refused write tells nobody anything), and
`service.ConnectService.reconcile` repairs on each start whatever a crash
between the two left undone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass
class Changes:
    # The endpoint's own Auth client needs its name brought up to date.
    endpoint_renamed: bool = False
    # Collections to register (or rename) in Auth: id -> display name.
    registrations: dict[uuid.UUID, str] = field(default_factory=dict)
    # Collections whose Auth clients go.
    unregistrations: list[uuid.UUID] = field(default_factory=list)
    # Collections to publish again in Transfer's registry (the endpoint always is).
    published: set[uuid.UUID] = field(default_factory=set)
    # Every collection too: endpoint roles reach into all of them.
    all_collections: bool = False
    withdrawn: set[uuid.UUID] = field(default_factory=set)

    def collection_saved(self, collection_id: uuid.UUID, display_name: str) -> None:
        self.registrations[collection_id] = display_name
        self.published.add(collection_id)

    def collection_deleted(self, collection_id: uuid.UUID) -> None:
        self.unregistrations.append(collection_id)
        self.withdrawn.add(collection_id)
        self.published.discard(collection_id)
        self.registrations.pop(collection_id, None)
