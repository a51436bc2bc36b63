"""RFC 7636, Proof Key for Code Exchange: only the S256 method, as Globus allows."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# Matched with fullmatch: "$" would also accept a trailing newline.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256_challenge(verifier: str) -> str:
    hashed = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(hashed).rstrip(b"=").decode("ascii")


def is_valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.fullmatch(challenge))


def verify(verifier: str, challenge: str) -> bool:
    if not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)
