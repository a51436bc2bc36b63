"""Schemathesis against the live server's own OpenAPI document, shared by each API's fuzz
test (`test_openapi_fuzz` for Auth, `test_connect_openapi_fuzz` for the GCS Manager,
`test_transfer_openapi_fuzz` for Transfer).

The document (``/openapi.json``) describes every route with its parameters and bodies, so
schemathesis generates both valid and invalid requests from it (its positive and negative
modes). Each request carries real credentials, and path and body ids are often swapped for
real ones, so requests get past authentication and lookups into the rules behind them.
Checks: no 5xx, and every answer matches the documented schema (the API's own error body
on each 4xx).

Bounded for CI: each test reads its own examples-per-operation variable; the requests are
derandomized (the same on every run, so a failure repeats) unless
``ISTHMUS_SCHEMATHESIS_RANDOM=1`` asks for new ones. With
``ISTHMUS_TEST_DATABASE=postgresql`` the server runs on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.live import LiveServer, server_on_fresh_database

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"isthmus-hypothesis-{os.getuid()}")

# The headers a request carries: for a generated case, or (None) for a direct request.
Credentials = Callable[[schemathesis.Case | None], dict[str, str]]


def examples(variable: str, default: int) -> int:
    """Examples per operation and generation mode: ``variable`` from the environment."""
    return int(os.environ.get(variable) or default)


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,  # a live server over TLS: latency is not what is under test
        database=None,  # keep no example database in the repository
        derandomize=not os.environ.get("ISTHMUS_SCHEMATHESIS_RANDOM"),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time
        suppress_health_check=list(HealthCheck),
    )


@dataclass(frozen=True)
class Fuzzed:
    """The server under test and the real credentials and ids requests start from."""

    server: LiveServer
    http: requests.Session
    # The headers a generated request carries (its credentials).
    credentials: Credentials
    # Per path parameter name, ids of real rows the caller may act on.
    ids: dict[str, list[str]]
    # Body fields that name rows, and the path parameter whose real ids they take.
    body_ids: dict[str, str] = field(default_factory=dict)


def bearer_credentials(token: str) -> Credentials:
    return lambda _case: {"Authorization": f"Bearer {token}"}


@contextmanager
def fuzzed_server(tmp: Path) -> Iterator[tuple[LiveServer, requests.Session]]:
    """A server on a fresh database that logs its requests, and a session trusting it."""
    with server_on_fresh_database(tmp, "--access-log", str(tmp / "access.log")) as server:
        http = requests.Session()
        http.verify = server.ca_file
        http.trust_env = False
        try:
            yield server, http
        finally:
            http.close()


def swap(value: Any, real: list[str]) -> Any:
    """Two generated values in three become a real id; the choice hangs on the value
    itself, so a case replays the same."""
    pick = int(hashlib.sha256(repr(value).encode()).hexdigest(), 16)
    return real[pick % len(real)] if pick % 3 else value


def _with_real_ids(document: Any, fuzzed: Fuzzed) -> Any:
    if isinstance(document, list):
        return [_with_real_ids(item, fuzzed) for item in document]
    if not isinstance(document, dict):
        return document
    swapped = {}
    for key, value in document.items():
        real = fuzzed.ids.get(fuzzed.body_ids.get(key, ""))
        if real and isinstance(value, str):
            swapped[key] = swap(value, real)
        elif real and isinstance(value, list):
            swapped[key] = [swap(item, real) if isinstance(item, str) else item
                            for item in value]
        else:
            swapped[key] = _with_real_ids(value, fuzzed)
    return swapped


def real_ids(case: schemathesis.Case, fuzzed: Fuzzed) -> None:
    """Most generated ids name nothing: put real ones in the path and body, often."""
    for name, value in list((case.path_parameters or {}).items()):
        real = fuzzed.ids.get(name)
        if real:
            case.path_parameters[name] = swap(value, real)
    if isinstance(case.body, dict | list):
        case.body = _with_real_ids(case.body, fuzzed)


def not_a_server_error_but_storage(ctx: Any, response: Any, case: schemathesis.Case) -> None:
    """No 5xx, except Transfer's 502 for what the storage refused: an ``ExternalError``
    code (``ExternalError.MkdirFailed.Exists``...), as Globus answers and the SDK and
    clients test for (the SDK does not retry those)."""
    if response.status_code == 502:
        code = str(response.json().get("code", ""))
        if code.startswith(("ExternalError.", "EndpointError")):
            return
    not_a_server_error(ctx, response, case)


DEFAULT_CHECKS = (not_a_server_error, response_schema_conformance)


def fuzz_every_operation(fuzzed: Fuzzed, path_regex: str, subtests: pytest.Subtests,
                         max_examples: int, checks: tuple[Any, ...] = DEFAULT_CHECKS) -> int:
    """Every operation of the document under ``path_regex``, in both generation modes,
    deletions last (the rows they remove are what the others work on). The number of
    operations fuzzed."""
    schema = schemathesis.openapi.from_url(
        fuzzed.server.base_url + "openapi.json", verify=fuzzed.server.ca_file, timeout=30,
    ).include(path_regex=path_regex)
    base_url = fuzzed.server.base_url.rstrip("/")
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda operation: operation.method.upper() == "DELETE")
    bounded = fuzz_settings(max_examples)
    for operation in operations:
        for mode in GenerationMode:
            strategy = operation.as_strategy(generation_mode=mode)

            @bounded
            @given(case=strategy)
            def requests_(case: schemathesis.Case) -> None:
                real_ids(case, fuzzed)
                case.call_and_validate(
                    base_url=base_url, session=fuzzed.http, headers=fuzzed.credentials(case),
                    checks=list(checks), timeout=30,
                    verify=fuzzed.server.ca_file,
                )

            with subtests.test(msg=f"{operation.label} ({mode.value})"):
                requests_()
    return len(operations)


def succeeded(server: LiveServer, path_regex: str, statuses: tuple[str, ...] = ("200",), *,
              with_query: bool = False) -> set[tuple[str, str]]:
    """The (method, path with ids as {id}) the access log shows answered with ``statuses``:
    what took requests past authentication into the rules."""
    answered = [line.split() for line in server.access_log_lines()]
    return {(fields[2], UUID.sub("{id}", fields[3] if with_query else
                                 fields[3].split("?")[0]))
            for fields in answered
            if fields[4] in statuses and re.match(path_regex, fields[3])}
