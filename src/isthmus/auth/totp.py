"""RFC 6238 time-based one-time passwords (HOTP, RFC 4226, over 30-second steps).

SHA-1, 6 digits and 30 seconds are what every authenticator app assumes when
it scans an ``otpauth://`` URI, so those are the only parameters offered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

PERIOD = 30
DIGITS = 6
SECRET_BYTES = 20  # 160 bits, the HMAC-SHA1 block-friendly size RFC 4226 recommends
# Steps either side of now that are accepted: a phone's clock may be a little off,
# and a code typed near the end of its step arrives in the next one.
WINDOW = 1


def new_secret() -> str:
    """A random secret as the unpadded base32 text authenticator apps expect."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def secret_bytes(secret: str) -> bytes:
    """Decode base32 text, forgiving spaces, lower case and missing padding."""
    text = secret.replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def step_at(timestamp: float) -> int:
    return int(timestamp // PERIOD)


def hotp(key: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 section 5.3: HMAC-SHA-1 of the counter, dynamically truncated."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def code_at(secret: str, timestamp: float, digits: int = DIGITS) -> str:
    return hotp(secret_bytes(secret), step_at(timestamp), digits)


def matching_step(secret: str, code: str, timestamp: float) -> int | None:
    """The time step whose code this is (within the window around now), else None.

    Every candidate is computed and compared in constant time, so the answer's
    timing says nothing about which step, if any, matched.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    key = secret_bytes(secret)
    now = step_at(timestamp)
    found = None
    for step in range(now - WINDOW, now + WINDOW + 1):
        if hmac.compare_digest(hotp(key, step).encode(), code.encode()) and found is None:
            found = step
    return found


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI (Google Authenticator's key URI format) a QR code carries."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1",
                       "digits": DIGITS, "period": PERIOD})
    return f"otpauth://totp/{label}?{query}"
