"""ID-token validation and username mapping of upstream sign-ins, with tokens made here.

A live upstream Isthmus only ever sends good ID tokens; these are the bad ones a
compromised or misconfigured provider could send. The key set is put in the
client's cache, as if fetched; a token naming an unknown key makes the client
fetch the set again, from an address where nothing listens.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from isthmus.auth import oidc_client, upstream
from isthmus.auth.oidc_client import Discovery, RelyingParty, UpstreamError
from isthmus.core.encryption import SealedValueError, SecretBox
from isthmus.core.secrets import digest

ISSUER = "https://idp.example.org"
CLIENT_ID = "downstream-client"
NONCE = "n-0S6_WzA2Mj"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def discovery() -> Discovery:
    # Each test its own (never reachable) key-set address, so the cache starts as set here.
    found = Discovery(issuer=ISSUER, authorization_endpoint=ISSUER + "/authorize",
                      token_endpoint=ISSUER + "/token",
                      jwks_uri=f"https://127.0.0.1:9/jwks/{uuid.uuid4()}")
    jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
    oidc_client._key_sets[(found.jwks_uri, None)] = (
        time.monotonic(), {"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})
    return found


PARTY = RelyingParty(issuer=ISSUER, client_id=CLIENT_ID, client_secret="secret",
                     scopes="openid")


def token(*, key: Any = KEY, algorithm: str = "RS256", kid: str | None = "k1",
          **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "user-1", "iat": now, "exp": now + 300,
              "nonce": NONCE, **changes}
    claims = {name: value for name, value in claims.items() if value is not None}
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def verify(discovery: Discovery, id_token: str) -> dict[str, Any]:
    return asyncio.run(oidc_client.verify_id_token(discovery, PARTY, id_token, digest(NONCE)))


def test_a_good_token(discovery: Discovery) -> None:
    assert verify(discovery, token())["sub"] == "user-1"
    # Several audiences are fine when the token names us as its authorized party.
    assert verify(discovery, token(aud=[CLIENT_ID, "other"], azp=CLIENT_ID))["sub"] == "user-1"


@pytest.mark.parametrize(("changes", "message"), [
    ({"aud": "someone-else"}, "not valid"),
    ({"iss": "https://evil.example.org"}, "not valid"),
    ({"exp": int(time.time()) - 3600}, "not valid"),
    ({"exp": None}, "not valid"),
    ({"sub": None}, "not valid"),
    ({"nonce": "another-sign-in"}, "nonce mismatch"),
    ({"nonce": None}, "nonce mismatch"),
    ({"aud": [CLIENT_ID, "other"]}, "azp"),
    ({"sub": "a\x00b"}, "subject is malformed"),
    ({"key": OTHER_KEY}, "not valid"),
    ({"kid": "k2"}, "could not be reached"),
    ({"algorithm": "HS256", "key": "secret" * 6}, "algorithm not accepted"),
    ({"algorithm": "none", "key": None}, "algorithm not accepted"),
])
def test_bad_tokens_are_refused(
    discovery: Discovery, changes: dict[str, Any], message: str
) -> None:
    options = {name: changes.pop(name) for name in ("key", "algorithm", "kid")
               if name in changes}
    with pytest.raises(UpstreamError) as caught:
        verify(discovery, token(**options, **changes))
    assert message in caught.value.message
    assert 400 <= caught.value.status < 500


def test_garbage_is_refused(discovery: Discovery) -> None:
    with pytest.raises(UpstreamError, match="malformed"):
        verify(discovery, "not.a.token")


def provider(claim: str) -> upstream.ConfiguredProvider:
    return upstream.ConfiguredProvider(
        id=uuid.uuid4(), name="Campus", domains=["campus.example.org", "alumni.example.org"],
        username_claim=claim, party=PARTY,
    )


@pytest.mark.parametrize(("claim", "value", "username"), [
    ("sub", "248289761001", "248289761001@campus.example.org"),
    ("sub", "AbC", "abc@campus.example.org"),
    ("preferred_username", "jdoe", "jdoe@campus.example.org"),
    ("preferred_username", "JDoe@Alumni.Example.org", "jdoe@alumni.example.org"),
])
def test_usernames(claim: str, value: str, username: str) -> None:
    assert upstream.upstream_username(provider(claim), {claim: value}) == username


@pytest.mark.parametrize(("claim", "value", "message"), [
    ("sub", "a@b", "cannot be a username"),
    ("preferred_username", "jdoe@elsewhere.org", "outside its domains"),
    ("preferred_username", "j doe", "cannot be a username"),
    ("preferred_username", "", "did not send"),
])
def test_usernames_refused(claim: str, value: str, message: str) -> None:
    with pytest.raises(UpstreamError, match=message):
        upstream.upstream_username(provider(claim), {claim: value})


def test_sealed_values_open_only_for_their_purpose(tmp_path: Any) -> None:
    box = SecretBox.load_or_create(tmp_path)
    sealed = box.seal("hunter2", "upstream-client-secret:a")
    assert "hunter2" not in sealed
    assert box.open(sealed, "upstream-client-secret:a") == "hunter2"
    assert (tmp_path / "secrets-encryption.key").stat().st_mode & 0o077 == 0
    for tampered, purpose in ((sealed, "upstream-client-secret:b"),
                              (sealed[:-2] + "AA", "upstream-client-secret:a"),
                              ("plain", "upstream-client-secret:a")):
        with pytest.raises(SealedValueError):
            box.open(tampered, purpose)
    # Another data dir's key opens nothing of this one's.
    other = SecretBox.load_or_create(tmp_path / "other")
    with pytest.raises(SealedValueError):
        other.open(sealed, "upstream-client-secret:a")
