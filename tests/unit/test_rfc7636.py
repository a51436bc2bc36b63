"""PKCE values are checked whole: a trailing newline is not part of a valid one."""

from __future__ import annotations

from isthmus.auth import rfc7636

VERIFIER = "v" * 43


def test_a_challenge_is_exactly_43_base64url_characters() -> None:
    challenge = rfc7636.s256_challenge(VERIFIER)
    assert rfc7636.is_valid_challenge(challenge)
    for bad in (challenge + "\n", challenge[:-1], challenge + "A", "=" * 43):
        assert not rfc7636.is_valid_challenge(bad)


def test_a_verifier_with_a_trailing_newline_does_not_verify() -> None:
    challenge = rfc7636.s256_challenge(VERIFIER)
    assert rfc7636.verify(VERIFIER, challenge)
    # "$" let this through before; it must fail on the pattern, not only on the hash.
    assert not rfc7636.verify(VERIFIER + "\n", rfc7636.s256_challenge(VERIFIER + "\n"))
