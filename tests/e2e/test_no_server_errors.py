"""Property-based robustness: nothing a client sends makes an Auth route answer 5xx.

The SDK retries 5xx five times with backoff (spec §5.2), so a client mistake
answered with a 500 costs its user ~20 s and hides the real error (§11 item 34).
Hypothesis throws arbitrary methods, query strings, headers, cookies, form and
JSON bodies at every Auth route of a live server (its own, so the clients it
manages to create disturb nobody). Most examples start from a request that
works (real tokens, codes, cookies and CSRF tokens of that server) and mutate
a little of it, often by splicing NUL or another awkward character into a
value, so they reach the grant, login, consent and lookup logic behind the
parameter checks. JSON routes must answer JSON, errors in the Globus Auth shape.

Bounded for CI: ``ISTHMUS_FUZZ_EXAMPLES`` (default 50) examples per route.
With ``ISTHMUS_TEST_DATABASE=postgresql`` the server runs on PostgreSQL, whose
text type refuses NUL: ``make test`` does that for `postgres`-marked tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes, urlencode

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from tests.browser import Browser, parse_form, query_of
from tests.conftest import _new_user
from tests.e2e.security_helpers import enrol
from tests.live import LiveServer, server_on_fresh_database

pytestmark = pytest.mark.postgres

EXAMPLES = int(os.environ.get("ISTHMUS_FUZZ_EXAMPLES") or 50)
# Hypothesis caches (character tables, constants) go to a temporary directory, not the repo.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"isthmus-hypothesis-{os.getuid()}")
settings.register_profile(
    "isthmus-fuzz",
    max_examples=EXAMPLES,
    deadline=None,  # a live server over TLS: latency is not what is under test
    database=None,  # keep no example database in the repository
    print_blob=True,
    # No shrinking: on a live server it can outlast the test timeout, and the failing
    # request is printed in full anyway.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("isthmus-fuzz")

TUTORIAL_CLIENT_ID = "61338d24-54d5-408f-a10d-66c06b59f6d2"
CLI_TEMPLATE_ID = "95fdeba8-fac2-42bd-a357-e068d82ff78e"
TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"
FORM = "application/x-www-form-urlencoded"
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


@dataclass(frozen=True)
class Route:
    path: str
    methods: tuple[str, ...]
    answers_json: bool
    body: str  # where its parameters go: "form", "json" or "query"
    fields: tuple[str, ...] = ()


AUTHORIZE_FIELDS = (
    "client_id", "redirect_uri", "scope", "state", "response_type", "access_type",
    "code_challenge", "code_challenge_method", "prompt", "prefill_named_grant",
    "session_required_identities", "session_required_single_domain",
    "session_required_policies", "session_required_mfa", "session_message",
)
TOKEN_FIELDS = ("token", "client_id", "client_secret", "include", "token_type_hint")

# Revocation last: it may kill the tokens that let the others go deeper.
ROUTES = [
    Route(".well-known/openid-configuration", ("GET",), True, "query"),
    Route("jwk.json", ("GET",), True, "query"),
    Route("v2/oauth2/token", ("POST",), True, "form", (
        "grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope",
        "client_id", "client_secret", "token", "access_type")),
    Route("v2/oauth2/token/introspect", ("POST",), True, "form", TOKEN_FIELDS),
    Route("v2/oauth2/token/validate", ("POST",), True, "form", TOKEN_FIELDS),
    Route("v2/oauth2/userinfo", ("GET", "POST"), True, "query"),
    Route("v2/oauth2/authorize", ("GET",), False, "query", AUTHORIZE_FIELDS),
    Route("v2/web/login", ("POST",), False, "form",
          ("csrf_token", "authorize", "next", "username", "password")),
    Route("v2/web/login/mfa", ("POST",), False, "form", ("csrf_token", "code")),
    Route("v2/web/consent", ("POST",), False, "form", ("csrf_token", "authorize", "decision")),
    Route("v2/web/auth-code", ("GET",), False, "query",
          ("code", "state", "error", "error_description")),
    Route("v2/web/oidc/start", ("POST",), False, "form",
          ("csrf_token", "provider", "purpose", "authorize")),
    Route("v2/web/oidc/callback", ("GET",), False, "query",
          ("state", "code", "error", "error_description")),
    Route("v2/web/account", ("GET",), False, "query", ("done", "identity")),
    Route("v2/web/account/login", ("GET",), False, "query", ()),
    Route("v2/web/account/mfa", ("GET", "POST"), False, "form",
          ("csrf_token", "action", "code", "next")),
    Route("v2/web/account/sessions", ("GET",), False, "query", ()),
    Route("v2/web/account/consents", ("GET",), False, "query", ()),
    Route("v2/web/account/link", ("GET", "POST"), False, "form",
          ("csrf_token", "username", "password")),
    Route("v2/web/account/unlink", ("POST",), False, "form", ("csrf_token", "identity")),
    Route("v2/web/account/sessions/end", ("POST",), False, "form",
          ("csrf_token", "session_id")),
    Route("v2/web/account/consents/revoke", ("POST",), False, "form",
          ("csrf_token", "consent_id")),
    Route("v2/web/developer", ("GET",), False, "query", ("done",)),
    Route("v2/web/developer/projects", ("POST",), False, "form",
          ("csrf_token", "display_name", "contact_email")),
    Route("v2/api/clients", ("POST",), True, "json"),
    Route("v2/api/identities", ("GET",), True, "query", ("ids", "usernames", "provision")),
    Route("v2/api/identities/{identity}/consents", ("GET",), True, "query", ("all",)),
    Route("v2/oauth2/token/revoke", ("POST",), True, "form", TOKEN_FIELDS),
]


@dataclass
class Known:
    """Real values from the fuzzed server, so mutations start from requests that work."""

    server: LiveServer
    identity_id: str
    values: list[str] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)
    # Per route, valid requests: parameters, and "@Header" / "@identity" for the rest.
    valid: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _authorize_query(server: LiveServer, verifier: str) -> dict[str, str]:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return {
        "client_id": TUTORIAL_CLIENT_ID,
        "redirect_uri": server.base_url + "v2/web/auth-code",
        "scope": f"openid profile email {TRANSFER_ALL}",
        "state": "_default",
        "response_type": "code",
        "access_type": "offline",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Known]:
    tmp = tmp_path_factory.mktemp("isthmus-fuzz")
    with server_on_fresh_database(tmp) as server:
        yield _collect(server)


def _collect(server: LiveServer) -> Known:
    user = _new_user(server, "fuzz")
    app = server.create_client("fuzz-app", "confidential_client", "https://app.example.org/cb")
    base = server.base_url
    # A user login (refresh tokens, and a code left unredeemed) and the browser it leaves.
    browser = Browser(server.ca_file)
    verifier = secrets.token_urlsafe(32)
    query = _authorize_query(server, verifier)
    authorize = urlencode(query)
    location = browser.authorize(base + "v2/oauth2/authorize?" + authorize,
                                 user.username, user.password)
    tokens = browser.http.post(base + "v2/oauth2/token", data={
        "client_id": TUTORIAL_CLIENT_ID, "grant_type": "authorization_code",
        "code": query_of(location)["code"], "code_verifier": verifier,
        "redirect_uri": query["redirect_uri"],
    }).json()
    again = browser.open(base + "v2/oauth2/authorize?" + authorize)
    spare_code = query_of(again.headers["Location"])["code"]
    client_token = browser.http.post(
        base + "v2/oauth2/token", data={"grant_type": "client_credentials", "scope": "openid"},
        auth=(app["id"], app["secret"]),
    ).json()["access_token"]
    csrf = str(browser.http.cookies["isthmus_csrf"])
    both_cookies = f"isthmus_csrf={csrf}; isthmus_session={browser.http.cookies['isthmus_session']}"
    browser.http.close()
    # The server is its own upstream identity provider, so sign-ins through it get as
    # far as the provider's answer; a second user to link.
    upstream_client = server.create_client("self", "confidential_client",
                                           base + "v2/web/oidc/callback")
    provider = server.run_json(
        "idp", "add-oidc", "self", "--issuer", base, "--client-id", upstream_client["id"],
        "--client-secret-stdin", "--domain", "self.example", "--ca-file", server.ca_file,
        stdin=upstream_client["secret"] + "\n",
    )["id"]
    second = _new_user(server, "linked")
    # A user with an authenticator, and a login of theirs waiting for its code.
    third = _new_user(server, "second-factor")
    authenticator = enrol(server, Browser(server.ca_file), third)
    waiting = Browser(server.ca_file)
    login = waiting.open(base + "v2/web/login")
    waiting.submit(base + "v2/web/login", parse_form(login.text), username=third.username,
                   password=third.password)
    pending = f"isthmus_csrf={waiting.http.cookies['isthmus_csrf']}; " \
              f"isthmus_pending_login={waiting.http.cookies['isthmus_pending_login']}"
    pending_csrf = str(waiting.http.cookies["isthmus_csrf"])
    waiting.http.close()
    code = authenticator.next_code()

    basic = _basic(app["id"], app["secret"])
    user_bearer = "Bearer " + tokens["access_token"]
    known = Known(server, identity_id=user.id)
    known.values = [
        user.username, user.password, user.id, app["id"], app["secret"], TUTORIAL_CLIENT_ID,
        CLI_TEMPLATE_ID, tokens["access_token"], tokens["refresh_token"], client_token,
        spare_code, verifier, csrf, authorize, query["redirect_uri"],
        "https://app.example.org/cb", "http://127.0.0.1:8765", "openid", TRANSFER_ALL,
        "/v2/web/developer", "//evil.example/", "project_created",
        f"{TRANSFER_ALL}[openid]", "authorization_code", "refresh_token", "client_credentials",
        "urn:globus:auth:grant_type:dependent_token", "offline", "allow", "code", "S256",
        "login", "True", "identity_set,session_info", "", "\x00", "a" * 2000,
        provider, "authorize", "account", "link", "access_denied", second.username,
        second.password, second.id, "linked", "unlinked", "v2/web/account/sessions",
        "start", "confirm", "disable", code, authenticator.recovery_code(),
    ]
    known.headers = {
        "Authorization": [
            basic, _basic(app["id"], "wrong"), _basic(TUTORIAL_CLIENT_ID, ""), user_bearer,
            "Bearer " + client_token, "Bearer " + tokens["refresh_token"], "Bearer", "Basic",
            "Basic !!", "Digest x",
        ],
        "Content-Type": [
            FORM, FORM + "; charset=latin-1", "application/json", "text/plain",
            "multipart/form-data; boundary=xyz", "application/json; charset=utf-16", "",
        ],
        "Cookie": [
            f"isthmus_csrf={csrf}", both_cookies, "isthmus_csrf=; isthmus_session=",
            "isthmus_csrf=" + "x" * 30, "garbage",
        ],
    }
    known.valid = {
        "v2/oauth2/token": [
            {"grant_type": "client_credentials", "scope": "openid profile",
             "@Authorization": basic},
            {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
             "client_id": TUTORIAL_CLIENT_ID},
            {"client_id": TUTORIAL_CLIENT_ID, "grant_type": "authorization_code",
             "code": spare_code, "code_verifier": verifier, "redirect_uri": query["redirect_uri"]},
        ],
        "v2/oauth2/token/introspect": [
            {"token": tokens["access_token"], "include": "identity_set,session_info",
             "@Authorization": basic},
        ],
        "v2/oauth2/token/validate": [
            {"token": tokens["refresh_token"], "client_id": TUTORIAL_CLIENT_ID},
        ],
        "v2/oauth2/token/revoke": [{"token": client_token, "@Authorization": basic}],
        "v2/oauth2/userinfo": [{"@Authorization": user_bearer}],
        "v2/oauth2/authorize": [{**query, "@Cookie": both_cookies}],
        "v2/web/login": [
            {"csrf_token": csrf, "authorize": authorize, "username": user.username,
             "password": user.password, "@Cookie": f"isthmus_csrf={csrf}"},
            {"csrf_token": csrf, "next": "v2/web/account/sessions", "username": user.username,
             "password": user.password, "@Cookie": f"isthmus_csrf={csrf}"},
        ],
        "v2/web/consent": [
            {"csrf_token": csrf, "authorize": authorize, "decision": "allow",
             "@Cookie": both_cookies},
        ],
        "v2/web/auth-code": [{"code": spare_code, "state": "_default"}],
        "v2/web/oidc/start": [
            {"csrf_token": csrf, "provider": provider, "purpose": purpose, "authorize": authorize,
             "@Cookie": both_cookies}
            for purpose in ("authorize", "account", "link")
        ],
        "v2/web/oidc/callback": [
            {"state": secrets.token_urlsafe(32), "code": spare_code, "@Cookie": both_cookies},
            {"state": secrets.token_urlsafe(32), "error": "access_denied",
             "@Cookie": both_cookies},
        ],
        "v2/web/account": [{"done": "linked", "identity": user.id, "@Cookie": both_cookies}],
        "v2/web/login/mfa": [
            {"csrf_token": pending_csrf, "code": code, "@Cookie": pending},
            {"csrf_token": pending_csrf, "code": authenticator.recovery_code(),
             "@Cookie": pending},
        ],
        "v2/web/account/login": [{"@Cookie": both_cookies}, {}],
        "v2/web/account/mfa": [
            {"csrf_token": csrf, "action": action, "next": "v2/web/account",
             "@Cookie": both_cookies}
            for action in ("start", "confirm", "disable")
        ],
        "v2/web/account/sessions": [{"@Cookie": both_cookies}],
        "v2/web/account/consents": [{"@Cookie": both_cookies}],
        "v2/web/account/sessions/end": [
            {"csrf_token": csrf, "session_id": str(uuid.uuid4()), "@Cookie": both_cookies},
        ],
        "v2/web/account/consents/revoke": [
            {"csrf_token": csrf, "consent_id": "999999", "@Cookie": both_cookies},
        ],
        "v2/web/account/link": [
            {"csrf_token": csrf, "username": second.username, "password": second.password,
             "@Cookie": both_cookies},
        ],
        "v2/web/account/unlink": [
            {"csrf_token": csrf, "identity": second.id, "@Cookie": both_cookies},
            {"csrf_token": csrf, "identity": user.id, "@Cookie": both_cookies},
        ],
        "v2/web/developer": [{"done": "project_created", "@Cookie": both_cookies}],
        "v2/web/developer/projects": [
            {"csrf_token": csrf, "display_name": "Fuzzed", "contact_email": "f@example.org",
             "@Cookie": both_cookies},
        ],
        "v2/api/clients": [{"template_id": CLI_TEMPLATE_ID, "name": "Fuzzed app"}],
        "v2/api/identities": [
            {"usernames": user.username, "@Authorization": user_bearer},
            {"ids": user.id, "@Authorization": user_bearer},
        ],
        "v2/api/identities/{identity}/consents": [
            {"all": "False", "@identity": user.id, "@Authorization": user_bearer},
        ],
    }
    return known


# --- strategies --------------------------------------------------------------------------

SCOPE_NAMES = ["openid", "profile", "email", TRANSFER_ALL,
               f"https://auth.globus.org/scopes/{uuid.UUID(int=7)}/data_access",
               "urn:globus:auth:scope:auth.globus.org:view_identity_set"]
scope_strings = st.lists(
    st.tuples(st.sampled_from(SCOPE_NAMES) | st.text(min_size=1, max_size=8),
              st.sampled_from([" ", "[", "]", "*", "] ", " *", "[*", "]]", ""])),
    max_size=6,
).map(lambda parts: "".join(name + separator for name, separator in parts))
# Characters that break naive code: NUL (PostgreSQL text refuses it), other controls,
# separators of forms, URLs and scope strings, and non-BMP and odd Unicode.
NASTY = ["\x00"] * 6 + [
    "\x01", "\x1f", "\x7f", "\x85", "\u2028", "\ufeff", "\U0010ffff",
    "%", "%00", "%ff", "&", "=", "+", "[", "]", "*", " ", "\t", "\n", "/",
]
# Strings JSON can carry but UTF-8 (and so a database or a response) cannot.
LONE_SURROGATES = ["\ud800", "x\udfffx"]
# What requests can put in a header: latin-1, no control characters, no edge spaces.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=["Cc"]),
    max_size=60,
).map(str.strip)
header_names = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"),
    min_size=1, max_size=20,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from(LONE_SURROGATES),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
JSON_FIELDS = ("name", "template_id", "redirect_uris", "public_client")
JSON_BODIES = [b"[" * 5000 + b"]" * 5000, b'{"client": ' * 3000 + b"{}" + b"}" * 3000,
               b'{"client": {"name": NaN}}', b"\xef\xbb\xbf{}", b"{", b"null", b""]


def _splice(value: str, nasty: str, at: int) -> str:
    at = min(at, len(value))
    return value[:at] + nasty + value[at:]


def any_value(known: Known) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(known.values),
        st.builds(_splice, st.sampled_from(known.values), st.sampled_from(NASTY),
                  st.integers(min_value=0, max_value=64)),
        st.text(max_size=40),
        scope_strings,
        st.binary(max_size=24).map(lambda raw: raw.decode("latin-1")),
    )


def rarely(label: str, data: st.DataObject) -> bool:
    """True one time in eight: mutations that end a request early must not drown the rest."""
    return data.draw(st.sampled_from([False] * 7 + [True]), label=label)


@dataclass
class Drawn:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


def draw_request(data: st.DataObject, route: Route, known: Known) -> Drawn:
    method = data.draw(st.sampled_from(route.methods), label="method")
    if rarely("other method", data):
        method = data.draw(st.sampled_from(METHODS), label="other method")
    bases = known.valid.get(route.path, [])
    base: dict[str, Any] = {}
    if bases and not rarely("from nothing", data):
        base = data.draw(st.sampled_from(bases), label="valid base")
    # "@name" entries of a valid base are headers (and the path's identity), not parameters.
    meta = {key[1:]: value for key, value in base.items() if key.startswith("@")}
    params = {key: value for key, value in base.items() if not key.startswith("@")}

    # A few mutations: drop a parameter, then set some. Mostly the valid request's own
    # parameters, often by splicing a nasty character into the value that worked, so the
    # request gets past the checks in front of the logic that stores or looks it up.
    if params and rarely("drop", data):
        params.pop(data.draw(st.sampled_from(sorted(params)), label="dropped"))
    others = sorted({*route.fields, *(JSON_FIELDS if route.body == "json" else ())})
    values: st.SearchStrategy[Any] = any_value(known)
    if route.body == "json":
        values = st.one_of(values, json_values)
    for _ in range(data.draw(st.integers(min_value=0, max_value=3), label="changes")):
        if params and data.draw(st.sampled_from([True, True, True, False]), label="own"):
            name = data.draw(st.sampled_from(sorted(params)), label="name")
        elif others and not rarely("new name", data):
            name = data.draw(st.sampled_from(others), label="name")
        else:
            name = data.draw(st.text(max_size=8), label="new name")
        current = params.get(name)
        if isinstance(current, str) and data.draw(st.booleans(), label="splice"):
            params[name] = _splice(current, data.draw(st.sampled_from(NASTY), label="nasty"),
                                   data.draw(st.integers(0, len(current)), label="at"))
        else:
            params[name] = data.draw(values, label=f"value of {name}")

    headers: dict[str, str] = {}
    natural = {"form": FORM, "json": "application/json"}
    for name, choices in known.headers.items():
        # What the request would carry anyway, unless this header is mutated.
        value = natural.get(route.body) if name == "Content-Type" else meta.get(name)
        if rarely(f"mutate {name}", data):
            value = data.draw(st.none() | st.sampled_from(choices) | header_text, label=name)
        if value is not None:
            headers[name] = value
    if rarely("extra headers", data):
        headers.update(data.draw(st.dictionaries(header_names, header_text, max_size=3),
                                 label="extra headers"))
    identity = meta.get("identity")
    if identity is None or rarely("other identity", data):
        identity = data.draw(st.sampled_from([str(uuid.uuid4()), known.identity_id])
                             | st.text(max_size=20), label="identity")

    pairs = list(params.items())
    if pairs and rarely("duplicate", data):
        pairs.append(data.draw(st.sampled_from(pairs), label="duplicated"))
    raw: bytes | None = None
    if rarely("raw body", data):
        raws = st.binary(max_size=200)
        if route.body == "json":
            raws = raws | st.sampled_from(JSON_BODIES)
        raw = data.draw(raws, label="raw")
    body: bytes | None = None
    query = ""
    if route.body == "query":
        query = quote_from_bytes(raw, safe="=&") if raw is not None else urlencode(pairs)
    elif route.body == "form":
        body = raw if raw is not None else urlencode(pairs).encode()
    else:
        document: Any = {"client": dict(pairs)}
        if rarely("other document", data):
            document = data.draw(json_values, label="document")
        # ensure_ascii escapes lone surrogates, so they reach the server as valid JSON.
        body = raw if raw is not None else json.dumps(document).encode()
    if route.body != "json" and rarely("json instead", data):
        # What a client that ignores RFC 6749 3.2 would send: the parameters as JSON.
        body = json.dumps(data.draw(st.just(dict(pairs)) | json_values, label="json")).encode()
        headers["Content-Type"] = "application/json"
    if route.body != "query" and rarely("query too", data):
        query = urlencode(data.draw(st.dictionaries(st.text(max_size=8), any_value(known),
                                                    max_size=3), label="query"))
    path = route.path.replace("{identity}", quote(identity, safe=""))
    url = known.server.base_url + path + ("?" + query if query else "")
    return Drawn(method, url, headers, body)


# --- the property ------------------------------------------------------------------------


def check(route: Route, drawn: Drawn, response: requests.Response) -> None:
    where = f"{drawn.method} {drawn.url[:2000]} headers={drawn.headers} body={drawn.body!r:.2000}"
    assert response.status_code < 500, f"{response.status_code} for {where}: {response.text}"
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    if drawn.method == "HEAD" or response.status_code in (204, 304):
        return
    if response.status_code in (301, 302, 303, 307, 308):
        assert not route.answers_json or response.status_code == 307, where
        assert response.headers["Location"], where
        return
    if route.answers_json or content_type == "application/json":
        assert content_type == "application/json", f"{content_type!r} for {where}"
        body = response.json()
        if response.status_code >= 400:
            assert body["error"] and body["error_description"], where
            (entry,) = body["errors"]
            assert entry["status"] == str(response.status_code), where
            assert {"code", "id", "title", "detail"} <= set(entry), where
    else:
        assert content_type == "text/html", f"{content_type!r} for {where}"


@pytest.mark.parametrize("route", ROUTES, ids=[route.path for route in ROUTES])
def test_no_input_makes_a_route_answer_5xx(known: Known, route: Route) -> None:
    http = requests.Session()
    http.verify = known.server.ca_file
    http.trust_env = False

    @FUZZ
    @given(data=st.data())
    def property_(data: st.DataObject) -> None:
        drawn = draw_request(data, route, known)
        response = http.request(drawn.method, drawn.url, headers=drawn.headers, data=drawn.body,
                                allow_redirects=False, timeout=30)
        check(route, drawn, response)

    try:
        property_()
    finally:
        http.close()
