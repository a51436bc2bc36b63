"""Digests computed while bytes stream past (several algorithms at once), and the RFC 9530
``Repr-Digest`` / ``Want-Repr-Digest`` field values built from them.

Algorithm names are canonicalised once here: Transfer sends ``MD5``, ``SHA1``, ``SHA256``,
``SHA512`` and ``ADLER32``; RFC 9530 calls the same ones ``md5``, ``sha``, ``sha-256``,
``sha-512`` and ``adler``. Inside Isthmus they are ``md5``, ``sha1``, ``sha256``, ``sha512``,
``adler32``. A digest is kept as its raw bytes; ``hex`` is what Transfer shows, base64 inside
``:...:`` is what HTTP carries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from isthmus.storage.errors import InvalidArgument, UnsupportedAlgorithm

# What is written and hashed: bytes, or a view of a buffer a copy reuses.
Chunk = bytes | bytearray | memoryview

ALGORITHMS: tuple[str, ...] = ("md5", "sha1", "sha256", "sha512", "adler32")

# What write_atomic computes unless told otherwise: the three a remote verifier may ask for.
DEFAULT_ALGORITHMS: tuple[str, ...] = ("sha256", "md5", "adler32")

_ALIASES = {
    "md5": "md5",
    "sha": "sha1",  # RFC 9530's name for SHA-1
    "sha1": "sha1",
    "sha256": "sha256",
    "sha512": "sha512",
    "adler": "adler32",  # RFC 9530's name
    "adler32": "adler32",
}


def canonical_algorithm(name: str) -> str:
    """``"SHA-256"``, ``"sha256"``, ``"SHA256"`` -> ``"sha256"``; unknown names are refused."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    try:
        return _ALIASES[key]
    except KeyError:
        supported = ", ".join(ALGORITHMS)
        raise UnsupportedAlgorithm(
            f"Unsupported checksum algorithm '{name}' (supported: {supported})"
        ) from None


def canonical_algorithms(names: Iterable[str]) -> tuple[str, ...]:
    """Canonical names in the order given, without repeats."""
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(canonical_algorithm(name), None)
    return tuple(seen)


class _Hash(Protocol):
    def update(self, data: Chunk, /) -> None: ...

    def digest(self) -> bytes: ...


class Adler32:
    """zlib's Adler-32 behind the hashlib interface; the digest is 4 bytes, big-endian."""

    def __init__(self) -> None:
        self._value = 1  # Adler-32 of the empty string

    def update(self, data: Chunk, /) -> None:
        self._value = zlib.adler32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")

    def hexdigest(self) -> str:
        return self.digest().hex()


def _new_hash(algorithm: str) -> _Hash:
    if algorithm == "adler32":
        return Adler32()
    # md5/sha1 here are integrity checksums that peers ask for by name, not security.
    return hashlib.new(algorithm, usedforsecurity=False)


class MultiDigest:
    """Feeds every chunk to each requested algorithm, so a stream is read only once."""

    def __init__(self, algorithms: Iterable[str]) -> None:
        self.algorithms = canonical_algorithms(algorithms)
        self._hashes = [_new_hash(name) for name in self.algorithms]

    def update(self, data: Chunk) -> None:
        for hashed in self._hashes:
            hashed.update(data)

    def digests(self) -> dict[str, bytes]:
        return {name: h.digest() for name, h in zip(self.algorithms, self._hashes, strict=True)}

    def hexdigests(self) -> dict[str, str]:
        return {name: value.hex() for name, value in self.digests().items()}

    def close(self) -> None:
        """Nothing to release (`BackgroundDigest` has a thread)."""


class BackgroundDigest:
    """A `MultiDigest` fed in a thread of its own, in order: hashlib lets go of the GIL on
    large buffers, so hashing runs beside the caller's I/O. At most ``depth`` chunks wait,
    which bounds the memory held; an error of a ``read`` surfaces at the next call."""

    def __init__(self, algorithms: Iterable[str], depth: int = 3) -> None:
        self._digest = MultiDigest(algorithms)
        self.algorithms = self._digest.algorithms
        self.size = 0
        self.depth = depth
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="isthmus-digest")
        self._pending: deque[Future[None]] = deque()

    def update(self, data: Chunk) -> None:
        self.update_from(lambda: data)

    def update_from(self, read: Callable[[], Chunk]) -> None:
        """Hash what ``read`` returns, called in the hashing thread."""
        while len(self._pending) >= self.depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._absorb, read))

    def _absorb(self, read: Callable[[], Chunk]) -> None:
        data = read()
        self._digest.update(data)
        self.size += len(data)

    def digests(self) -> dict[str, bytes]:
        while self._pending:
            self._pending.popleft().result()
        return self._digest.digests()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()


def digest_chunks(
    chunks: Iterable[bytes], algorithms: Iterable[str]
) -> tuple[int, dict[str, bytes]]:
    """Size and raw digests of a stream of chunks, holding one chunk at a time."""
    digest = MultiDigest(algorithms)
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return size, digest.digests()


def digest_from_hex(algorithm: str, value: str) -> bytes:
    """Parse a hex checksum (Transfer's ``external_checksum``) into raw bytes for comparison."""
    algorithm = canonical_algorithm(algorithm)
    text = value.strip().lower()
    if algorithm == "adler32" and 0 < len(text) < 8:
        text = text.rjust(8, "0")  # the old Digest registry allowed leading zeros to be dropped
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InvalidArgument(f"'{value}' is not a hexadecimal {algorithm} checksum") from None
    if len(raw) != _digest_size(algorithm):
        raise InvalidArgument(f"'{value}' is not a {algorithm} checksum (wrong length)")
    return raw


