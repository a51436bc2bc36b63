"""Identity mapping for storage gateways, as the GCS v5.4 Identity Mapping guide describes it:
which local account (or connector username) a Globus identity maps to.

An identity is a mapping shaped like Auth's identity resource (``id``, ``username``,
``email``, ``name``, ``organization``, ``identity_provider``, ``status``, ...). Everything
here is a pure function of its inputs (the external program aside); of Connect it imports only
the pure `gateway_policies`, so the Manager API, the data server and tests can use it directly.

- ``expression_identity_mapping#1.0.0``: rules ``{source, match, output, ignore_case,
  literal}`` tried in order. ``source`` interpolates identity fields (``{username}``);
  ``match`` must match the *whole* interpolated source, in a reduced POSIX ERE where only
  ``. ? * | ( )`` are special and ``\\`` escapes them (``^ $ + { } [ ]`` are literal);
  ``output`` interpolates identity fields and the match's groups, ``{0}`` being the first.
- ``external_identity_mapping#1.0.0``: a program run (never through a shell) with ``-c
  <connector id> -s <storage gateway id>`` (and ``-a`` for a whole identity set), given an
  ``identity_mapping_input#1.0.0`` document on stdin, answering ``identity_mapping_output#1.0.0``
  on stdout within 5 seconds.
- with no mappings and exactly one allowed domain, POSIX maps ``user@domain`` to ``user``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

from isthmus.connect.gateway_policies import Identity, in_allowed_domains

EXPRESSION_MAPPING = "expression_identity_mapping#1.0.0"
EXTERNAL_MAPPING = "external_identity_mapping#1.0.0"
MAPPING_INPUT = "identity_mapping_input#1.0.0"
RULE_DATA_TYPE = "expression_identity_mapping_rule#1.0.0"
MAPPING_OUTPUT = "identity_mapping_output#1.0.0"

EXTERNAL_TIMEOUT_SECONDS = 5.0  # as Globus' own implementation
MAX_PROGRAM_OUTPUT = 1024 * 1024
# Identities a whole-set mapping considers (Auth's identity ``status``), as GCS does.
MAPPABLE_STATUSES = frozenset({"used", "private"})


class IdentityMappingError(Exception):
    """Mapping failed while running: a program that failed or answered nonsense, a missing
    identity property. ``detail`` says more, for the server's log (not for clients)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidMappingError(IdentityMappingError):
    """A mapping document that cannot be used; ``field`` names the offending property
    (``mappings[1].match``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


# --- expression mappings --------------------------------------------------------------------

_REFERENCE = re.compile(r"\{([^{}]*)\}")
_ESCAPABLE = frozenset('.?*|()\\"')


def _translate_match(match: str, where: str) -> str:
    """The reduced POSIX ERE of a match expression as a Python regular expression.

    Stricter than Python where GCS is: ``\\`` may escape only the special characters (and
    ``"``), so there are no classes like ``\\d`` and no backreferences; a repetition needs
    something to repeat and cannot be repeated (no lazy ``*?``).
    """
    out: list[str] = []
    depth = 0
    previous = ""  # the previous token's kind: "", "atom", "open", "alt", "repeat"
    chars = iter(match)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None or escaped not in _ESCAPABLE:
                shown = "\\" + (escaped or "")
                raise InvalidMappingError(f"Invalid escape '{shown}' in '{match}'", where)
            out.append(re.escape(escaped))
            previous = "atom"
        elif char in "*?":
            if previous in ("", "open", "alt"):
                raise InvalidMappingError(f"'{char}' has nothing to repeat in '{match}'", where)
            if previous == "repeat":
                raise InvalidMappingError(f"Invalid repetition in '{match}'", where)
            out.append(char)
            previous = "repeat"
        elif char == "|":
            out.append("|")
            previous = "alt"
        elif char == "(":
            depth += 1
            out.append("(")
            previous = "open"
        elif char == ")":
            if depth == 0:
                raise InvalidMappingError(f"Unbalanced ')' in '{match}'", where)
            depth -= 1
            out.append(")")
            previous = "atom"
        elif char == ".":
            out.append(".")
            previous = "atom"
        else:
            out.append(re.escape(char))
            previous = "atom"
    if depth:
        raise InvalidMappingError(f"Unbalanced '(' in '{match}'", where)
    return "".join(out)


def _references(template: str) -> list[str]:
    return _REFERENCE.findall(template)


def _interpolate(template: str, identity: Identity, groups: Sequence[str | None] = ()) -> str:
    def replace(reference: re.Match[str]) -> str:
        name = reference.group(1)
        value: Any = groups[int(name)] if name.isdigit() else identity.get(name)
        if value is None:
            what = f"match group {{{name}}}" if name.isdigit() else f"property '{name}'"
            raise IdentityMappingError(
                f"Identity mapping failed: the identity has no {what}",
                f"identity {identity.get('id')!r}",
            )
        return str(value)

    return _REFERENCE.sub(replace, template)


@dataclass(frozen=True)
class ExpressionRule:
    source: str
    match: str
    output: str
    ignore_case: bool = False
    literal: bool = False
    pattern: re.Pattern[str] = field(compare=False, repr=False, default=re.compile(""))

    @classmethod
    def parse(cls, document: Any, where: str) -> ExpressionRule:
        if not isinstance(document, Mapping):
            raise InvalidMappingError("A mapping rule must be an object", where)
        # The Manager API stores each rule tagged with its DATA_TYPE.
        tag = document.get("DATA_TYPE", RULE_DATA_TYPE)
        if not isinstance(tag, str) or not tag.startswith(RULE_DATA_TYPE.split("#")[0] + "#"):
            raise InvalidMappingError(f"DATA_TYPE must be {RULE_DATA_TYPE}",
                                      f"{where}.DATA_TYPE")
        unknown = set(document) - {"DATA_TYPE", "source", "match", "output", "ignore_case",
                                   "literal"}
        if unknown:
            raise InvalidMappingError(
                f"Unknown property '{sorted(unknown)[0]}'", f"{where}.{sorted(unknown)[0]}"
            )
        texts = {}
        for name in ("source", "match", "output"):
            value = document.get(name)
            if not isinstance(value, str):
                raise InvalidMappingError(
                    f"'{name}' is required and must be a string", f"{where}.{name}"
                )
            texts[name] = value
        flags = {}
        for name in ("ignore_case", "literal"):
            value = document.get(name, False)
            if not isinstance(value, bool):
                raise InvalidMappingError(f"'{name}' must be true or false", f"{where}.{name}")
            flags[name] = value
        expression = (
            re.escape(texts["match"])
            if flags["literal"]
            else _translate_match(texts["match"], f"{where}.match")
        )
        options = re.DOTALL | (re.IGNORECASE if flags["ignore_case"] else 0)
        try:
            pattern = re.compile(expression, options)
        except re.error as error:
            raise InvalidMappingError(
                f"Invalid match expression: {error}", f"{where}.match"
            ) from None
        for reference in _references(texts["source"]):
            if not reference or reference.isdigit():
                raise InvalidMappingError(
                    f"'{{{reference}}}' is not an identity property", f"{where}.source"
                )
        for reference in _references(texts["output"]):
            if not reference:
                raise InvalidMappingError("'{}' names nothing", f"{where}.output")
            if reference.isdigit() and int(reference) >= pattern.groups:
                reason = (
                    "a literal match has no groups"
                    if flags["literal"]
                    else f"the match has {pattern.groups} group(s), numbered from 0"
                )
                raise InvalidMappingError(
                    f"'{{{reference}}}' refers to no group: {reason}", f"{where}.output"
                )
        return cls(texts["source"], texts["match"], texts["output"], pattern=pattern, **flags)

    def apply(self, identity: Identity) -> str | None:
        """The output for ``identity``, or None when the rule does not match it."""
        found = self.pattern.fullmatch(_interpolate(self.source, identity))
        if found is None:
            return None
        return _interpolate(self.output, identity, found.groups())

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "source": self.source,
            "match": self.match,
            "output": self.output,
        }
        if self.ignore_case:
            document["ignore_case"] = True
        if self.literal:
            document["literal"] = True
        return document


class IdentityMapping(ABC):
    """One entry of a gateway's ``identity_mappings``."""

    data_type: ClassVar[str]

    @abstractmethod
    def map_identity(self, identity: Identity) -> str | None:
        """The account one identity maps to, or None."""

    @abstractmethod
    def map_identities(self, identities: Sequence[Identity]) -> list[tuple[str, str]]:
        """(identity id, account) pairs for a whole identity set, earlier ones preferred."""

    @abstractmethod
    def to_document(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ExpressionMapping(IdentityMapping):
    rules: tuple[ExpressionRule, ...]
    data_type: ClassVar[str] = EXPRESSION_MAPPING

    def map_identity(self, identity: Identity) -> str | None:
        for rule in self.rules:
            output = rule.apply(identity)
            if output is not None:
                return output
        return None

    def map_identities(self, identities: Sequence[Identity]) -> list[tuple[str, str]]:
        # Rule by rule, then identity by identity: an earlier rule takes precedence.
        found: list[tuple[str, str]] = []
        for rule in self.rules:
            for identity in identities:
                output = rule.apply(identity)
                if output is not None:
                    found.append((str(identity.get("id")), output))
        return found

    def to_document(self) -> dict[str, Any]:
        return {
            "DATA_TYPE": self.data_type,
            "mappings": [rule.to_document() for rule in self.rules],
        }


@dataclass(frozen=True)
class ExternalMapping(IdentityMapping):
    command: tuple[str, ...]
    connector_id: str
    storage_gateway_id: str
    timeout: float = EXTERNAL_TIMEOUT_SECONDS
    data_type: ClassVar[str] = EXTERNAL_MAPPING

    def map_identity(self, identity: Identity) -> str | None:
        results = self._run([identity], all_identities=False)
        if not results:
            return None
        identity_id, output = results[0]  # only the first answer counts for one identity
        if identity_id != str(identity.get("id")):
            raise IdentityMappingError(
                "Identity mapping failed: the mapping program answered for another identity",
                f"{self.command[0]} returned id {identity_id!r}",
            )
        return output

    def map_identities(self, identities: Sequence[Identity]) -> list[tuple[str, str]]:
        if not identities:
            return []
        results = self._run(identities, all_identities=True)
        known = {str(identity.get("id")) for identity in identities}
        for identity_id, _ in results:
            if identity_id not in known:
                raise IdentityMappingError(
                    "Identity mapping failed: the mapping program answered for an unknown identity",
                    f"{self.command[0]} returned id {identity_id!r}",
                )
        return results

    def _run(
        self, identities: Sequence[Identity], *, all_identities: bool
    ) -> list[tuple[str, str]]:
        argv = [*self.command, "-c", self.connector_id, "-s", self.storage_gateway_id]
        if all_identities:
            argv.append("-a")
        request = {"DATA_TYPE": MAPPING_INPUT, "identities": [dict(i) for i in identities]}
        stdout = _run_program(argv, json.dumps(request).encode("utf-8"), self.timeout)
        return _parse_program_output(stdout, argv[0])

    def to_document(self) -> dict[str, Any]:
        return {"DATA_TYPE": self.data_type, "command": list(self.command)}


def _run_program(argv: list[str], stdin: bytes, timeout: float) -> bytes:
    """Run ``argv`` (no shell) with ``stdin``; its stdout, or IdentityMappingError."""
    program = argv[0]
    # Output goes to unnamed temporary files: memory stays bounded and no pipe can deadlock.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                close_fds=True,
                cwd="/",
                start_new_session=True,  # its own process group, so a timeout kills it all
                # Not the server's environment: it holds database URLs and secrets.
                env={"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"},
            )
        except OSError as error:
            raise IdentityMappingError(
                "Identity mapping failed: the mapping program could not be started",
                f"{program}: {error.strerror}",
            ) from None
        try:
            process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise IdentityMappingError(
                f"Identity mapping failed: the mapping program took over {timeout:g} seconds",
                program,
            ) from None
        if process.returncode != 0:
            raise IdentityMappingError(
                "Identity mapping failed: the mapping program exited with an error",
                f"{program} exited with {process.returncode}: {_tail(err)}",
            )
        out.seek(0)
        output = out.read(MAX_PROGRAM_OUTPUT + 1)
    if len(output) > MAX_PROGRAM_OUTPUT:
        raise IdentityMappingError(
            "Identity mapping failed: the mapping program said too much", program
        )
    return output


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(stream: IO[bytes]) -> str:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(max(0, size - 500))
    return stream.read().decode("utf-8", "replace").strip()


def _parse_program_output(stdout: bytes, program: str) -> list[tuple[str, str]]:
    if not stdout.strip():
        return []  # said nothing: mapped nothing
    try:
        document = json.loads(stdout)
    except ValueError:
        raise IdentityMappingError(
            "Identity mapping failed: the mapping program's output is not JSON", program
        ) from None
    if not isinstance(document, dict) or document.get("DATA_TYPE") != MAPPING_OUTPUT:
        raise IdentityMappingError(
            f"Identity mapping failed: the mapping program did not answer {MAPPING_OUTPUT}",
            program,
        )
    results = document.get("result", [])
    if not isinstance(results, list):
        raise IdentityMappingError("Identity mapping failed: 'result' is not a list", program)
    found: list[tuple[str, str]] = []
    for result in results:
        if (
            not isinstance(result, dict)
            or not isinstance(result.get("id"), str)
            or not isinstance(result.get("output"), str)
            or not result["output"]
        ):
            raise IdentityMappingError(
                "Identity mapping failed: each result needs a string 'id' and 'output'", program
            )
        found.append((result["id"], result["output"]))
    return found


# --- parsing mapping documents ----------------------------------------------------------------


def parse_identity_mapping(
    document: Any, *, connector_id: str, storage_gateway_id: str, where: str = ""
) -> IdentityMapping:
    """One ``identity_mappings`` entry, checked; InvalidMappingError names what is wrong."""
    prefix = f"{where}." if where else ""
    if not isinstance(document, Mapping):
        raise InvalidMappingError(
            "An identity mapping must be an object", where or "identity_mapping"
        )
    data_type = document.get("DATA_TYPE")
    if data_type == EXPRESSION_MAPPING:
        _refuse_unknown(document, {"DATA_TYPE", "mappings"}, prefix)
        rules = document.get("mappings")
        if not isinstance(rules, list):
            raise InvalidMappingError("'mappings' must be a list of rules", f"{prefix}mappings")
        return ExpressionMapping(
            tuple(
                ExpressionRule.parse(rule, f"{prefix}mappings[{i}]") for i, rule in enumerate(rules)
            )
        )
    if data_type == EXTERNAL_MAPPING:
        _refuse_unknown(document, {"DATA_TYPE", "command"}, prefix)
        command = document.get("command")
        if (
            not isinstance(command, list)
            or not command
            or not all(
                isinstance(part, str | int | float) and not isinstance(part, bool)
                for part in command
            )
            or not str(command[0]).strip()
        ):
            raise InvalidMappingError(
                "'command' must be a list: the program, then its arguments", f"{prefix}command"
            )
        if any("\x00" in str(part) for part in command):
            raise InvalidMappingError("'command' may not contain NUL bytes", f"{prefix}command")
        return ExternalMapping(
            tuple(str(part) for part in command), connector_id, storage_gateway_id
        )
    raise InvalidMappingError(
        f"DATA_TYPE must be '{EXPRESSION_MAPPING}' or '{EXTERNAL_MAPPING}'", f"{prefix}DATA_TYPE"
    )


def parse_identity_mappings(
    documents: Any, *, connector_id: str, storage_gateway_id: str
) -> list[IdentityMapping]:
    """A gateway's ``identity_mappings`` (None or absent means the default mapping)."""
    if documents is None:
        return []
    if not isinstance(documents, list):
        raise InvalidMappingError("identity_mappings must be a list", "identity_mappings")
    return [
        parse_identity_mapping(
            document,
            connector_id=connector_id,
            storage_gateway_id=storage_gateway_id,
            where=f"identity_mappings[{i}]",
        )
        for i, document in enumerate(documents)
    ]


def _refuse_unknown(document: Mapping[str, Any], known: set[str], prefix: str) -> None:
    # "comment" is tolerated: Globus' own examples annotate mapping documents with it.
    unknown = sorted(set(document) - known - {"comment"})
    if unknown:
        raise InvalidMappingError(f"Unknown property '{unknown[0]}'", f"{prefix}{unknown[0]}")


# --- domains, the default mapping, and whole identity sets ------------------------------------


def default_mapping(
    identity: Identity, allowed_domains: Sequence[str], *, strip_domain: bool = True
) -> str | None:
    """With no mappings and exactly one allowed domain: ``user@domain`` -> ``user`` for POSIX
    (``strip_domain``), the whole username for connectors that keep it."""
    if len(allowed_domains) != 1 or not in_allowed_domains(identity, allowed_domains):
        return None
    username = str(identity["username"])
    return username.rsplit("@", 1)[0] if strip_domain else username


def map_single_identity(
    identity: Identity,
    mappings: Sequence[IdentityMapping],
    allowed_domains: Sequence[str],
    *,
    strip_domain: bool = True,
) -> str | None:
    """The account one identity maps to on a gateway: the first mapping that gives one."""
    if not in_allowed_domains(identity, allowed_domains):
        return None
    if not mappings:
        return default_mapping(identity, allowed_domains, strip_domain=strip_domain)
    for mapping in mappings:
        output = mapping.map_identity(identity)
        if output is not None:
            return output
    return None


def map_identity_set(
    identities: Sequence[Identity],
    mappings: Sequence[IdentityMapping],
    allowed_domains: Sequence[str],
    *,
    strip_domain: bool = True,
) -> list[str]:
    """Every account a user's identity set maps to, most preferred first, without repeats.

    Only identities in an allowed domain whose ``status`` (when given) is ``used`` or
    ``private`` are considered, in the order given (put the session's identity first).
    Mappings are applied in order, so an earlier mapping's accounts come first.
    """
    eligible = [
        identity
        for identity in identities
        if in_allowed_domains(identity, allowed_domains)
        and identity.get("status", "used") in MAPPABLE_STATUSES
    ]
    accounts: dict[str, None] = {}
    if not mappings:
        for identity in eligible:
            account = default_mapping(identity, allowed_domains, strip_domain=strip_domain)
            if account is not None:
                accounts.setdefault(account, None)
        return list(accounts)
    for mapping in mappings:
        for _, account in mapping.map_identities(eligible):
            accounts.setdefault(account, None)
    return list(accounts)
