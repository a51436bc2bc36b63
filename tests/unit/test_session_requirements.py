"""The session-requirement rules as pure functions: policies, domains, timeouts, MFA."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from isthmus.auth.session_requirements import (
    Authentication,
    PolicyRule,
    RequiredIdentity,
    SessionRequirements,
    domain_allowed,
    domain_matches,
    unmet,
    unmet_before_login,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ALICE = uuid.uuid4()
ALICE_UNI = uuid.uuid4()


def auth(identity: uuid.UUID = ALICE, username: str = "alice@isthmus.local",
         age: int = 10, mfa: bool = False) -> Authentication:
    return Authentication(identity, username, NOW - timedelta(seconds=age), mfa)


def policy(**fields: object) -> PolicyRule:
    return PolicyRule(id=uuid.uuid4(), display_name="P", **fields)  # type: ignore[arg-type]


def reasons(authentications: list[Authentication], requirements: SessionRequirements,
            primary: uuid.UUID = ALICE) -> list[str]:
    return [item.reason for item in unmet(authentications, primary, requirements, NOW)]


def test_no_requirements_are_always_met() -> None:
    assert unmet([auth()], ALICE, SessionRequirements(), NOW) == []


def test_domain_patterns() -> None:
    assert domain_matches("uni.example.edu", ["*.edu"])
    assert domain_matches("UNI.example.edu", ["uni.example.edu"])
    assert not domain_matches("example.edu", ["*.example.edu"])
    assert not domain_matches("edu.evil.com", ["*.edu"])
    both = policy(include=("*.edu",), exclude=("bad.edu",))
    assert domain_allowed(both, "good.edu")
    assert not domain_allowed(both, "bad.edu")  # excluded wins
    assert domain_allowed(policy(), "anything.org")


def test_a_policy_is_met_by_any_identity_in_the_session_that_it_accepts() -> None:
    uni_only = SessionRequirements(policies=(policy(include=("uni.edu",)),))
    assert reasons([auth()], uni_only)[0].startswith(
        "The policy \u201cP\u201d requires a login with an identity from uni.edu")
    linked = [auth(), auth(ALICE_UNI, "alice@uni.edu")]
    assert reasons(linked, uni_only) == []
    excluded = SessionRequirements(policies=(policy(exclude=("isthmus.local",)),))
    assert "not from isthmus.local" in reasons([auth()], excluded)[0]
    assert reasons(linked, excluded) == []


def test_the_assurance_timeout_counts_from_the_last_authentication() -> None:
    high = SessionRequirements(policies=(
        policy(high_assurance=True, assurance_timeout=60),))
    assert reasons([auth(age=59)], high) == []
    stale = unmet([auth(age=61)], ALICE, high, NOW)
    assert "within the last 60 seconds" in stale[0].reason
    assert stale[0].usernames == ("alice@isthmus.local",)
    assert not stale[0].needs_mfa
    # A fresh login by an identity the policy does not accept does not help.
    narrow = SessionRequirements(policies=(
        policy(high_assurance=True, assurance_timeout=60, include=("uni.edu",)),))
    assert reasons([auth(age=1), auth(ALICE_UNI, "alice@uni.edu", age=120)], narrow) != []
    assert reasons([auth(age=120), auth(ALICE_UNI, "alice@uni.edu", age=1)], narrow) == []


def test_required_mfa_in_a_policy() -> None:
    strict = SessionRequirements(policies=(
        policy(high_assurance=True, assurance_timeout=600, required_mfa=True),))
    assert strict.wants_mfa
    failed = unmet([auth()], ALICE, strict, NOW)
    assert len(failed) == 1 and failed[0].needs_mfa
    assert unmet([auth(mfa=True)], ALICE, strict, NOW) == []
    # Old MFA is still too old.
    assert "within the last 600 seconds" in reasons([auth(mfa=True, age=601)], strict)[0]


def test_session_required_mfa_is_about_the_acting_identity() -> None:
    wants = SessionRequirements(mfa=True)
    linked = [auth(mfa=False), auth(ALICE_UNI, "alice@uni.edu", mfa=True)]
    assert unmet(linked, ALICE, wants, NOW)[0].needs_mfa
    assert unmet(linked, ALICE_UNI, wants, NOW) == []


def test_single_domain_and_required_identities() -> None:
    single = SessionRequirements(single_domain=("uni.edu", "lab.org"))
    assert reasons([auth()], single) == [
        "This application requires a login with an identity from uni.edu or lab.org."]
    assert reasons([auth(), auth(ALICE_UNI, "alice@uni.edu")], single) == []
    needs_uni = SessionRequirements(
        identities=(RequiredIdentity(ALICE_UNI, "alice@uni.edu", local=True),))
    failed = unmet([auth()], ALICE, needs_uni, NOW)
    assert failed[0].reason == "This application requires you to log in as alice@uni.edu."
    assert failed[0].usernames == ("alice@uni.edu",)
    assert unmet([auth(ALICE_UNI, "alice@uni.edu")], ALICE_UNI, needs_uni, NOW) == []
    assert not needs_uni.accepts(ALICE) and needs_uni.accepts(ALICE_UNI)


def test_required_identities_are_met_by_any_one_of_them() -> None:
    either = SessionRequirements(identities=(
        RequiredIdentity(ALICE, "alice@isthmus.local", local=True),
        RequiredIdentity(ALICE_UNI, "alice@uni.edu", local=False),
    ))
    assert unmet([auth(ALICE_UNI, "alice@uni.edu")], ALICE_UNI, either, NOW) == []
    bob = uuid.uuid4()
    [failed] = unmet([auth(bob, "bob@isthmus.local")], bob, either, NOW)
    assert failed.reason == ("This application requires you to log in with one of these "
                             "identities: alice@isthmus.local, alice@uni.edu.")
    # Only an identity that logs in with a password here fills the form in.
    assert failed.usernames == ("alice@isthmus.local",)
    assert [item.reason for item in unmet_before_login(either)] == [failed.reason]


def test_unknown_required_identities_can_never_be_met() -> None:
    nobody = SessionRequirements(unknown_identities=(uuid.uuid4(),))
    assert not nobody.accepts(ALICE)
    assert reasons([auth()], nobody) == [
        "This application requires a login with an identity that does not exist on this server."
    ]
    assert unmet_before_login(SessionRequirements(mfa=True)) == []


def test_every_failure_is_reported() -> None:
    everything = SessionRequirements(
        policies=(policy(include=("uni.edu",)), policy(assurance_timeout=5)),
        single_domain=("uni.edu",), mfa=True,
    )
    assert len(unmet([auth(age=10)], ALICE, everything, NOW)) == 4
