"""Identity mapping as the GCS Identity Mapping guide describes it: expression rules (with the
guide's own examples), external programs (real executables, run without a shell), and the
mapping of a whole identity set."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from isthmus.connect.identity_mapping import (
    EXPRESSION_MAPPING,
    EXTERNAL_MAPPING,
    ExpressionMapping,
    ExternalMapping,
    IdentityMapping,
    IdentityMappingError,
    InvalidMappingError,
    default_mapping,
    map_identity_set,
    map_single_identity,
    parse_identity_mapping,
    parse_identity_mappings,
)

CONNECTOR = "145812c8-decc-41f1-83cf-bb2a85a2a70b"  # POSIX
GATEWAY = "5e5c3f1c-0c58-4a4f-8e0e-6f2d2c7b9a11"


def identity(username: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": fields.pop("id", f"id-{username}"),
        "username": username,
        "email": fields.pop("email", username),
        "name": fields.pop("name", username.split("@")[0].title()),
        "organization": fields.pop("organization", None),
        "identity_provider": fields.pop("identity_provider", "idp-1"),
        "status": fields.pop("status", "used"),
        **fields,
    }


def expression(*rules: dict[str, Any]) -> IdentityMapping:
    return parse_identity_mapping(
        {"DATA_TYPE": EXPRESSION_MAPPING, "mappings": list(rules)},
        connector_id=CONNECTOR,
        storage_gateway_id=GATEWAY,
    )


# --- the guide's examples ------------------------------------------------------------------


def test_match_a_domain_and_keep_the_name_before_it() -> None:
    mapping = expression({"source": "{username}", "match": "(.*)@example\\.org", "output": "{0}"})
    assert mapping.map_identity(identity("user@example.org")) == "user"
    assert mapping.map_identity(identity("user@example.com")) is None
    # The match is against the whole source, not a part of it.
    assert mapping.map_identity(identity("user@example.org.evil.com")) is None
    assert mapping.map_identity(identity("user@sub.example.org")) is None  # another domain


def test_map_one_identity_id_to_an_application_account() -> None:
    mapping = expression(
        {
            "source": "{id}",
            "match": "b34bb069-3b68-4d38-b4e6-bc1e4fc95332",
            "output": "application_account",
        }
    )
    chosen = identity("robot@example.org", id="b34bb069-3b68-4d38-b4e6-bc1e4fc95332")
    assert mapping.map_identity(chosen) == "application_account"
    assert mapping.map_identity(identity("other@example.org")) is None


def test_rewrite_an_identity_from_one_domain_to_another() -> None:
    mapping = expression(
        {"source": "{username}", "match": "(.*)@example\\.edu", "output": "{0}@data.example.edu"}
    )
    assert mapping.map_identity(identity("jo@example.edu")) == "jo@data.example.edu"


def test_map_a_set_of_identities_to_a_common_account() -> None:
    mapping = expression(
        {"source": "{username}", "match": "(alice|bob)@example\\.org", "output": "globus"}
    )
    assert mapping.map_identity(identity("alice@example.org")) == "globus"
    assert mapping.map_identity(identity("bob@example.org")) == "globus"
    assert mapping.map_identity(identity("carol@example.org")) is None
    assert mapping.map_identity(identity("xbob@example.org")) is None


def test_the_guides_identity_set_example_maps_roberto() -> None:
    """Two linked identities; only the second one's email matches either rule."""
    mapping = expression(
        {"source": "{email}", "output": "{0}", "match": "(.*)@your_institution.com"},
        {"source": "{email}", "output": "{0}", "match": "(.*)@cs.your_institution.com"},
    )
    alicia = identity(
        "alicia@legal.your_institution.com",
        id="00000000-0000-4444-8888-111111111111",
        email="alicia@legal.your_institution.com",
    )
    roberto = identity(
        "roberto@your_institution.com",
        id="00000000-0000-4444-8888-222222222222",
        email="roberto@cs.your_institution.com",
        organization="Your Institution, GmbH",
    )
    assert mapping.map_identity(alicia) is None
    # Not the first rule (its email is at cs.your_institution.com), but the second.
    assert mapping.map_identity(roberto) == "roberto"
    accounts = map_identity_set([alicia, roberto], [mapping], ["your_institution.com"])
    assert accounts == ["roberto"]


