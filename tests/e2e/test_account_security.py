"""The account's sessions and consents pages on a live server: listing, ending a session,
revoking a consent tree and the tokens issued under it."""

from __future__ import annotations

import re

import globus_sdk

from tests.browser import Browser, form_with, parse_forms, query_of
from tests.conftest import User, _new_user
from tests.e2e.helpers import TRANSFER_ALL
from tests.e2e.security_helpers import WEB_REDIRECT, web_app
from tests.e2e.test_oauth_errors import assert_error_page
from tests.live import LiveServer

SESSIONS = "v2/web/account/sessions"
CONSENTS = "v2/web/account/consents"


def session_ids(page: str) -> list[str]:
    return [form.fields["session_id"] for form in parse_forms(page)
            if "session_id" in form.fields]


def test_sessions_are_listed_and_can_be_ended(sdk_env: LiveServer, user: User) -> None:
    client = web_app(sdk_env)
    laptop = Browser(sdk_env.ca_file)
    laptop.authorize(client.oauth2_get_authorize_url(), user.username, user.password)
    phone = Browser(sdk_env.ca_file)
    page = phone.sign_in(sdk_env.base_url, SESSIONS, user.username, user.password)
    assert page.text.count("<section class=\"session\"") == 2
    assert page.text.count("This browser") == 1 and page.text.count("Another browser") == 1
    assert page.text.count(f"<td>{user.username}</td>") == 2
    current = re.search(r'id="session-([0-9a-f-]+)">\s*<h2>This browser', page.text)
    assert current is not None
    laptop_session = next(sid for sid in session_ids(page.text) if sid != current.group(1))

    # Someone else sees only their own sessions, and cannot end others'.
    stranger = _new_user(sdk_env, "stranger")
    intruder = Browser(sdk_env.ca_file)
    theirs = intruder.sign_in(sdk_env.base_url, SESSIONS, stranger.username, stranger.password)
    assert session_ids(theirs.text) != [] and laptop_session not in session_ids(theirs.text)
    refused = intruder.submit(sdk_env.base_url + SESSIONS, form_with(theirs.text),
                              session_id=laptop_session)
    assert refused.status_code == 404
    forged = phone.http.post(sdk_env.base_url + SESSIONS + "/end",
                             data={"session_id": laptop_session}, allow_redirects=False)
    assert_error_page(forged, "The form has expired", 403)

    ended = phone.submit(sdk_env.base_url + SESSIONS,
                         form_with(page.text, session_id=laptop_session))
    assert ended.status_code == 303
    assert ended.headers["Location"] == sdk_env.base_url + SESSIONS
    # The laptop is logged out: the application's login asks for the password again.
    again = laptop.open(client.oauth2_get_authorize_url())
    assert again.status_code == 200 and "password" in parse_forms(again.text)[0].fields
    remaining = phone.open(sdk_env.base_url + SESSIONS)
    assert session_ids(remaining.text) == [current.group(1)]

    # Ending this browser's own session logs it out.
    gone = phone.submit(sdk_env.base_url + SESSIONS, form_with(remaining.text))
    assert gone.status_code == 200 and "You are logged out" in gone.text
    assert phone.open(sdk_env.base_url + SESSIONS).status_code == 303


def consent_rows(page: str) -> dict[str, tuple[str, str, bool]]:
    """scope name -> (consent id, client name, whether it is a dependent consent)."""
    found = re.findall(
        r'<div class="scope( dependent)?" id="consent-(\d+)">\s*'
        r'<div class="name"><strong>([^<]*)</strong>: ([^<]*)</div>', page)
    return {scope: (consent_id, client, bool(dependent))
            for dependent, consent_id, client, scope in found}


