"""What a collection demands of the caller's Globus Auth session before serving data.

As GCS enforces it on data access:
- a high-assurance storage gateway wants a sign-in, in the session the token came
  from, by one of the caller's identities (from the gateway's ``allowed_domains`` on a
  mapped collection) within ``authentication_timeout_mins``, with MFA when the gateway
  has ``require_mfa``;
- a guest collection wants its mapped collection's ``guest_auth_policy_id`` (an Auth
  policy) satisfied by the session.

A refusal is a 403 whose body carries ``authorization_parameters`` (the
``session_required_*`` parameters to log in again with), which the SDK reads as
``err.info.authorization_parameters`` and `globus_sdk.gare.to_gare`, and, for the
gateway, the ``authentication_timeout#1.1.0`` detail globus-cli looks for. The session
comes from Auth's introspection and the policy from Auth's `PolicyDirectory`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from isthmus.connect.documents import DEFAULT_AUTHENTICATION_TIMEOUT_MINS
from isthmus.connect.models import Collection, StorageGateway
from isthmus.core.errors import APIError
from isthmus.core.session_policies import (
    Authentication,
    PolicyDirectory,
    domain_matches,
    recent,
    satisfies,
)
from isthmus.core.tokens import TokenInfo


@dataclass(frozen=True)
class SessionDemands:
    """One collection's demands on sessions (nothing, for most)."""

    high_assurance: bool = False
    timeout_mins: int = DEFAULT_AUTHENTICATION_TIMEOUT_MINS
    require_mfa: bool = False
    # Whose sign-ins count on a high-assurance gateway (empty: any of the caller's).
    allowed_domains: tuple[str, ...] = ()
    policy_id: uuid.UUID | None = None

    @property
    def any(self) -> bool:
        return self.high_assurance or self.policy_id is not None


def demands_of(session: Session, collection: Collection,
               gateway: StorageGateway) -> SessionDemands:
    policy_id = None
    if collection.mapped_collection_id is not None:
        mapped = session.get(Collection, collection.mapped_collection_id)
        assert mapped is not None  # guests go with their mapped collection
        policy_text = mapped.document.get("guest_auth_policy_id")
        policy_id = uuid.UUID(policy_text) if policy_text else None
    if not gateway.high_assurance:
        return SessionDemands(policy_id=policy_id)
    document = gateway.document
    return SessionDemands(
        high_assurance=True,
        timeout_mins=document.get("authentication_timeout_mins")
        or DEFAULT_AUTHENTICATION_TIMEOUT_MINS,
        require_mfa=bool(document.get("require_mfa", False)),
        allowed_domains=tuple(document.get("allowed_domains") or ())
        if collection.collection_type == "mapped" else (),
        policy_id=policy_id,
    )


def check(demands: SessionDemands, info: TokenInfo, policies: PolicyDirectory,
          now: datetime) -> None:
    """Nothing when the token's session meets the demands; else the 403 described above."""
    parameters: dict[str, Any] = {}
    reasons: list[str] = []
    detail = None
    if demands.high_assurance:
        detail = _high_assurance(demands, info, now, parameters, reasons)
    if demands.policy_id is not None:
        _policy(demands.policy_id, info, policies, now, parameters, reasons)
    if not reasons:
        return
    message = " ".join(reasons)
    parameters["session_message"] = message
    raise APIError(403, "permission_denied", message,
                   extra={"detail": detail, "authorization_parameters": parameters})


def _high_assurance(demands: SessionDemands, info: TokenInfo, now: datetime,
                    parameters: dict[str, Any], reasons: list[str]) -> dict[str, Any] | None:
    eligible = [auth for auth in info.authentications if _counts(demands, info, auth)]
    timeout = demands.timeout_mins * 60
    fresh = [auth for auth in eligible if recent(auth, timeout, now)]
    if any(auth.mfa or not demands.require_mfa for auth in fresh):
        return None
    if demands.allowed_domains:
        parameters["session_required_single_domain"] = list(demands.allowed_domains)
    identities = sorted({str(auth.identity_id) for auth in eligible}) or (
        [str(info.identity_id)] if _in_domains(demands, info.username) else [])
    if identities:
        parameters["session_required_identities"] = identities
    if demands.require_mfa:
        parameters["session_required_mfa"] = True
    if eligible and not fresh:
        parameters["prompt"] = "login"  # only a new sign-in can be recent enough
    needs = f"within the last {demands.timeout_mins} minutes"
    if demands.require_mfa:
        needs += " with two-factor authentication"
    if demands.allowed_domains:
        needs += f" with an identity from {', '.join(demands.allowed_domains)}"
    reasons.append(f"This collection is high assurance: you must have logged in {needs}.")
    return {"DATA_TYPE": "authentication_timeout#1.1.0", "high_assurance": True,
            "identities": identities, "require_mfa": demands.require_mfa}


def _in_domains(demands: SessionDemands, username: str) -> bool:
    domain = username.rpartition("@")[2]
    return not demands.allowed_domains or domain_matches(domain, demands.allowed_domains)


def _counts(demands: SessionDemands, info: TokenInfo, auth: Authentication) -> bool:
    return auth.identity_id in info.identities and _in_domains(demands, auth.username)


def _policy(policy_id: uuid.UUID, info: TokenInfo, policies: PolicyDirectory,
            now: datetime, parameters: dict[str, Any], reasons: list[str]) -> None:
    rule = policies.policy_rule(policy_id)
    if rule is None:
        # Fail closed: nobody can meet a policy Auth no longer has.
        raise APIError(403, "permission_denied", f"This collection requires the Globus "
                       f"Auth policy {policy_id}, which does not exist")
    if any(satisfies(rule, auth, now) for auth in info.authentications):
        return
    parameters["session_required_policies"] = [str(rule.id)]
    reasons.append(f"This collection requires that your session meet the policy "
                   f"\u201c{rule.display_name}\u201d.")
