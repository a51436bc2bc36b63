"""Property-based robustness for Groups: nothing a client sends makes a route answer 5xx.

The same approach as `test_no_server_errors` (whose strategies this reuses):
Hypothesis starts from requests that work against a live server (a real
Groups token, a real group, real identities) and mutates them: other methods,
tokens and ids, values of the wrong type, nasty characters, odd JSON. Every
answer must be JSON, and every error Groups' ``{"code": ..., "detail": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import globus_sdk
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.browser import Browser
from tests.conftest import _new_user
from tests.e2e.helpers import pointed_at
from tests.e2e.test_no_server_errors import (
    FUZZ,
    JSON_BODIES,
    METHODS,
    NASTY,
    Drawn,
    _splice,
    header_text,
    json_values,
    rarely,
)
from tests.live import LiveServer, server_on_fresh_database

pytestmark = pytest.mark.postgres

TUTORIAL_CLIENT_ID = "61338d24-54d5-408f-a10d-66c06b59f6d2"
GROUPS_ALL = "urn:globus:auth:scope:groups.api.globus.org:all"
GROUPS_VIEW = "urn:globus:auth:scope:groups.api.globus.org:view_my_groups_and_memberships"
ACTIONS = ("add", "invite", "remove", "approve", "reject", "accept", "decline", "join",
           "leave", "request_join", "change_role")


@dataclass(frozen=True)
class Route:
    path: str
    methods: tuple[str, ...]
    body: str  # "json" or "query"
    fields: tuple[str, ...] = ()


GROUP_FIELDS = ("name", "description", "parent_id", "terms_and_conditions",
                "subscription_admin_verified_id")
POLICY_FIELDS = ("is_high_assurance", "authentication_assurance_timeout", "group_visibility",
                 "group_members_visibility", "join_requests", "signup_fields")
# Deletion last: it may take the group the others need to go deep.
ROUTES = [
    Route("v2/groups/my_groups", ("GET",), "query", ("statuses",)),
    Route("v2/groups", ("POST",), "json", GROUP_FIELDS),
    Route("v2/groups/{group}", ("GET",), "query", ("include",)),
    Route("v2/groups/{group}", ("PUT",), "json", GROUP_FIELDS),
    Route("v2/groups/{group}", ("POST",), "json", ACTIONS),
    Route("v2/groups/{group}/policies", ("GET", "PUT"), "json", POLICY_FIELDS),
    Route("v2/groups/{group}/subscription_admin_verified", ("PUT",), "json",
          ("subscription_admin_verified_id",)),
    Route("v2/subscription_info/{group}", ("GET",), "query"),
    Route("v2/groups/{group}", ("DELETE",), "query"),
]


@dataclass
class Known:
    server: LiveServer
    group_id: str
    values: list[Any]
    bearers: list[str]
    valid: dict[str, list[dict[str, Any]]]


def _tokens(server: LiveServer, username: str, password: str, scopes: str) -> dict[str, Any]:
    login = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
    login.oauth2_start_flow(requested_scopes=scopes)
    browser = Browser(server.ca_file)
    location = browser.authorize(login.oauth2_get_authorize_url(), username, password)
    response = login.oauth2_exchange_code_for_tokens(browser.code_from_page(location))
    by_server: dict[str, Any] = response.by_resource_server
    return by_server


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Known]:
    tmp = tmp_path_factory.mktemp("isthmus-groups-fuzz")
    with server_on_fresh_database(tmp) as server:
        yield _collect(server)


def _collect(server: LiveServer) -> Known:
    user = _new_user(server, "fuzz")
    other = _new_user(server, "other")
    with pointed_at(server):
        tokens = _tokens(server, user.username, user.password, f"openid {GROUPS_ALL}")
        viewer = _tokens(server, user.username, user.password, GROUPS_VIEW)
        groups_token = tokens["groups.api.globus.org"]["access_token"]
        client = globus_sdk.GroupsClient(
            authorizer=globus_sdk.AccessTokenAuthorizer(groups_token))
        group_id = client.create_group({"name": "Fuzzed", "description": "x"})["id"]
        client.set_group_policies(group_id, {"join_requests": True})
    bearer = "Bearer " + groups_token
    values: list[Any] = [
        user.id, other.id, group_id, user.username, "member", "manager", "admin", "active",
        "invited", "private", "authenticated", "members", "managers", "department",
        "memberships,my_memberships,policies,allowed_actions,child_ids", "", "\x00",
        "a" * 2000, 28800, 0, -1, True, None, [], {},
    ]
    items = [{"identity_id": other.id, "role": "member"}, {"identity_id": user.id}]
    valid: dict[str, list[dict[str, Any]]] = {
        "GET v2/groups/my_groups": [{"statuses": "active,invited"}],
        "POST v2/groups": [{"name": "Made", "description": "y", "parent_id": group_id}],
        "GET v2/groups/{group}": [{"include": "memberships,policies"}],
        "PUT v2/groups/{group}": [{"name": "Renamed", "terms_and_conditions": "t"}],
        "POST v2/groups/{group}": [
            {"add": [items[0]]}, {"invite": [items[0]], "change_role": [items[0]]},
            {"leave": [items[1]]}, {"request_join": [items[1]]},
            {"remove": [items[0]], "approve": [items[0]]},
        ],
        "PUT v2/groups/{group}/policies": [
            {"group_visibility": "authenticated", "signup_fields": ["department"],
             "join_requests": True},
        ],
    }
    return Known(
        server, group_id, values,
        bearers=[bearer, "Bearer " + viewer["groups.api.globus.org"]["access_token"],
                 "Bearer " + tokens["auth.globus.org"]["access_token"], "Bearer", "Basic x",
                 bearer + "x"],
        valid=valid,
    )


def any_value(known: Known) -> st.SearchStrategy[Any]:
    strings = [value for value in known.values if isinstance(value, str)]
    return st.one_of(
        st.sampled_from(known.values),
        st.builds(_splice, st.sampled_from(strings), st.sampled_from(NASTY),
                  st.integers(min_value=0, max_value=40)),
        json_values,
        st.lists(st.fixed_dictionaries({}, optional={
            "identity_id": st.sampled_from(strings) | st.text(max_size=10),
            "role": st.sampled_from(["member", "manager", "admin", "owner"]),
            "membership_fields": json_values,
        }), max_size=3),
    )


def draw_request(data: st.DataObject, route: Route, known: Known) -> Drawn:
    method = data.draw(st.sampled_from(route.methods), label="method")
    if rarely("other method", data):
        method = data.draw(st.sampled_from(METHODS), label="other method")
    bases = known.valid.get(f"{method} {route.path}", [])
    params: dict[str, Any] = {}
    if bases and not rarely("from nothing", data):
        params = dict(data.draw(st.sampled_from(bases), label="valid base"))
    for _ in range(data.draw(st.integers(min_value=0, max_value=3), label="changes")):
        if params and data.draw(st.booleans(), label="own"):
            name = data.draw(st.sampled_from(sorted(params)), label="name")
        elif route.fields and not rarely("new name", data):
            name = data.draw(st.sampled_from(route.fields), label="name")
        else:
            name = data.draw(st.text(max_size=8), label="new name")
        current = params.get(name)
        if isinstance(current, str) and data.draw(st.booleans(), label="splice"):
            params[name] = _splice(current, data.draw(st.sampled_from(NASTY), label="nasty"),
                                   data.draw(st.integers(0, len(current)), label="at"))
        else:
            params[name] = data.draw(any_value(known), label=f"value of {name}")

    headers = {"Authorization": known.bearers[0]}
    if rarely("other token", data):
        headers["Authorization"] = data.draw(st.sampled_from(known.bearers) | header_text,
                                             label="token")
    group = known.group_id
    if rarely("other group", data):
        group = data.draw(st.uuids().map(str) | st.text(max_size=20), label="group")
    body: bytes | None = None
    query = ""
    if route.body == "query":
        # Lone surrogates go out as the invalid UTF-8 they would be: the server must cope.
        query = urlencode({key: str(value) for key, value in params.items()},
                          errors="surrogatepass")
    else:
        headers["Content-Type"] = "application/json"
        document: Any = params
        if rarely("other document", data):
            document = data.draw(json_values, label="document")
        body = json.dumps(document).encode()
        if rarely("raw body", data):
            body = data.draw(st.binary(max_size=200) | st.sampled_from(JSON_BODIES),
                             label="raw")
    path = route.path.replace("{group}", quote(group, safe=""))
    url = f"{known.server.base_url}groups/{path}" + ("?" + query if query else "")
    return Drawn(method, url, headers, body)


def check(drawn: Drawn, response: requests.Response) -> None:
    where = f"{drawn.method} {drawn.url[:2000]} headers={drawn.headers} body={drawn.body!r:.2000}"
    assert response.status_code < 500, f"{response.status_code} for {where}: {response.text}"
    if drawn.method == "HEAD":
        return
    if response.is_redirect:
        # Starlette's one redirect: a trailing slash dropped (``/v2/groups/`` -> ``/v2/groups``).
        assert response.status_code == 307 and response.headers["Location"], where
        return
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    assert content_type == "application/json", f"{content_type!r} for {where}"
    body = response.json()
    if response.status_code >= 400:
        assert set(body) == {"code", "detail"}, where
        assert isinstance(body["code"], str) and isinstance(body["detail"], str), where


@pytest.mark.parametrize("route", ROUTES,
                         ids=[f"{'-'.join(r.methods)} {r.path}" for r in ROUTES])
def test_no_input_makes_a_groups_route_answer_5xx(known: Known, route: Route) -> None:
    http = requests.Session()
    http.verify = known.server.ca_file
    http.trust_env = False

    @FUZZ
    @given(data=st.data())
    def property_(data: st.DataObject) -> None:
        drawn = draw_request(data, route, known)
        response = http.request(drawn.method, drawn.url, headers=drawn.headers,
                                data=drawn.body, allow_redirects=False, timeout=30)
        check(drawn, response)

    try:
        property_()
    finally:
        http.close()
