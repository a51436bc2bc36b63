"""What collections demand of sessions (`connect.session_checks`), as functions of a token's
sign-ins, a policy and the time."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from isthmus.connect.session_checks import SessionDemands, check
from isthmus.core.db import utcnow
from isthmus.core.errors import APIError
from isthmus.core.session_policies import Authentication, PolicyRule
from isthmus.core.tokens import TokenInfo

NOW = utcnow()
ANN = uuid.uuid4()
ANN_CAMPUS = uuid.uuid4()
POLICY = PolicyRule(uuid.uuid4(), "Campus, recently, with MFA", high_assurance=True,
                    assurance_timeout=600, required_mfa=True, include=("campus.edu",))


class Policies:
    def policy_rule(self, policy_id: uuid.UUID) -> PolicyRule | None:
        return POLICY if policy_id == POLICY.id else None


def token(*sign_ins: Authentication) -> TokenInfo:
    return TokenInfo(identity_id=ANN, username="ann@lab.org", client_id=uuid.uuid4(),
                     resource_server="c", scopes=frozenset(), expires_at=None,
                     session_id=uuid.uuid4(), identity_set=frozenset({ANN, ANN_CAMPUS}),
                     authentications=sign_ins)


def signed_in(identity: uuid.UUID, minutes_ago: int, *, mfa: bool = False) -> Authentication:
    username = "ann@lab.org" if identity == ANN else "ann@campus.edu"
    return Authentication(identity, username, NOW - timedelta(minutes=minutes_ago), mfa)


def refusal(demands: SessionDemands, info: TokenInfo) -> APIError:
    with pytest.raises(APIError) as refused:
        check(demands, info, Policies(), NOW)
    assert refused.value.status == 403
    return refused.value


def test_an_auth_policy_is_met_by_one_sign_in_of_the_session() -> None:
    demands = SessionDemands(policy_id=POLICY.id)
    check(demands, token(signed_in(ANN, 1), signed_in(ANN_CAMPUS, 5, mfa=True)), Policies(),
          NOW)
    for info in (token(signed_in(ANN, 1, mfa=True)),  # not from campus.edu
                 token(signed_in(ANN_CAMPUS, 11, mfa=True)),  # too long ago
                 token(signed_in(ANN_CAMPUS, 1)),  # no MFA
                 token()):  # no session at all
        refused = refusal(demands, info)
        parameters = refused.extra["authorization_parameters"]
        assert parameters["session_required_policies"] == [str(POLICY.id)]
        assert "Campus, recently, with MFA" in parameters["session_message"]
    # A policy Auth no longer has cannot be met.
    gone = refusal(SessionDemands(policy_id=uuid.uuid4()), token(signed_in(ANN, 0)))
    assert "does not exist" in gone.message and "authorization_parameters" not in gone.extra


def test_high_assurance_counts_only_sign_ins_from_the_allowed_domains() -> None:
    demands = SessionDemands(high_assurance=True, timeout_mins=30,
                             allowed_domains=("campus.edu",))
    check(demands, token(signed_in(ANN_CAMPUS, 29)), Policies(), NOW)
    refused = refusal(demands, token(signed_in(ANN, 0), signed_in(ANN_CAMPUS, 31)))
    parameters = refused.extra["authorization_parameters"]
    assert parameters["session_required_identities"] == [str(ANN_CAMPUS)]
    assert parameters["session_required_single_domain"] == ["campus.edu"]
    assert parameters["prompt"] == "login"
    assert refused.extra["detail"]["identities"] == [str(ANN_CAMPUS)]
    # Only a lab.org sign-in: campus.edu is asked for, by domain (no identity to name).
    parameters = refusal(demands, token(signed_in(ANN, 0))).extra["authorization_parameters"]
    assert "session_required_identities" not in parameters and "prompt" not in parameters
    # Both demands at once: one message and one set of parameters for both.
    both = refusal(SessionDemands(high_assurance=True, require_mfa=True, policy_id=POLICY.id),
                   token(signed_in(ANN, 0)))
    parameters = both.extra["authorization_parameters"]
    assert parameters["session_required_mfa"] is True
    assert parameters["session_required_policies"] == [str(POLICY.id)]
    assert parameters["session_required_identities"] == [str(ANN)]
