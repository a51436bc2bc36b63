"""Server-generated secrets: 256 bits of randomness, stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret() -> str:
    """A URL-safe secret (no ``+``, ``/`` or ``=``, so Basic auth never needs escaping)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_digest(secret: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), expected_digest)
