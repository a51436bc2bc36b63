"""RFC 6238 TOTP against the RFC's own test vectors, and the acceptance window."""

from __future__ import annotations

import base64

import pytest

from isthmus.auth import totp

# RFC 6238 appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(("timestamp", "expected"), [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
])
def test_rfc_6238_sha1_vectors(timestamp: int, expected: str) -> None:
    assert totp.code_at(RFC_SECRET, timestamp, digits=8) == expected
    # Six digits are the same number modulo 10^6.
    assert totp.code_at(RFC_SECRET, timestamp) == expected[-6:]


def test_rfc_4226_hotp_vectors() -> None:
    # RFC 4226 appendix D, counters 0..9.
    expected = ["755224", "287082", "359152", "969429", "338314",
                "254676", "287922", "162583", "399871", "520489"]
    key = b"12345678901234567890"
    assert [totp.hotp(key, counter) for counter in range(10)] == expected


def test_a_code_matches_its_step_within_one_step_either_side() -> None:
    secret = totp.new_secret()
    now = 1_700_000_000.0
    step = totp.step_at(now)
    for offset in (-1, 0, 1):
        assert totp.matching_step(secret, totp.code_at(secret, now + 30 * offset), now) \
            == step + offset
    assert totp.matching_step(secret, totp.code_at(secret, now + 60), now) is None
    assert totp.matching_step(secret, totp.code_at(secret, now - 60), now) is None


# Full-width digits are digits to str.isdigit, but no authenticator shows them.
FULL_WIDTH = "\uff11\uff12\uff13\uff14\uff15\uff16"


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "12a456", FULL_WIDTH, "-12345"])
def test_malformed_codes_never_match(bad: str) -> None:
    assert totp.matching_step(RFC_SECRET, bad, 59) is None


def test_secrets_and_uris() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32 and set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert len(totp.secret_bytes(secret.lower())) == totp.SECRET_BYTES
    uri = totp.provisioning_uri(secret, "alice@isthmus.local", "Isthmus")
    assert uri == (f"otpauth://totp/Isthmus:alice@isthmus.local?secret={secret}"
                   "&issuer=Isthmus&algorithm=SHA1&digits=6&period=30")
