"""The RSA key that signs ID tokens, kept in the data dir, and its JWK set.

The key is read, and the JOSE libraries imported, on first use rather than at
start-up: a restarted server is ready to answer before anyone needs a signature.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isthmus.core.encryption import create_private_file
from isthmus.core.jwk import rsa_thumbprint

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

# Globus signs with RS512; the SDK reads the algorithm from discovery.
ID_TOKEN_ALGORITHM = "RS512"
ID_TOKEN_LIFETIME = 48 * 3600
KEY_FILE = "id-token-signing-key.pem"


class SigningKey:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def load_or_create(cls, keys_dir: Path) -> SigningKey:
        """Reuse the key from an earlier start, or make one (written 0600, atomically)."""
        path = keys_dir / KEY_FILE
        if not path.exists():
            _create(path)
        return cls(path)

    @functools.cached_property
    def private_key(self) -> rsa.RSAPrivateKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        loaded = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{self.path} does not hold an RSA private key")
        return loaded

    @functools.cached_property
    def public_jwk(self) -> dict[str, Any]:
        from jwt.algorithms import RSAAlgorithm

        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return jwk

    @functools.cached_property
    def kid(self) -> str:
        return rsa_thumbprint(self.public_jwk)

    def jwk_set(self) -> dict[str, Any]:
        return {"keys": [{**self.public_jwk, "alg": ID_TOKEN_ALGORITHM, "use": "sig",
                          "kid": self.kid}]}

    def sign_id_token(self, claims: dict[str, Any], *, issuer: str, audience: str) -> str:
        import jwt

        now = int(time.time())
        payload = {**claims, "iss": issuer, "aud": audience, "iat": now,
                   "exp": now + ID_TOKEN_LIFETIME}
        return jwt.encode(payload, self.private_key, algorithm=ID_TOKEN_ALGORITHM,
                          headers={"kid": self.kid})


def _create(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    create_private_file(path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
