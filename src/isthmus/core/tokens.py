"""How services learn who is calling, and act for them: token introspection and the
dependent-token grant at Auth, behind two interfaces.

Auth implements `TokenIntrospector` and `DependentTokens`; Transfer and Connect use them.
In the all-in-one process the calls stay in process; a split deployment plugs in HTTPS
implementations. Introspection results are cached for at most
``Settings.introspection_cache_seconds`` so a revocation shows within a second.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from isthmus.core.session_policies import Authentication


@dataclass(frozen=True)
class TokenInfo:
    """What an active access token says about its bearer."""

    identity_id: uuid.UUID
    username: str
    client_id: uuid.UUID
    resource_server: str
    scopes: frozenset[str]
    expires_at: float | None
    session_id: uuid.UUID | None
    # Every identity linked to the bearer's (the bearer's own included): roles and
    # permissions granted to any of them apply to the caller, as Globus services do.
    identity_set: frozenset[uuid.UUID] = frozenset()
    # The sign-ins of the token's browser session (introspection's ``session_info``, asked
    # for with ``session_info=True``): what high assurance, MFA and Auth policies are
    # judged by. Empty without a session, or when not asked for.
    authentications: tuple[Authentication, ...] = ()

    @property
    def identities(self) -> frozenset[uuid.UUID]:
        return self.identity_set | {self.identity_id}


class TokenIntrospector(Protocol):
    def introspect(self, token: str, *, session_info: bool = False) -> TokenInfo | None:
        """The token's facts when it is active, else None; with ``session_info``, its
        session's sign-ins too (``include=session_info``: only those who judge them pay)."""


@dataclass(frozen=True)
class DependentToken:
    """An access token Auth issued to a service for a scope its own scope depends on."""

    access_token: str = field(repr=False)
    expires_at: float  # seconds since the epoch
    refresh_token: str | None = field(default=None, repr=False)


class DependentTokens(Protocol):
    """The dependent-token grant, as one resource server (the service holding this) uses it."""

    def exchange(self, token: str, scope: str, *, offline: bool = False
                 ) -> DependentToken | None:
        """A token for ``scope`` acting as the user of ``token`` (an access token issued for
        this service), or None when the user has not consented to ``scope`` under it.
        ``offline`` also asks for a refresh token (work that outlives the request)."""

    def refresh(self, refresh_token: str) -> DependentToken | None:
        """A new access token from a refresh token ``exchange`` gave with ``offline``, or
        None when Auth no longer honours it (the user revoked the consent behind it)."""


class CachedIntrospector:
    """A short-lived cache in front of another introspector (thread-safe, bounded)."""

    def __init__(self, inner: TokenIntrospector, ttl: float, max_entries: int = 10_000) -> None:
        self._inner = inner
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[tuple[str, bool], tuple[float, TokenInfo | None]] = {}
        self._lock = threading.Lock()

    def introspect(self, token: str, *, session_info: bool = False) -> TokenInfo | None:
        now = time.monotonic()
        key = (token, session_info)
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            info = cached[1]
            if info is None or info.expires_at is None or info.expires_at > time.time():
                return info
        info = self._inner.introspect(token, session_info=session_info)
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (now + self._ttl, info)
        return info