def test_the_sdk_documents_gateway_mapping() -> None:
    """The body GCSClient sends for `storage-gateway create posix` with a mapping."""
    mappings = parse_identity_mappings(
        [
            {
                "DATA_TYPE": "expression_identity_mapping#1.0.0",
                "mappings": [
                    {"source": "{username}", "match": "(.*)@example.org", "output": "{0}"}
                ],
            }
        ],
        connector_id=CONNECTOR,
        storage_gateway_id=GATEWAY,
    )
    assert map_identity_set([identity("ann@example.org")], mappings, ["example.org"]) == ["ann"]


# --- the match language --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "source", "matches"),
    [
        ("a.c", "abc", True),
        ("a.c", "a\nc", True),
        ("ab?c", "ac", True),
        ("ab?c", "abbc", False),
        ("ab*c", "abbbc", True),
        ("(ab)*c", "ababc", True),
        ("alice|bob", "bob", True),
        ("alice|bob", "alicex", False),  # the whole source, whichever branch
        ("a\\.c", "abc", False),
        ("a\\.c", "a.c", True),
        ("a\\*", "a*", True),
        ('say\\"hi\\"', 'say"hi"', True),
        ("a+b", "a+b", True),  # + is literal
        ("a+b", "aab", False),
        ("[abc]", "[abc]", True),  # brackets are literal
        ("[abc]", "a", False),
        ("x{2}", "x{2}", True),
        ("^x$", "^x$", True),
        ("user name", "user name", True),
    ],
)
def test_the_reduced_posix_ere(match: str, source: str, matches: bool) -> None:
    mapping = expression({"source": "{username}", "match": match, "output": "ok"})
    assert (mapping.map_identity(identity(source)) == "ok") is matches


@pytest.mark.parametrize(
    "match",
    ["*a", "?a", "a*?", "a??", "a**", "a|*b", "(*a)", "\\d+", "a\\", "(a", "a)", "\\1"],
)
def test_invalid_match_expressions_are_refused_naming_the_field(match: str) -> None:
    with pytest.raises(InvalidMappingError) as raised:
        expression(
            {"source": "{username}", "match": "ok", "output": "x"},
            {"source": "{username}", "match": match, "output": "x"},
        )
    assert raised.value.field == "mappings[1].match"


def test_ignore_case() -> None:
    mapping = expression(
        {
            "source": "{username}",
            "match": "(.*)@EXAMPLE\\.org",
            "output": "{0}",
            "ignore_case": True,
        }
    )
    assert mapping.map_identity(identity("Ann@example.ORG")) == "Ann"
    strict = expression({"source": "{username}", "match": "(.*)@EXAMPLE\\.org", "output": "{0}"})
    assert strict.map_identity(identity("Ann@example.ORG")) is None


def test_literal_matches_compare_strings() -> None:
    mapping = expression(
        {"source": "{username}", "match": "a.b*(c)", "output": "lit", "literal": True}
    )
    assert mapping.map_identity(identity("a.b*(c)")) == "lit"
    assert mapping.map_identity(identity("axbbc")) is None
    folded = expression(
        {
            "source": "{username}",
            "match": "Ann",
            "output": "x",
            "literal": True,
            "ignore_case": True,
        }
    )
    assert folded.map_identity(identity("aNN")) == "x"
    with pytest.raises(InvalidMappingError) as raised:
        expression({"source": "{username}", "match": "(a)", "output": "{0}", "literal": True})
    assert raised.value.field == "mappings[0].output"


def test_outputs_interpolate_identity_fields_and_groups() -> None:
    mapping = expression(
        {
            "source": "{identity_provider}/{username}",
            "match": "idp-1/(.*)@(.*)",
            "output": "{1}_{0}_{name}",
        }
    )
    assert mapping.map_identity(identity("ann@example.org")) == "example.org_ann_Ann"


def test_the_first_matching_rule_wins() -> None:
    mapping = expression(
        {"source": "{username}", "match": "admin@example\\.org", "output": "root-ish"},
        {"source": "{username}", "match": "(.*)@example\\.org", "output": "{0}"},
    )
    assert mapping.map_identity(identity("admin@example.org")) == "root-ish"
    assert mapping.map_identity(identity("ann@example.org")) == "ann"


def test_a_missing_identity_property_is_a_mapping_error() -> None:
    mapping = expression({"source": "{email}", "match": "(.*)", "output": "{0}"})
    with pytest.raises(IdentityMappingError) as raised:
        mapping.map_identity(identity("ann@example.org", email=None))
    assert "email" in raised.value.message
    optional = expression({"source": "{username}", "match": "(x)?ann", "output": "{0}"})
    with pytest.raises(IdentityMappingError):
        optional.map_identity(identity("ann"))  # group {0} took no part in the match


