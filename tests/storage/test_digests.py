"""Streaming digests and RFC 9530 digest fields, checked against hashlib, zlib and the RFC's
own examples."""

from __future__ import annotations

import hashlib
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isthmus.storage.digests import (
    ALGORITHMS,
    Adler32,
    MultiDigest,
    canonical_algorithm,
    canonical_algorithms,
    digest_chunks,
    digest_from_hex,
    format_digest_field,
    parse_digest_field,
    parse_want_digest,
    rfc9530_name,
)
from isthmus.storage.errors import InvalidArgument, UnsupportedAlgorithm

# RFC 9530 §B: the representation {"hello": "world"} and its digests.
HELLO = b'{"hello": "world"}'
HELLO_SHA256 = ":X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
HELLO_SHA512 = (
    ":WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("MD5", "md5"),
        ("SHA1", "sha1"),
        ("sha", "sha1"),
        ("SHA256", "sha256"),
        ("sha-256", "sha256"),
        ("SHA_512", "sha512"),
        ("ADLER32", "adler32"),
        ("adler", "adler32"),
    ],
)
def test_every_spelling_of_an_algorithm_has_one_name(spelling: str, canonical: str) -> None:
    assert canonical_algorithm(spelling) == canonical


def test_unknown_algorithms_are_refused_with_the_supported_list() -> None:
    with pytest.raises(UnsupportedAlgorithm) as raised:
        canonical_algorithm("crc32c")
    assert "md5" in str(raised.value) and "adler32" in str(raised.value)
    assert canonical_algorithms(["MD5", "md5", "SHA256"]) == ("md5", "sha256")


def test_adler32_matches_zlib_and_known_values() -> None:
    empty = Adler32()
    assert empty.hexdigest() == "00000001"
    wiki = Adler32()
    wiki.update(b"Wiki")
    wiki.update(b"pedia")
    assert wiki.hexdigest() == "11e60398"
    assert wiki.digest() == zlib.adler32(b"Wikipedia").to_bytes(4, "big")


@given(st.lists(st.binary(max_size=300), max_size=12))
def test_digests_do_not_depend_on_how_the_stream_is_cut(chunks: list[bytes]) -> None:
    data = b"".join(chunks)
    size, digests = digest_chunks(chunks, ALGORITHMS)
    assert size == len(data)
    assert digests == {
        "md5": hashlib.md5(data).digest(),
        "sha1": hashlib.sha1(data).digest(),
        "sha256": hashlib.sha256(data).digest(),
        "sha512": hashlib.sha512(data).digest(),
        "adler32": zlib.adler32(data).to_bytes(4, "big"),
    }


def test_hexdigests_are_what_transfer_shows() -> None:
    digest = MultiDigest(["MD5", "ADLER32"])
    digest.update(b"abc")
    assert digest.hexdigests() == {
        "md5": hashlib.md5(b"abc").hexdigest(),
        "adler32": f"{zlib.adler32(b'abc'):08x}",
    }


def test_hex_checksums_are_parsed_for_comparison() -> None:
    assert (
        digest_from_hex("MD5", hashlib.md5(b"x").hexdigest().upper()) == hashlib.md5(b"x").digest()
    )
    assert digest_from_hex("ADLER32", "3DA0195") == bytes.fromhex("03da0195")  # leading 0 dropped
    with pytest.raises(InvalidArgument):
        digest_from_hex("md5", "abc")
    with pytest.raises(InvalidArgument):
        digest_from_hex("sha256", "zz" * 32)


def test_repr_digest_values_match_the_rfc_examples() -> None:
    field = format_digest_field(
        {"sha256": hashlib.sha256(HELLO).digest(), "sha512": hashlib.sha512(HELLO).digest()}
    )
    assert field == f"sha-256={HELLO_SHA256}, sha-512={HELLO_SHA512}"
    assert [rfc9530_name(a) for a in ALGORITHMS] == ["md5", "sha", "sha-256", "sha-512", "adler"]


def test_repr_digest_values_parse_back() -> None:
    digests = {name: digest_chunks([HELLO], [name])[1][name] for name in ALGORITHMS}
    assert parse_digest_field(format_digest_field(digests)) == digests
    parsed = parse_digest_field(f"unixsum=:AAAA:,  sha-256={HELLO_SHA256};param=1, crc32c=:AAAA:")
    assert parsed == {"sha256": hashlib.sha256(HELLO).digest()}  # unknown ones are ignored


@pytest.mark.parametrize(
    "value",
    [
        "sha-256=:not base64!:",
        "sha-256=:AAAA:",  # a byte sequence, but not 32 bytes
        "sha-256=10",  # not a byte sequence
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",  # unterminated
        "SHA-256=:AAAA:",  # keys are lower case
        "sha-256=:AAAA:,",
        "sha-256=:AAAA: md5=:AAAA:",
        "sha-256=:AAAA:, ,",
        "ünicode=:AAAA:",
    ],
)
def test_malformed_digest_fields_are_refused(value: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_digest_field(value)


def test_want_repr_digest_orders_by_preference() -> None:
    assert parse_want_digest("sha-256=10, md5=3, adler=1") == ["sha256", "md5", "adler32"]
    assert parse_want_digest("md5=3, sha-512=3, sha-256=9") == ["sha256", "md5", "sha512"]
    assert parse_want_digest("unixsum=10, sha-256=2, md5=0") == ["sha256"]
    assert parse_want_digest("") == []
    assert parse_want_digest('sha=1;note="a, b", adler=2') == ["adler32", "sha1"]


@pytest.mark.parametrize(
    "value", ["sha-256=11", "sha-256=-1", "sha-256", "sha-256=:AAAA:", "md5=1.5"]
)
def test_want_repr_digest_preferences_must_be_integers_from_0_to_10(value: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_want_digest(value)