def _digest_size(algorithm: str) -> int:
    return len(_new_hash(algorithm).digest())


# --- RFC 9530 digest fields ---------------------------------------------------------------

_RFC9530_NAMES = {
    "sha256": "sha-256",
    "sha512": "sha-512",
    "md5": "md5",
    "sha1": "sha",
    "adler32": "adler",
}
_FROM_RFC9530 = {name: algorithm for algorithm, name in _RFC9530_NAMES.items()}


def rfc9530_name(algorithm: str) -> str:
    return _RFC9530_NAMES[canonical_algorithm(algorithm)]


def format_digest_field(digests: Mapping[str, bytes]) -> str:
    """``{"sha256": b"..."}`` -> ``sha-256=:base64:`` (a ``Repr-Digest`` or ``Content-Digest``)."""
    return ", ".join(
        f"{rfc9530_name(algorithm)}=:{base64.b64encode(raw).decode('ascii')}:"
        for algorithm, raw in digests.items()
    )


def parse_digest_field(value: str) -> dict[str, bytes]:
    """A ``Repr-Digest``/``Content-Digest`` value -> raw digests by canonical algorithm.

    Algorithms this server does not know are ignored (RFC 9530 §2: a recipient ignores them);
    a known algorithm whose value is not a byte sequence of the right length, or a value that
    is not a structured-field dictionary, is refused.
    """
    found: dict[str, bytes] = {}
    for key, item in _parse_sf_dictionary(value).items():
        algorithm = _FROM_RFC9530.get(key)
        if algorithm is None:
            continue
        if not isinstance(item, bytes):
            raise InvalidArgument(f"The '{key}' digest must be a byte sequence (:base64:)")
        if len(item) != _digest_size(algorithm):
            raise InvalidArgument(f"The '{key}' digest has the wrong length")
        found[algorithm] = item
    return found


def parse_want_digest(value: str) -> list[str]:
    """A ``Want-Repr-Digest`` value -> supported algorithms, most wanted first.

    Preferences are integers 0-10; 0 means "not acceptable". Unknown algorithms are ignored.
    """
    wanted: list[tuple[int, int, str]] = []
    for position, (key, item) in enumerate(_parse_sf_dictionary(value).items()):
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 10:
            raise InvalidArgument(f"The preference for '{key}' must be an integer from 0 to 10")
        algorithm = _FROM_RFC9530.get(key)
        if algorithm is not None and item > 0:
            wanted.append((-item, position, algorithm))
    return [algorithm for _, _, algorithm in sorted(wanted)]


# --- RFC 8941 dictionaries (just what digest fields need) ----------------------------------

_SFItem = int | float | str | bytes | bool
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,3})?")


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.at += 1

    def take(self, pattern: re.Pattern[str], what: str) -> str:
        match = pattern.match(self.text, self.at)
        if match is None:
            raise InvalidArgument(f"Malformed structured field: expected {what} at {self.at}")
        self.at = match.end()
        return match.group()


def _parse_sf_dictionary(value: str) -> dict[str, _SFItem]:
    if not value.isascii():
        raise InvalidArgument("Malformed structured field: not ASCII")
    cursor = _Cursor(value)
    cursor.skip(" \t")
    members: dict[str, _SFItem] = {}
    while cursor.peek():
        key = cursor.take(_KEY, "a key")
        item: _SFItem = True
        if cursor.peek() == "=":
            cursor.at += 1
            item = _parse_bare_item(cursor)
        _skip_parameters(cursor)
        members[key] = item
        cursor.skip(" \t")
        if not cursor.peek():
            break
        if cursor.peek() != ",":
            raise InvalidArgument(f"Malformed structured field: expected ',' at {cursor.at}")
        cursor.at += 1
        cursor.skip(" \t")
        if not cursor.peek():
            raise InvalidArgument("Malformed structured field: trailing comma")
    return members


def _parse_bare_item(cursor: _Cursor) -> _SFItem:
    first = cursor.peek()
    if first == ":":
        end = cursor.text.find(":", cursor.at + 1)
        if end < 0:
            raise InvalidArgument("Malformed structured field: unterminated byte sequence")
        encoded = cursor.text[cursor.at + 1 : end]
        cursor.at = end + 1
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument("Malformed structured field: bad base64") from None
    if first == "?":
        cursor.at += 1
        flag = cursor.peek()
        if flag not in ("0", "1"):
            raise InvalidArgument("Malformed structured field: bad boolean")
        cursor.at += 1
        return flag == "1"
    if first == '"':
        return _parse_string(cursor)
    if first == "-" or first.isdigit():
        number = cursor.take(_NUMBER, "a number")
        return float(number) if "." in number else int(number)
    return cursor.take(_TOKEN, "an item")


def _parse_string(cursor: _Cursor) -> str:
    cursor.at += 1
    chars: list[str] = []
    while True:
        char = cursor.peek()
        if not char:
            raise InvalidArgument("Malformed structured field: unterminated string")
        cursor.at += 1
        if char == '"':
            return "".join(chars)
        if char == "\\":
            escaped = cursor.peek()
            if escaped not in ('"', "\\"):
                raise InvalidArgument("Malformed structured field: bad escape in string")
            cursor.at += 1
            char = escaped
        chars.append(char)


def _skip_parameters(cursor: _Cursor) -> None:
    while cursor.peek() == ";":
        cursor.at += 1
        cursor.skip(" ")
        cursor.take(_KEY, "a parameter key")
        if cursor.peek() == "=":
            cursor.at += 1
            _parse_bare_item(cursor)