def test_rules_as_the_manager_api_stores_them_carry_their_data_type() -> None:
    mapping = expression({"DATA_TYPE": "expression_identity_mapping_rule#1.0.0",
                          "source": "{username}", "match": "(.*)@example.org",
                          "output": "{0}"})
    assert mapping.map_identity(identity("ann@example.org")) == "ann"


@pytest.mark.parametrize(
    ("rule", "where"),
    [
        ({"source": "{username}", "match": "(.*)", "output": "{1}"}, "mappings[0].output"),
        ({"source": "{0}", "match": "(.*)", "output": "x"}, "mappings[0].source"),
        ({"source": "{}", "match": "(.*)", "output": "x"}, "mappings[0].source"),
        ({"source": "{username}", "match": "(.*)", "output": "{}"}, "mappings[0].output"),
        ({"match": "(.*)", "output": "x"}, "mappings[0].source"),
        ({"source": "{username}", "match": 5, "output": "x"}, "mappings[0].match"),
        (
            {"source": "{username}", "match": "x", "output": "x", "literal": "yes"},
            "mappings[0].literal",
        ),
        ({"source": "{username}", "match": "x", "output": "x", "extra": 1}, "mappings[0].extra"),
        (
            {"DATA_TYPE": "lookup_rule#1.0.0", "source": "{username}", "match": "x",
             "output": "x"},
            "mappings[0].DATA_TYPE",
        ),
    ],
)
def test_malformed_rules_name_the_offending_field(rule: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidMappingError) as raised:
        expression(rule)
    assert raised.value.field == where


def test_malformed_mapping_documents_name_the_offending_field() -> None:
    good = {"DATA_TYPE": EXPRESSION_MAPPING, "mappings": []}
    cases: list[tuple[Any, str]] = [
        ([good, {"DATA_TYPE": "bogus#1.0.0"}], "identity_mappings[1].DATA_TYPE"),
        ([{"DATA_TYPE": EXPRESSION_MAPPING, "mappings": {}}], "identity_mappings[0].mappings"),
        ([{"DATA_TYPE": EXTERNAL_MAPPING, "command": []}], "identity_mappings[0].command"),
        ([{"DATA_TYPE": EXTERNAL_MAPPING, "command": "/bin/prog"}], "identity_mappings[0].command"),
        ([{"DATA_TYPE": EXTERNAL_MAPPING, "command": [True]}], "identity_mappings[0].command"),
        ([{"DATA_TYPE": EXTERNAL_MAPPING, "command": ["a\x00b"]}], "identity_mappings[0].command"),
        ([{**good, "surprise": 1}], "identity_mappings[0].surprise"),
        (["not an object"], "identity_mappings[0]"),
        ({"DATA_TYPE": EXPRESSION_MAPPING}, "identity_mappings"),
    ]
    for documents, where in cases:
        with pytest.raises(InvalidMappingError) as raised:
            parse_identity_mappings(documents, connector_id=CONNECTOR, storage_gateway_id=GATEWAY)
        assert raised.value.field == where, documents
    assert parse_identity_mappings(None, connector_id=CONNECTOR, storage_gateway_id=GATEWAY) == []


def test_documents_round_trip() -> None:
    documents = [
        {
            "DATA_TYPE": EXPRESSION_MAPPING,
            "mappings": [
                {"source": "{username}", "match": "(.*)@x\\.org", "output": "{0}"},
                {
                    "source": "{email}",
                    "match": "A",
                    "output": "b",
                    "ignore_case": True,
                    "literal": True,
                },
            ],
        },
        {"DATA_TYPE": EXTERNAL_MAPPING, "command": ["/usr/local/bin/map", "--flag", "1"]},
    ]
    mappings = parse_identity_mappings(
        [*documents[:1], {**documents[1], "comment": "as in Globus' examples"}],
        connector_id=CONNECTOR,
        storage_gateway_id=GATEWAY,
    )
    assert [m.to_document() for m in mappings] == documents
    assert isinstance(mappings[0], ExpressionMapping)
    assert (
        isinstance(mappings[1], ExternalMapping) and mappings[1].command[0] == "/usr/local/bin/map"
    )


