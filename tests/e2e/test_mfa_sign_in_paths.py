"""Every way of signing in asks an identity with an authenticator for its code: the
account's own login, linking an identity, a login that session_required_identities
asks for, and a sign-in through an upstream provider."""

from __future__ import annotations

import globus_sdk
import pytest

from tests.browser import Browser, parse_form, parse_links, query_of
from tests.conftest import SUB_DOMAIN, UpstreamPair, User, _new_user
from tests.e2e.helpers import pair_sites, pointed_at, through_upstream
from tests.e2e.security_helpers import Authenticator, enrol, enrol_signed_in
from tests.e2e.test_identity_sets import (
    account_login,
    account_page,
    authorize_url,
    consent_and_exchange,
    link_with_password,
    rows,
    web_app,
)
from tests.live import LiveServer


def session_info(server: LiveServer, app: globus_sdk.ConfidentialAppAuthClient,
                 tokens: globus_sdk.OAuthTokenResponse) -> dict[str, dict[str, object]]:
    token = tokens.by_resource_server["auth.globus.org"]["access_token"]
    with pointed_at(server):
        info = app.oauth2_token_introspect(token, include="session_info")["session_info"]
    return dict(info["authentications"])


@pytest.fixture
def enrolled(server: LiveServer, user: User) -> Authenticator:
    return enrol(server, Browser(server.ca_file), user)


def test_the_account_login_asks_for_the_code(
    server: LiveServer, user: User, enrolled: Authenticator
) -> None:
    browser = Browser(server.ca_file)
    login = server.base_url + "v2/web/account/login"
    page = browser.open(login)
    assert page.status_code == 200
    assert parse_form(page.text).fields["next"] == "v2/web/account"
    second_step = browser.submit(login, parse_form(page.text), username=user.username,
                                 password=user.password)
    assert second_step.status_code == 200
    form = parse_form(second_step.text)
    assert "code" in form.fields and "password" not in form.fields
    # The password alone signed nobody in.
    assert browser.open(server.base_url + "v2/web/account").status_code == 303
    wrong = browser.submit(login, form, code=enrolled.wrong_code())
    assert wrong.status_code == 401
    done = browser.submit(login, parse_form(wrong.text), code=enrolled.next_code())
    assert done.status_code == 303
    assert done.headers["Location"] == server.base_url + "v2/web/account"
    assert user.username in rows(account_page(server, browser).text)


def test_linking_an_identity_with_an_authenticator_asks_for_its_code(
    server: LiveServer, user: User
) -> None:
    other = _new_user(server, "hana")
    authenticator = enrol(server, Browser(server.ca_file), other)
    browser = account_login(server, user)
    second_step = link_with_password(server, browser, other)
    assert second_step.status_code == 200
    assert "code" in parse_form(second_step.text).fields
    assert list(rows(account_page(server, browser).text)) == [user.username]  # not yet

    linked = browser.submit(server.base_url, parse_form(second_step.text),
                            code=authenticator.next_code())
    assert linked.status_code == 303
    page = browser.open(linked.headers["Location"])
    assert f"{other.username} is now linked to your account." in page.text
    assert set(rows(page.text)) == {user.username, other.username}

    # The session records the linked identity's login as made with its second factor.
    app = web_app(server)
    tokens = consent_and_exchange(server, app, browser, authorize_url(server, app))
    authentications = session_info(server, app, tokens)
    assert authentications[other.id]["mfa"] is True
    assert authentications[user.id]["mfa"] is False


def test_a_required_identity_with_an_authenticator(
    server: LiveServer, user: User, enrolled: Authenticator
) -> None:
    app = web_app(server)
    url = authorize_url(server, app, session_required_identities=user.id)
    # Another identity is refused at once, before its second factor is asked for.
    stranger = _new_user(server, "ivo")
    enrol(server, Browser(server.ca_file), stranger)
    browser = Browser(server.ca_file)
    page = browser.open(url)
    assert f"This application requires you to log in as {user.username}." in page.text
    refused = browser.submit(url, parse_form(page.text), username=stranger.username,
                             password=stranger.password)
    assert refused.status_code == 403
    assert "which this request does not accept" in refused.text

    location = browser.authorize(url, user.username, user.password,
                                 second_factor=enrolled.next_code)
    response = browser.open(url)  # the session now has what the request needs
    assert response.status_code == 303
    with pointed_at(server):
        tokens = app.oauth2_exchange_code_for_tokens(query_of(location)["code"])
    assert session_info(server, app, tokens)[user.id]["mfa"] is True


def test_an_upstream_identity_with_an_authenticator_is_asked_for_its_code(
    upstream_pair: UpstreamPair,
) -> None:
    pair, downstream = upstream_pair, upstream_pair.downstream
    person = _new_user(pair.upstream, "otto")
    username = f"{person.id}@{SUB_DOMAIN}"
    # Signed in through the upstream, the person turns on two-factor authentication here.
    sites = pair_sites(pair)
    mfa_page = downstream.base_url + "v2/web/account/mfa"
    to_login = sites.open(mfa_page)
    assert to_login.status_code == 303
    login = to_login.headers["Location"]
    callback = through_upstream(pair, sites, login, sites.open(login),
                                "Sign in with Upstream Lab", person)
    response, url = sites.follow(sites.open(callback), callback)
    assert url == mfa_page  # the sign-in returned to the page that asked for it
    assert "Multi-factor authentication" in parse_links(response.text)
    authenticator = enrol_signed_in(downstream, sites.browser(downstream.base_url), username)

    # The next sign-in through the upstream stops at the code, then goes on.
    app = web_app(downstream)
    url = authorize_url(downstream, app)
    fresh = pair_sites(pair)
    callback = through_upstream(pair, fresh, url, fresh.open(url), "Sign in with Upstream Lab",
                                person)
    second_step = fresh.open(callback)
    assert second_step.status_code == 200
    form = parse_form(second_step.text)
    assert "code" in form.fields and "password" not in form.fields
    consent = fresh.submit(callback, form, code=authenticator.next_code())
    tokens = consent_and_exchange(downstream, app, fresh.browser(url), url, consent)
    identity_id = tokens.decode_id_token()["sub"]
    assert session_info(downstream, app, tokens)[identity_id]["mfa"] is True
