"""What an authorize request demands of the browser session, and whether the session meets it.

The ``session_required_*`` parameters (and the policies they name) are read
once into plain values; `unmet` then judges a session's authentications
against them at a given time, with no database and no clock of its own, so the
rules are testable as functions.

The rules, after the Globus Auth sessions guide and policy fields:
- a policy: as `core.session_policies` says (resource servers judge sessions by it too);
- ``session_required_single_domain``: some authentication is by an identity of
  one of the domains;
- ``session_required_identities``: some authentication is by one of the
  identities, and a login made for the request must be by one of them (`accepts`);
  ids unknown here are allowed, but nobody can meet them;
- ``session_required_mfa``: the acting (primary) identity signed in with MFA.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.auth.builtins import LOCAL_IDP_ID
from isthmus.auth.models import BrowserSession, Identity, Policy
from isthmus.core.session_policies import (
    Authentication,
    PolicyRule,
    domain_allowed,
    domain_matches,
    recent,
    satisfies,
)

MAX_LISTED = 50
MAX_MESSAGE = 2000


class RequirementError(ValueError):
    """A ``session_required_*`` parameter that cannot be honoured as given."""


def rule_of(policy: Policy) -> PolicyRule:
    return PolicyRule(
        id=policy.id, display_name=policy.display_name,
        high_assurance=policy.high_assurance,
        assurance_timeout=policy.authentication_assurance_timeout,
        required_mfa=policy.required_mfa,
        include=tuple(policy.domain_constraints_include)
        if policy.domain_constraints_include else None,
        exclude=tuple(policy.domain_constraints_exclude)
        if policy.domain_constraints_exclude else None,
    )


@dataclass(frozen=True)
class RequiredIdentity:
    id: uuid.UUID
    username: str
    # Logs in with a password here (not through an upstream provider), so the
    # login form may be filled in with its username.
    local: bool


@dataclass(frozen=True)
class SessionRequirements:
    policies: tuple[PolicyRule, ...] = ()
    single_domain: tuple[str, ...] = ()
    # session_required_identities: those known here, and those that are not.
    identities: tuple[RequiredIdentity, ...] = ()
    unknown_identities: tuple[uuid.UUID, ...] = ()
    mfa: bool = False
    message: str | None = None

    @property
    def wants_mfa(self) -> bool:
        return self.mfa or any(policy.required_mfa for policy in self.policies)

    @property
    def wants_identity(self) -> bool:
        return bool(self.identities or self.unknown_identities)

    def accepts(self, identity_id: uuid.UUID) -> bool:
        """Whether a login by this identity may answer the request: with
        ``session_required_identities``, only a login by one of them can."""
        return not self.wants_identity or any(
            required.id == identity_id for required in self.identities
        )


@dataclass(frozen=True)
class Unmet:
    """A requirement the session fails, said so the person signing in knows what to do."""

    reason: str
    # Met only by signing in with a second factor.
    needs_mfa: bool = False
    # Names the identities that could meet it (for prefilling the login form).
    usernames: tuple[str, ...] = field(default=())


# --- reading the request -----------------------------------------------------------


def _listed(params: Mapping[str, str], name: str) -> list[str]:
    items = [item.strip() for item in params.get(name, "").split(",") if item.strip()]
    if len(items) > MAX_LISTED:
        raise RequirementError(f"{name} may list at most {MAX_LISTED} values")
    return list(dict.fromkeys(items))


def _uuids(params: Mapping[str, str], name: str) -> list[uuid.UUID]:
    values = []
    for item in _listed(params, name):
        try:
            values.append(uuid.UUID(item))
        except ValueError:
            raise RequirementError(f"{name} holds an invalid id: {item[:60]!r}") from None
    return list(dict.fromkeys(values))


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name, "").strip().lower()
    if value not in ("", "true", "false"):
        raise RequirementError(f"{name} must be True or False")
    return value == "true"


def parse(session: Session, params: Mapping[str, str]) -> SessionRequirements:
    """The requirements an authorize request carries, with its policies and identities
    looked up."""
    policy_ids = _uuids(params, "session_required_policies")
    found = {
        policy.id: policy
        for policy in session.scalars(select(Policy).where(Policy.id.in_(policy_ids)))
    } if policy_ids else {}
    unknown = [str(policy_id) for policy_id in policy_ids if policy_id not in found]
    if unknown:
        raise RequirementError(
            f"session_required_policies names unknown policies: {', '.join(unknown)}"
        )
    identity_ids = _uuids(params, "session_required_identities")
    identities = {
        identity.id: identity
        for identity in session.scalars(select(Identity).where(Identity.id.in_(identity_ids)))
    } if identity_ids else {}
    message = params.get("session_message", "").strip()[:MAX_MESSAGE] or None
    return SessionRequirements(
        policies=tuple(rule_of(found[policy_id]) for policy_id in policy_ids),
        single_domain=tuple(domain.lower() for domain in _listed(
            params, "session_required_single_domain")),
        identities=tuple(sorted(
            (RequiredIdentity(identity.id, identity.username,
                              local=identity.identity_provider_id == LOCAL_IDP_ID)
             for identity in identities.values()),
            key=lambda required: required.username,
        )),
        unknown_identities=tuple(identity_id for identity_id in identity_ids
                                 if identity_id not in identities),
        mfa=_flag(params, "session_required_mfa"),
        message=message,
    )


def authentications_of(session: Session, browser_session: BrowserSession) -> list[Authentication]:
    ids = [auth.identity_id for auth in browser_session.authentications]
    names = dict(session.execute(
        select(Identity.id, Identity.username).where(Identity.id.in_(ids))
    ).tuples().all()) if ids else {}
    return [
        Authentication(auth.identity_id, names.get(auth.identity_id, ""), auth.auth_time,
                       auth.mfa)
        for auth in browser_session.authentications
    ]


# --- judging a session -------------------------------------------------------------


def _policy_reason(
    policy: PolicyRule, authentications: Sequence[Authentication], now: datetime
) -> Unmet:
    eligible = [auth for auth in authentications if domain_allowed(policy, auth.domain)]
    name = f"The policy \u201c{policy.display_name}\u201d"
    if not eligible:
        if policy.include:
            where = f"from {', '.join(policy.include)}"
            if policy.exclude:
                where += f" (not {', '.join(policy.exclude)})"
        else:
            where = f"not from {', '.join(policy.exclude or ())}"
        return Unmet(f"{name} requires a login with an identity {where}.")
    timeout = policy.assurance_timeout
    fresh = [auth for auth in eligible if recent(auth, timeout, now)]
    usernames = tuple(auth.username for auth in eligible)
    if not fresh:
        return Unmet(f"{name} requires that you have logged in within the last {timeout} "
                     "seconds. Log in again to continue.", usernames=usernames)
    return Unmet(f"{name} requires two-factor authentication. Log in again with your "
                 "authentication code.", needs_mfa=True,
                 usernames=tuple(auth.username for auth in fresh))


def _who_must_log_in(identities: Sequence[RequiredIdentity]) -> str:
    if not identities:
        return ("This application requires a login with an identity that does not exist "
                "on this server.")
    names = ", ".join(required.username for required in identities)
    if len(identities) == 1:
        return f"This application requires you to log in as {names}."
    return f"This application requires you to log in with one of these identities: {names}."


def _identities_unmet(
    requirements: SessionRequirements, authentications: Sequence[Authentication]
) -> Unmet | None:
    if not requirements.wants_identity or any(
        requirements.accepts(auth.identity_id) for auth in authentications
    ):
        return None
    return Unmet(
        _who_must_log_in(requirements.identities),
        usernames=tuple(required.username for required in requirements.identities
                        if required.local),
    )


def unmet_before_login(requirements: SessionRequirements) -> list[Unmet]:
    """What the login page says before anyone has signed in: who must log in. The other
    requirements are judged on the session that login makes."""
    required = _identities_unmet(requirements, ())
    return [required] if required is not None else []


def unmet(
    authentications: Sequence[Authentication],
    primary_identity_id: uuid.UUID,
    requirements: SessionRequirements,
    now: datetime,
) -> list[Unmet]:
    """Every requirement the session fails, in the order a person should fix them."""
    failures: list[Unmet] = []
    required = _identities_unmet(requirements, authentications)
    if required is not None:
        failures.append(required)
    if requirements.single_domain and not any(
        domain_matches(auth.domain, requirements.single_domain) for auth in authentications
    ):
        failures.append(Unmet(
            "This application requires a login with an identity from "
            f"{' or '.join(requirements.single_domain)}."
        ))
    for policy in requirements.policies:
        if not any(satisfies(policy, auth, now) for auth in authentications):
            failures.append(_policy_reason(policy, authentications, now))
    primary = next((auth for auth in authentications if auth.identity_id == primary_identity_id),
                   None)
    if requirements.mfa and (primary is None or not primary.mfa):
        failures.append(Unmet(
            "This application requires two-factor authentication. Log in again with your "
            "authentication code.", needs_mfa=True,
            usernames=(primary.username,) if primary else (),
        ))
    return failures