# --- external programs ---------------------------------------------------------------------


def _program(tmp_path: Path, body: str, name: str = "mapper") -> Path:
    """An executable Python script; it records its argv, stdin and environment in a log."""
    path = tmp_path / name
    log = tmp_path / f"{name}.log"
    path.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import json, os, sys
            request = sys.stdin.read()
            with open({str(log)!r}, "a") as log:
                log.write(json.dumps({{"argv": sys.argv[1:], "stdin": request,
                                       "env": sorted(os.environ)}}) + "\\n")
            """
        )
        + textwrap.dedent(body)
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _calls(tmp_path: Path, name: str = "mapper") -> list[dict[str, Any]]:
    log = tmp_path / f"{name}.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


STRIP_DOMAIN = """
document = json.loads(request)
assert document["DATA_TYPE"] == "identity_mapping_input#1.0.0"
result = [{"id": i["id"], "output": i["username"].split("@")[0]}
          for i in document["identities"] if i["username"].endswith("@example.org")]
print(json.dumps({"DATA_TYPE": "identity_mapping_output#1.0.0", "result": result}))
"""


def external(program: Path, *args: str, timeout: float | None = None) -> ExternalMapping:
    mapping = parse_identity_mapping(
        {"DATA_TYPE": EXTERNAL_MAPPING, "command": [str(program), *args]},
        connector_id=CONNECTOR,
        storage_gateway_id=GATEWAY,
    )
    assert isinstance(mapping, ExternalMapping)
    if timeout is not None:
        mapping = ExternalMapping(mapping.command, CONNECTOR, GATEWAY, timeout=timeout)
    return mapping


def test_an_external_program_maps_one_identity(tmp_path: Path) -> None:
    mapping = external(_program(tmp_path, STRIP_DOMAIN), "--site", "lab")
    assert mapping.map_identity(identity("ann@example.org")) == "ann"
    assert mapping.map_identity(identity("ann@elsewhere.org")) is None
    first = _calls(tmp_path)[0]
    assert first["argv"] == ["--site", "lab", "-c", CONNECTOR, "-s", GATEWAY]
    sent = json.loads(first["stdin"])
    assert sent == {
        "DATA_TYPE": "identity_mapping_input#1.0.0",
        "identities": [identity("ann@example.org")],
    }


def test_an_external_program_maps_a_whole_identity_set_with_dash_a(tmp_path: Path) -> None:
    mapping = external(_program(tmp_path, STRIP_DOMAIN))
    identities = [
        identity("ann@example.org"),
        identity("ann@other.org"),
        identity("bea@example.org"),
    ]
    assert mapping.map_identities(identities) == [
        ("id-ann@example.org", "ann"),
        ("id-bea@example.org", "bea"),
    ]
    assert _calls(tmp_path)[0]["argv"] == ["-c", CONNECTOR, "-s", GATEWAY, "-a"]
    accounts = map_identity_set(identities, [mapping], ["example.org", "other.org"])
    assert accounts == ["ann", "bea"]


def test_the_program_gets_neither_a_shell_nor_the_servers_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISTHMUS_DATABASE_URL", "postgresql://user:secret@db/isthmus")
    marker = tmp_path / "pwned"
    mapping = external(_program(tmp_path, STRIP_DOMAIN), f"; touch {marker}", "$(id)")
    assert mapping.map_identity(identity("ann@example.org")) == "ann"
    call = _calls(tmp_path)[0]
    assert call["argv"][:2] == [f"; touch {marker}", "$(id)"]  # passed as plain arguments
    assert not marker.exists()
    assert "ISTHMUS_DATABASE_URL" not in call["env"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("sys.stderr.write('ldap is down'); sys.exit(3)", "exited with an error"),
        ("print('not json')", "not JSON"),
        ("print(json.dumps({'DATA_TYPE': 'other#1.0.0', 'result': []}))", "did not answer"),
        (
            "print(json.dumps({'DATA_TYPE': 'identity_mapping_output#1.0.0', 'result': {}}))",
            "not a list",
        ),
        (
            "print(json.dumps({'DATA_TYPE': 'identity_mapping_output#1.0.0',"
            " 'result': [{'id': 'x'}]}))",
            "string 'id' and 'output'",
        ),
        (
            "print(json.dumps({'DATA_TYPE': 'identity_mapping_output#1.0.0',"
            " 'result': [{'id': 'someone-else', 'output': 'eve'}]}))",
            "another identity",
        ),
        ("sys.stdout.write('x' * (2 * 1024 * 1024))", "said too much"),
    ],
)
def test_a_failing_program_is_a_mapping_error(tmp_path: Path, body: str, words: str) -> None:
    mapping = external(_program(tmp_path, body))
    with pytest.raises(IdentityMappingError) as raised:
        mapping.map_identity(identity("ann@example.org"))
    assert raised.value.message.startswith("Identity mapping failed")
    assert words in raised.value.message
    if "ldap" in body:
        assert "ldap is down" in raised.value.detail and "3" in raised.value.detail


def test_an_answer_for_an_unknown_identity_in_a_set_is_refused(tmp_path: Path) -> None:
    body = (
        "print(json.dumps({'DATA_TYPE': 'identity_mapping_output#1.0.0',"
        " 'result': [{'id': 'intruder', 'output': 'root'}]}))"
    )
    mapping = external(_program(tmp_path, body))
    with pytest.raises(IdentityMappingError, match="unknown identity"):
        mapping.map_identities([identity("ann@example.org")])


def test_a_program_that_says_nothing_maps_nothing(tmp_path: Path) -> None:
    assert external(_program(tmp_path, "pass")).map_identity(identity("ann@example.org")) is None


def test_a_program_that_hangs_is_stopped_with_everything_it_started(tmp_path: Path) -> None:
    # A child that inherits stdout would keep a pipe open forever; it must not matter.
    body = """
    import subprocess, time
    child = subprocess.Popen(["sleep", "60"])
    open(os.path.join(os.path.dirname(sys.argv[0]), "child.pid"), "w").write(str(child.pid))
    time.sleep(60)
    """
    mapping = external(_program(tmp_path, body), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(IdentityMappingError, match="took over 1 seconds"):
        mapping.map_identity(identity("ann@example.org"))
    assert time.monotonic() - started < 10
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the mapping program's child outlived the timeout")


def test_a_missing_program_is_a_mapping_error(tmp_path: Path) -> None:
    mapping = external(tmp_path / "no-such-program")
    with pytest.raises(IdentityMappingError, match="could not be started"):
        mapping.map_identity(identity("ann@example.org"))


# --- defaults and whole identity sets -------------------------------------------------------


def test_the_default_mapping_needs_exactly_one_allowed_domain() -> None:
    ann = identity("ann@example.org")
    assert default_mapping(ann, ["example.org"]) == "ann"
    assert default_mapping(ann, ["EXAMPLE.ORG"]) == "ann"
    assert default_mapping(ann, ["example.org"], strip_domain=False) == "ann@example.org"
    assert default_mapping(ann, ["example.org", "other.org"]) is None
    assert default_mapping(ann, ["other.org"]) is None
    assert default_mapping(ann, []) is None


def test_only_identities_from_allowed_domains_are_mapped() -> None:
    anything = expression({"source": "{username}", "match": "(.*)@(.*)", "output": "{0}"})
    identities = [identity("ann@example.org"), identity("mallory@evil.org")]
    assert map_identity_set(identities, [anything], ["example.org"]) == ["ann"]
    assert map_single_identity(identities[1], [anything], ["example.org"]) is None
    assert map_single_identity(identities[0], [anything], ["example.org"]) == "ann"
    assert map_single_identity(identities[0], [], ["example.org"]) == "ann"


def test_unused_and_closed_identities_are_not_mapped_in_a_set() -> None:
    identities = [
        identity("a@example.org", status="unused"),
        identity("b@example.org", status="closed"),
        identity("c@example.org", status="private"),
        identity("d@example.org", status="used"),
    ]
    assert map_identity_set(identities, [], ["example.org"]) == ["c", "d"]


def test_earlier_mappings_and_rules_come_first_without_repeats() -> None:
    first = expression(
        {"source": "{username}", "match": "bea@example\\.org", "output": "shared"},
        {"source": "{username}", "match": "(.*)@example\\.org", "output": "{0}"},
    )
    second = expression({"source": "{username}", "match": "(.*)@example\\.org", "output": "x-{0}"})
    identities = [identity("ann@example.org"), identity("bea@example.org")]
    assert map_identity_set(identities, [first, second], ["example.org"]) == [
        "shared",
        "ann",
        "bea",
        "x-ann",
        "x-bea",
    ]
    assert map_identity_set([], [first], ["example.org"]) == []
