"""The rules Auth policies set on a session, for Auth (at login) and resource servers alike.

A policy is satisfied by one authentication in the session whose identity's domain
passes ``domain_constraints_include``/``_exclude`` (wildcards such as ``*.edu``; a domain
in both lists is excluded), which is no older than ``authentication_assurance_timeout``
seconds when one is set, and which used MFA when ``required_mfa``. Auth owns policies;
a service reads one through `PolicyDirectory` and the session through introspection
(`core.tokens.TokenInfo.authentications`), never through Auth's tables.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class PolicyRule:
    id: uuid.UUID
    display_name: str
    high_assurance: bool = False
    assurance_timeout: int | None = None
    required_mfa: bool = False
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Authentication:
    """One identity's latest sign-in in a browser session."""

    identity_id: uuid.UUID
    username: str
    auth_time: datetime
    mfa: bool

    @property
    def domain(self) -> str:
        return self.username.rpartition("@")[2].lower()


class PolicyDirectory(Protocol):
    def policy_rule(self, policy_id: uuid.UUID) -> PolicyRule | None:
        """The policy's rules, None when Auth has no such policy."""


def domain_matches(domain: str, patterns: Sequence[str]) -> bool:
    """``example.edu`` matches itself; ``*.edu`` matches any domain ending in ``.edu``."""
    domain = domain.lower()
    return any(fnmatch.fnmatchcase(domain, pattern.lower()) for pattern in patterns)


def domain_allowed(policy: PolicyRule, domain: str) -> bool:
    if policy.exclude and domain_matches(domain, policy.exclude):
        return False
    return not policy.include or domain_matches(domain, policy.include)


def recent(authentication: Authentication, timeout: int | None, now: datetime) -> bool:
    """Signed in no more than ``timeout`` seconds ago (any time, without one)."""
    return timeout is None or authentication.auth_time >= now - timedelta(seconds=timeout)


def satisfies(policy: PolicyRule, authentication: Authentication, now: datetime) -> bool:
    return (domain_allowed(policy, authentication.domain)
            and recent(authentication, policy.assurance_timeout, now)
            and (authentication.mfa or not policy.required_mfa))
