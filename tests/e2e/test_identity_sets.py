"""Linked identities: the account page, identity_set through the SDK, unlinking, and
``session_required_identities`` forcing the login to be made with a given identity."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urljoin

import globus_sdk
import pytest
import requests

from tests.browser import Browser, Sites, parse_form, parse_forms, parse_links, query_of
from tests.conftest import SUB_DOMAIN, UpstreamPair, User, _new_user
from tests.e2e.helpers import client_token_auth, pair_sites, pointed_at, through_upstream
from tests.live import LiveServer

WEB_REDIRECT = "https://app.example.org/callback"
VIEW_IDENTITY_SET = "urn:globus:auth:scope:auth.globus.org:view_identity_set"
SCOPES = f"openid profile email {VIEW_IDENTITY_SET}"
NAV = {
    "Multi-factor authentication": "v2/web/account/mfa",
    "Sessions": "v2/web/account/sessions",
    "Consents": "v2/web/account/consents",
    "Developers": "v2/web/developer",
}


@dataclass(frozen=True)
class Row:
    username: str
    provider: str
    primary: bool
    signed_in: bool
    unlinkable: bool


def rows(page: str) -> dict[str, Row]:
    """The identities table of the account page, by username."""
    found = {}
    for row in re.findall(r'<tr data-identity="[^"]+">(.*?)</tr>', page, re.S):
        username = html.unescape(re.search(r'class="username">([^<]+)<', row).group(1))
        found[username] = Row(
            username=username,
            provider=html.unescape(re.search(r'class="provider">([^<]*)<', row).group(1)),
            primary='class="primary"' in row,
            signed_in="(signed in)" in row,
            unlinkable=">Unlink</button>" in row,
        )
    return found


def text(response: requests.Response) -> str:
    return html.unescape(response.text)


def account_login(server: LiveServer, user: User, browser: Browser | None = None) -> Browser:
    """Open the account page without a session: it sends the browser to log in, then back."""
    browser = browser or Browser(server.ca_file)
    account = server.base_url + "v2/web/account"
    response = browser.open(account)
    assert response.status_code == 303
    login = response.headers["Location"]
    assert login == server.base_url + "v2/web/account/login"
    page = browser.open(login)
    assert page.status_code == 200
    response = browser.submit(login, parse_form(page.text), username=user.username,
                              password=user.password)
    assert response.status_code == 303, response.text[:2000]
    assert response.headers["Location"] == account
    return browser


def account_page(server: LiveServer, browser: Browser) -> requests.Response:
    page = browser.open(server.base_url + "v2/web/account")
    assert page.status_code == 200, page.text[:2000]
    return page


def link_with_password(server: LiveServer, browser: Browser, other: User) -> requests.Response:
    """Follow "Link another identity" from the account page and log in as `other`."""
    account = account_page(server, browser)
    link = urljoin(server.base_url, parse_links(account.text)["Link another identity"])
    page = browser.open(link)
    assert page.status_code == 200
    assert "Link another identity" in page.text
    return browser.submit(link, parse_form(page.text), username=other.username,
                          password=other.password)


def unlink(server: LiveServer, browser: Browser, identity_id: str) -> requests.Response:
    page = account_page(server, browser)
    (form,) = [form for form in parse_forms(page.text)
               if form.fields.get("identity") == identity_id]
    return browser.submit(server.base_url, form)


def web_app(server: LiveServer) -> globus_sdk.ConfidentialAppAuthClient:
    created = server.create_client(f"app-{uuid.uuid4().hex[:6]}", "confidential_client",
                                   WEB_REDIRECT)
    with pointed_at(server):
        app = globus_sdk.ConfidentialAppAuthClient(created["id"], created["secret"])
        app.oauth2_start_flow(WEB_REDIRECT, requested_scopes=SCOPES)
    return app


def authorize_url(server: LiveServer, app: globus_sdk.ConfidentialAppAuthClient,
                  **requirements: object) -> str:
    with pointed_at(server):
        return str(app.oauth2_get_authorize_url(**requirements))


def consent_and_exchange(
    server: LiveServer, app: globus_sdk.ConfidentialAppAuthClient, browser: Browser, url: str,
    response: requests.Response | None = None,
) -> globus_sdk.OAuthTokenResponse:
    """From a page of the authorize flow (or its URL) with a session: consent, redeem."""
    response = response if response is not None else browser.open(url)
    if response.status_code == 200:
        form = parse_form(response.text)
        assert "decision" in form.buttons.values(), response.text[:2000]
        response = browser.submit(url, form, decision="allow")
    assert response.status_code in (302, 303), response.text[:2000]
    location = response.headers["Location"]
    assert location.startswith(WEB_REDIRECT + "?"), location
    with pointed_at(server):
        return app.oauth2_exchange_code_for_tokens(query_of(location)["code"])


def auth_client(server: LiveServer, tokens: globus_sdk.OAuthTokenResponse) -> globus_sdk.AuthClient:
    token = tokens.by_resource_server["auth.globus.org"]["access_token"]
    with pointed_at(server):
        return globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))


def introspected_set(server: LiveServer, app: globus_sdk.ConfidentialAppAuthClient,
                     tokens: globus_sdk.OAuthTokenResponse) -> set[str]:
    token = tokens.by_resource_server["auth.globus.org"]["access_token"]
    with pointed_at(server):
        return set(app.oauth2_token_introspect(token, include="identity_set")["identity_set"])


def test_account_page_needs_a_session_and_returns_to_it(server: LiveServer, user: User) -> None:
    browser = account_login(server, user)
    page = account_page(server, browser)
    assert rows(page.text) == {user.username: Row(user.username, "Isthmus", primary=True,
                                                  signed_in=True, unlinkable=False)}
    links = parse_links(page.text)
    for label, path in NAV.items():
        assert links[label] == server.base_url + path
    assert links["Link another identity"] == server.base_url + "v2/web/account/link"
    # Signed in already: the login page sends the browser straight back.
    again = browser.open(server.base_url + "v2/web/account/login")
    assert again.status_code == 303
    assert again.headers["Location"] == server.base_url + "v2/web/account"


def test_link_and_unlink_show_in_userinfo_and_introspection(
    server: LiveServer, user: User
) -> None:
    other = _new_user(server, "bob")
    browser = account_login(server, user)
    linked = link_with_password(server, browser, other)
    assert linked.status_code == 303
    page = browser.open(linked.headers["Location"])
    assert f"{other.username} is now linked to your account." in text(page)
    table = rows(page.text)
    assert table[user.username].primary and not table[user.username].unlinkable
    assert table[other.username] == Row(other.username, "Isthmus", primary=False,
                                        signed_in=False, unlinkable=True)
    # Linking logged the identity in to this browser's session, beside the primary one.
    assert "(logged in this session)" in page.text

    app = web_app(server)
    tokens = consent_and_exchange(server, app, browser, authorize_url(server, app))
    auth = auth_client(server, tokens)
    with pointed_at(server):
        info = auth.userinfo()
        assert info["sub"] == user.id
        assert [member["username"] for member in info["identity_set"]] == [
            user.username, other.username]
        assert {member["sub"] for member in info["identity_set"]} == {user.id, other.id}
        shown = auth.get_identities(ids=[user.id, other.id])["identities"]
        assert {identity["username"] for identity in shown} == {user.username, other.username}
    assert introspected_set(server, app, tokens) == {user.id, other.id}

    unlinked = unlink(server, browser, other.id)
    assert unlinked.status_code == 303
    page = browser.open(unlinked.headers["Location"])
    assert "now an account of its own" in page.text
    assert list(rows(page.text)) == [user.username]
    # The identity set is read when asked, so the same token sees the change.
    with pointed_at(server):
        assert [member["username"] for member in auth.userinfo()["identity_set"]] == [
            user.username]
    assert introspected_set(server, app, tokens) == {user.id}
    # The unlinked identity is the primary identity of an account of its own.
    alone = rows(account_page(server, account_login(server, other)).text)
    assert alone == {other.username: Row(other.username, "Isthmus", primary=True,
                                         signed_in=True, unlinkable=False)}


def test_an_identity_linked_with_others_is_not_taken(server: LiveServer, user: User) -> None:
    carol, dave = _new_user(server, "carol"), _new_user(server, "dave")
    carols = account_login(server, carol)
    assert link_with_password(server, carols, dave).status_code == 303

    browser = account_login(server, user)
    refused = link_with_password(server, browser, dave)
    assert refused.status_code == 409
    assert f"{dave.username} is already linked with 1 other identity" in text(refused)
    assert list(rows(account_page(server, browser).text)) == [user.username]
    assert set(rows(account_page(server, carols).text)) == {carol.username, dave.username}

    wrong = link_with_password(server, browser, User(dave.username, "wrong", dave.id))
    assert wrong.status_code == 401
    assert "Invalid username or password." in wrong.text


def test_unlink_refusals(server: LiveServer, user: User) -> None:
    other, stranger = _new_user(server, "erin"), _new_user(server, "frank")
    browser = account_login(server, user)
    link_with_password(server, browser, other)
    page = account_page(server, browser)
    (form,) = [form for form in parse_forms(page.text) if "identity" in form.fields]
    action = form.action

    def post(identity_id: str, **extra: str) -> requests.Response:
        data = {"csrf_token": form.fields["csrf_token"], "identity": identity_id, **extra}
        return browser.http.post(action, data=data, allow_redirects=False, timeout=30)

    primary = post(user.id)
    assert primary.status_code == 400
    assert "The primary identity of an account cannot be unlinked" in primary.text
    foreign = post(stranger.id)
    assert foreign.status_code == 404
    assert "not linked to your account" in foreign.text
    assert post("not-an-id").status_code == 404
    forged = browser.http.post(action, data={"identity": other.id}, allow_redirects=False,
                               timeout=30)
    assert forged.status_code == 403
    assert set(rows(account_page(server, browser).text)) == {user.username, other.username}

    # Signed in as the linked identity: it cannot unlink itself, but sees the whole account.
    as_other = account_login(server, other)
    table = rows(account_page(server, as_other).text)
    assert table[other.username].signed_in and not table[other.username].unlinkable
    assert table[user.username].primary
    own = unlink_direct(as_other, action, other.id)
    assert own.status_code == 400
    assert f"You are signed in as {other.username}" in own.text


def unlink_direct(browser: Browser, action: str, identity_id: str) -> requests.Response:
    csrf = str(browser.http.cookies["isthmus_csrf"])
    return browser.http.post(action, data={"csrf_token": csrf, "identity": identity_id},
                             allow_redirects=False, timeout=30)


def test_session_required_identities_force_the_login(server: LiveServer, user: User) -> None:
    other = _new_user(server, "gwen")
    link_with_password(server, account_login(server, user), other)
    # Another browser whose session holds only the primary identity's login.
    browser = account_login(server, user)
    app = web_app(server)

    url = authorize_url(server, app, session_required_identities=[other.id])
    page = browser.open(url)
    assert page.status_code == 200
    assert f"This application requires you to log in as {other.username}." in page.text
    form = parse_form(page.text)
    assert form.fields["username"] == other.username

    refused = browser.submit(url, form, username=user.username, password=user.password)
    assert refused.status_code == 403
    assert f"You logged in as {user.username}, which this request does not accept." in (
        text(refused))
    response = browser.submit(url, form, username=other.username, password=other.password)
    tokens = consent_and_exchange(server, app, browser, url, response)
    assert tokens.decode_id_token()["sub"] == other.id
    token = tokens.by_resource_server["auth.globus.org"]["access_token"]
    with pointed_at(server):
        session = app.oauth2_token_introspect(token, include="session_info")["session_info"]
    assert set(session["authentications"]) == {user.id, other.id}

    # The session holds that login now: requiring either identity asks nothing more.
    for required in (other.id, user.id):
        again = browser.open(authorize_url(server, app, session_required_identities=required))
        assert again.status_code == 303
        assert "code=" in again.headers["Location"]

    unknown = browser.open(authorize_url(server, app,
                                         session_required_identities=str(uuid.uuid4())))
    assert unknown.status_code == 200
    assert "an identity that does not exist on this server" in unknown.text
    malformed = browser.open(authorize_url(server, app, session_required_identities="nope"))
    assert malformed.status_code == 303
    assert query_of(malformed.headers["Location"])["error"] == "invalid_request"


@pytest.fixture
def local_on_downstream(upstream_pair: UpstreamPair) -> User:
    return _new_user(upstream_pair.downstream, "lena")


def test_link_an_upstream_identity(upstream_pair: UpstreamPair, local_on_downstream: User) -> None:
    pair, local = upstream_pair, local_on_downstream
    person = _new_user(pair.upstream, "uli")
    upstream_name = f"{person.id}@{SUB_DOMAIN}"
    downstream = pair.downstream
    sites = pair_sites(pair)
    account_login(downstream, local, sites.browser(downstream.base_url))

    link = downstream.base_url + "v2/web/account/link"
    page = sites.open(link)
    callback = through_upstream(pair, sites, link, page, "Sign in with Upstream Lab", person)
    response, url = sites.follow(sites.open(callback), callback)
    assert response.status_code == 200, response.text[:2000]
    assert url.startswith(downstream.base_url + "v2/web/account?done=linked")
    assert f"{upstream_name} is now linked to your account." in response.text
    table = rows(response.text)
    assert table[local.username].primary
    assert table[upstream_name] == Row(upstream_name, "Upstream Lab", primary=False,
                                       signed_in=False, unlinkable=True)

    app = web_app(downstream)
    tokens = consent_and_exchange(downstream, app, sites.browser(downstream.base_url),
                                  authorize_url(downstream, app))
    with pointed_at(downstream):
        members = auth_client(downstream, tokens).userinfo()["identity_set"]
    upstream_member = next(member for member in members if member["username"] == upstream_name)
    assert upstream_member["identity_provider"] == pair.provider_id
    assert upstream_member["identity_provider_display_name"] == "Upstream Lab"
    assert introspected_set(downstream, app, tokens) == {local.id, upstream_member["sub"]}

    # The account page can be reached by signing in upstream too: the same account.
    fresh = pair_sites(pair)
    login = downstream.base_url + "v2/web/account/login"
    callback = through_upstream(pair, fresh, login, fresh.open(login),
                                "Sign in with Upstream Lab", person)
    response, url = fresh.follow(fresh.open(callback), callback)
    assert url == downstream.base_url + "v2/web/account"
    assert set(rows(response.text)) == {local.username, upstream_name}

    # A session with only the local login must add the upstream one when it is required.
    required = pair_sites(pair)
    account_login(downstream, local, required.browser(downstream.base_url))
    url = authorize_url(downstream, app, session_required_identities=upstream_member["sub"])
    page = required.open(url)
    assert f"requires you to log in as {upstream_name}" in page.text
    callback = through_upstream(pair, required, url, page, "Sign in with Upstream Lab", person)
    tokens = consent_and_exchange(downstream, app, required.browser(downstream.base_url),
                                  callback)
    assert tokens.decode_id_token()["sub"] == upstream_member["sub"]


def test_a_required_identity_refuses_another_upstream_login(
    upstream_pair: UpstreamPair, local_on_downstream: User
) -> None:
    pair, local = upstream_pair, local_on_downstream
    stranger = _new_user(pair.upstream, "sven")
    app = web_app(pair.downstream)
    sites: Sites = pair_sites(pair)
    url = authorize_url(pair.downstream, app, session_required_identities=local.id)
    page = sites.open(url)
    callback = through_upstream(pair, sites, url, page, "Sign in with Upstream Lab", stranger)
    refused = sites.open(callback)
    assert refused.status_code == 403
    assert "not one this request accepts" in refused.text
    auth = client_token_auth(pair.downstream)
    with pointed_at(pair.downstream):
        assert auth.get_identities(usernames=f"{stranger.id}@{SUB_DOMAIN}")["identities"] == []