def test_revoking_a_consent_revokes_its_tree_and_tokens(sdk_env: LiveServer, user: User) -> None:
    service = sdk_env.create_client("Compute service", "resource_server")
    compute = sdk_env.run_json(
        "scope", "create", service["id"], "compute", "--name", "Run computations",
        "--description", "Run computations on your data", "--dependent-scope", TRANSFER_ALL,
    )
    created = sdk_env.create_client("Lab portal", "confidential_client", WEB_REDIRECT)
    portal = globus_sdk.ConfidentialAppAuthClient(created["id"], created["secret"])
    portal.oauth2_start_flow(WEB_REDIRECT, requested_scopes=f"openid email "
                             f"{compute['scope_string']}", refresh_tokens=True)
    browser = Browser(sdk_env.ca_file)
    location = browser.authorize(portal.oauth2_get_authorize_url(), user.username,
                                 user.password)
    tokens = portal.oauth2_exchange_code_for_tokens(query_of(location)["code"])
    auth_tokens = tokens.by_resource_server["auth.globus.org"]
    compute_token = tokens.by_resource_server[service["id"]]["access_token"]
    resource_server = globus_sdk.ConfidentialAppAuthClient(service["id"], service["secret"])
    dependent = resource_server.oauth2_get_dependent_tokens(
        compute_token, refresh_tokens=True).by_resource_server["transfer.api.globus.org"]

    def active(client: globus_sdk.ConfidentialAppAuthClient, token: str) -> bool:
        return bool(client.oauth2_token_introspect(token)["active"])

    page = browser.open(sdk_env.base_url + CONSENTS)
    assert page.status_code == 200
    rows = consent_rows(page.text)
    assert rows["Run computations"][1:] == ("Lab portal", False)
    assert rows["Manage data using Globus Transfer"][1:] == ("Compute service", True)

    # A dependent consent: the service's tokens for it die, the portal's do not.
    child = rows["Manage data using Globus Transfer"][0]
    revoked = browser.submit(sdk_env.base_url + CONSENTS, form_with(page.text,
                                                                    consent_id=child))
    assert revoked.status_code == 303
    assert not active(resource_server, dependent["access_token"])
    assert not active(resource_server, dependent["refresh_token"])
    assert active(portal, compute_token)
    page = browser.open(sdk_env.base_url + CONSENTS)
    assert "Manage data using Globus Transfer" not in consent_rows(page.text)

    # A root consent: every token of the portal carrying that scope dies, refresh included.
    email = next(consent_id for scope, (consent_id, client, _) in consent_rows(page.text).items()
                 if client == "Lab portal" and "email" in scope.lower())
    browser.submit(sdk_env.base_url + CONSENTS, form_with(page.text, consent_id=email))
    assert not active(portal, auth_tokens["access_token"])
    assert not active(portal, auth_tokens["refresh_token"])
    assert active(portal, compute_token)

    # Nobody else can revoke what is left, and a form without its CSRF token is refused.
    page = browser.open(sdk_env.base_url + CONSENTS)
    root = consent_rows(page.text)["Run computations"][0]
    stranger = _new_user(sdk_env, "stranger")
    intruder = Browser(sdk_env.ca_file)
    theirs = intruder.sign_in(sdk_env.base_url, CONSENTS, stranger.username, stranger.password)
    assert "No consents." in theirs.text
    intruder.open(sdk_env.base_url + SESSIONS)
    refused = intruder.http.post(sdk_env.base_url + CONSENTS + "/revoke", data={
        "consent_id": root, "csrf_token": intruder.http.cookies["isthmus_csrf"]},
        allow_redirects=False)
    assert refused.status_code == 404
    forged = browser.http.post(sdk_env.base_url + CONSENTS + "/revoke",
                               data={"consent_id": root}, allow_redirects=False)
    assert_error_page(forged, "The form has expired", 403)
    assert active(portal, compute_token)

    browser.submit(sdk_env.base_url + CONSENTS, form_with(page.text, consent_id=root))
    assert not active(portal, compute_token)
    left = consent_rows(browser.open(sdk_env.base_url + CONSENTS).text)
    assert [client for _, client, _ in left.values()] == ["Lab portal"]  # openid alone
    assert "Run computations" not in left
