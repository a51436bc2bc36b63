"""JSON Web Keys both token issuers publish (Auth's, and an endpoint's own OIDC server's)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any


def rsa_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint of an RSA key: a stable key id derived from the key itself."""
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
