"""How Transfer gets the token it reaches a collection with: dependent tokens kept until
shortly before they expire, asked again when one stops working, consent asked when missing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from isthmus.core.collection_access import ConsentRequiredError, data_access_dependency
from isthmus.core.errors import APIError
from isthmus.core.registry import GCSV5_GUEST_COLLECTION, GCSV5_MAPPED_COLLECTION
from isthmus.core.tokens import DependentToken
from isthmus.transfer.collections import CollectionOpener

COLLECTION = uuid.uuid4()


class FakeAuth:
    """Issues numbered dependent tokens while the user consents."""

    def __init__(self, lifetime: float = 3600) -> None:
        self.consented = True
        self.lifetime = lifetime
        self.asked: list[tuple[str, str]] = []

    def exchange(self, token: str, scope: str, *, offline: bool = False
                 ) -> DependentToken | None:
        self.asked.append((token, scope))
        if not self.consented:
            return None
        return DependentToken(f"dep-{len(self.asked)}", time.time() + self.lifetime)


class FakeCollections:
    """Accepts the tokens in ``valid``; hands back the token a session was opened with."""

    def __init__(self) -> None:
        self.valid: set[str] = set()

    def open(self, collection_id: uuid.UUID, token: str) -> Any:
        if token not in self.valid:
            raise APIError(401, "not_authorized", "The bearer token is not active")
        return token


def opener(auth: FakeAuth, collections: FakeCollections) -> CollectionOpener:
    return CollectionOpener(collections, auth)


def open_mapped(subject: CollectionOpener, token: str = "user-token") -> Any:
    return subject.open(token, COLLECTION, entity_type=GCSV5_MAPPED_COLLECTION,
                        high_assurance=False)


def test_a_dependent_token_is_kept_and_reused() -> None:
    auth, collections = FakeAuth(), FakeCollections()
    collections.valid = {"dep-1"}
    subject = opener(auth, collections)
    assert open_mapped(subject) == "dep-1"
    assert open_mapped(subject) == "dep-1"
    assert auth.asked == [("user-token", f"https://auth.globus.org/scopes/{COLLECTION}/"
                                         "data_access")]
    # Another user token is another user (or session): its own exchange.
    collections.valid.add("dep-2")
    assert open_mapped(subject, "other-token") == "dep-2"


def test_a_token_about_to_expire_is_not_used() -> None:
    auth, collections = FakeAuth(lifetime=30), FakeCollections()
    collections.valid = {"dep-1", "dep-2"}
    subject = opener(auth, collections)
    assert open_mapped(subject) == "dep-1"
    assert open_mapped(subject) == "dep-2"


def test_a_revoked_token_is_forgotten_and_consent_asked_again() -> None:
    auth, collections = FakeAuth(), FakeCollections()
    collections.valid = {"dep-1"}
    subject = opener(auth, collections)
    assert open_mapped(subject) == "dep-1"
    collections.valid.clear()  # the consent was withdrawn: its tokens revoked
    auth.consented = False
    with pytest.raises(ConsentRequiredError) as raised:
        open_mapped(subject)
    assert raised.value.required_scopes == [data_access_dependency(COLLECTION)]
    assert len(auth.asked) == 2


def test_guest_and_high_assurance_collections_take_transfers_token() -> None:
    auth, collections = FakeAuth(), FakeCollections()
    collections.valid = {"user-token"}
    subject = opener(auth, collections)
    assert subject.open("user-token", COLLECTION, entity_type=GCSV5_GUEST_COLLECTION,
                        high_assurance=False) == "user-token"
    assert subject.open("user-token", COLLECTION, entity_type=GCSV5_MAPPED_COLLECTION,
                        high_assurance=True) == "user-token"
    assert auth.asked == []
