"""The RSA key that signs ID tokens, kept in the data dir, and its JWK set."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

# Globus signs with RS512; the SDK reads the algorithm from discovery.
ID_TOKEN_ALGORITHM = "RS512"
ID_TOKEN_LIFETIME = 48 * 3600


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def load_or_create(cls, keys_dir: Path) -> SigningKey:
        """Reuse the key from an earlier start, or make one (written 0600, atomically)."""
        path = keys_dir / "id-token-signing-key.pem"
        if not path.exists():
            keys_dir.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            temporary = path.with_suffix(f".tmp{os.getpid()}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            # Another process may have won the race; keep whichever landed first.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
            temporary.unlink()
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return cls(loaded, _thumbprint(loaded.public_key()))

    def jwk_set(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        public.update({"alg": ID_TOKEN_ALGORITHM, "use": "sig", "kid": self.kid})
        return {"keys": [public]}

    def sign_id_token(self, claims: dict[str, Any], *, issuer: str, audience: str) -> str:
        now = int(time.time())
        payload = {**claims, "iss": issuer, "aud": audience, "iat": now,
                   "exp": now + ID_TOKEN_LIFETIME}
        return jwt.encode(payload, self.private_key, algorithm=ID_TOKEN_ALGORITHM,
                          headers={"kid": self.kid})


def _thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: a stable key id derived from the key itself."""
    jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
