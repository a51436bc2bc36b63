"""Reaching a collection's files for the user behind a Transfer token.

A mapped collection that is not high assurance is reached with a token for its
``data_access`` scope, which Transfer gets from Auth by the dependent-token grant (its own
scope depends on it once the user consented); without that consent the user is asked for
it with ``ConsentRequired``. Guest and high-assurance collections take Transfer's own token.
Dependent tokens are kept until shortly before they expire, keyed by a digest of the user's
token (never logged, never stored).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

from isthmus.core.collection_access import (
    CollectionAccess,
    CollectionSession,
    ConsentRequiredError,
    data_access_dependency,
)
from isthmus.core.errors import APIError
from isthmus.core.registrations import collection_scope
from isthmus.core.registry import GCSV5_MAPPED_COLLECTION
from isthmus.core.secrets import digest
from isthmus.core.tokens import DependentToken, DependentTokens
from isthmus.transfer import credentials

# A dependent token is not used in its last minute: a task step may outlast it.
_MARGIN_SECONDS = 60.0


def needs_data_access(entity_type: str, high_assurance: bool) -> bool:
    return entity_type == GCSV5_MAPPED_COLLECTION and not high_assurance


@dataclass
class CollectionOpener:
    """Sessions on collections for Transfer's callers (thread-safe)."""

    collections: CollectionAccess
    dependent_tokens: DependentTokens
    max_entries: int = 10_000
    _cache: dict[tuple[str, uuid.UUID], DependentToken] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def token_for(self, token: str, collection_id: uuid.UUID, *, entity_type: str,
                  high_assurance: bool) -> str:
        """The token that speaks for the user of Transfer ``token`` on the collection."""
        if not needs_data_access(entity_type, high_assurance):
            return token
        key = (digest(token), collection_id)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached.expires_at - _MARGIN_SECONDS > time.time():
            return cached.access_token
        issued = self.dependent_tokens.exchange(token, collection_scope(collection_id,
                                                                        "data_access"))
        if issued is None:
            raise ConsentRequiredError(collection_id, [data_access_dependency(collection_id)])
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = issued
        return issued.access_token

    def task_grant(self, token: str, collection_id: uuid.UUID, *, entity_type: str,
                   high_assurance: bool) -> DependentToken:
        """What a task's worker reaches the collection with, long after ``token`` is gone:
        a dependent token with a refresh token (`transfer.credentials`), else ``token``."""
        if not needs_data_access(entity_type, high_assurance):
            return credentials.lasting(token)
        issued = self.dependent_tokens.exchange(
            token, collection_scope(collection_id, "data_access"), offline=True)
        if issued is None:
            raise ConsentRequiredError(collection_id, [data_access_dependency(collection_id)])
        return issued

    def forget(self, token: str, collection_id: uuid.UUID) -> None:
        with self._lock:
            self._cache.pop((digest(token), collection_id), None)

    def open(self, token: str, collection_id: uuid.UUID, *, entity_type: str,
             high_assurance: bool) -> CollectionSession:
        def attempt() -> CollectionSession:
            return self.collections.open(collection_id, self.token_for(
                token, collection_id, entity_type=entity_type, high_assurance=high_assurance))

        try:
            return attempt()
        except APIError as error:
            if error.status != 401 or not needs_data_access(entity_type, high_assurance):
                raise
            # A kept dependent token revoked meanwhile (the consent withdrawn): ask again.
            self.forget(token, collection_id)
            return attempt()
