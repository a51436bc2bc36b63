"""Secrets the server must read back (an upstream provider's client secret), encrypted at rest.

What the server only compares (passwords, its own client secrets, tokens) is
hashed instead (see `secrets`). What it must send elsewhere cannot be hashed:
it is sealed with AES-256-GCM under a key kept in the data dir beside the
ID-token signing key, so a copy of the database alone reveals nothing. Every
sealed value is bound to what it is for (the associated data), so a value
copied into another row or column does not open there.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import os
from pathlib import Path

KEY_FILE = "secrets-encryption.key"
# A version prefix lets a later key rotation tell old values from new ones.
PREFIX = "v1."
NONCE_BYTES = 12


class SealedValueError(ValueError):
    """A sealed value that does not open: another key, another purpose, or tampered with."""


def create_private_file(path: Path, data: bytes) -> None:
    """Write a new file readable by the owner only; if another process won the race, keep its."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    with contextlib.suppress(FileExistsError):
        os.link(temporary, path)
    temporary.unlink()


class SecretBox:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def load_or_create(cls, keys_dir: Path) -> SecretBox:
        path = keys_dir / KEY_FILE
        if not path.exists():
            create_private_file(path, base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
        return cls(path)

    @functools.cached_property
    def _key(self) -> bytes:
        try:
            key = base64.urlsafe_b64decode(self.path.read_bytes().strip())
        except (binascii.Error, ValueError):
            raise ValueError(f"{self.path} does not hold an encryption key") from None
        if len(key) != 32:
            raise ValueError(f"{self.path} does not hold a 256-bit key")
        return key

    def seal(self, plaintext: str, purpose: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._key).encrypt(nonce, plaintext.encode(), purpose.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, purpose: str) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not sealed.startswith(PREFIX):
            raise SealedValueError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(PREFIX):])
            opened = AESGCM(self._key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode()
            )
        except (binascii.Error, ValueError, InvalidTag):
            raise SealedValueError("the sealed value does not open with this key") from None
        return opened.decode()
