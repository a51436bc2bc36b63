"""Two-factor sign-in on a live server: enrolment, the code step, replay, recovery codes,
throttling, turning it off, and the session_info the SDK's introspection reports."""

from __future__ import annotations

import html
import re
from pathlib import Path

import globus_sdk
import pytest

from tests.browser import Browser, form_with, parse_form, text_of
from tests.conftest import User, _new_user
from tests.e2e.security_helpers import (
    MFA_PAGE,
    Authenticator,
    enrol,
    redeem,
    session_info,
    web_app,
)
from tests.e2e.test_oauth_errors import assert_error_page
from tests.live import LiveServer


def start_login(server: LiveServer, client: globus_sdk.ConfidentialAppAuthClient,
                user: User, **authorize: object) -> tuple[Browser, str, str]:
    """A new browser at the authorize URL that has sent the password: (browser, url, page)."""
    browser = Browser(server.ca_file)
    url = client.oauth2_get_authorize_url(**authorize)
    login = browser.open(url)
    assert login.status_code == 200
    response = browser.submit(url, parse_form(login.text), username=user.username,
                              password=user.password)
    return browser, url, response.text if response.status_code == 200 else ""


def send_code(browser: Browser, url: str, page: str, code: str) -> tuple[int, str, str]:
    """Submit a code on the second-factor page: (status, page text, redirect Location)."""
    response = browser.submit(url, parse_form(page), code=code)
    return response.status_code, response.text, response.headers.get("Location", "")


@pytest.fixture
def enrolled(server: LiveServer, user: User) -> Authenticator:
    return enrol(server, Browser(server.ca_file), user)


def test_enrolment_shows_the_secret_once_and_login_then_asks_for_a_code(
    sdk_env: LiveServer, user: User
) -> None:
    browser = Browser(sdk_env.ca_file)
    authenticator = enrol(sdk_env, browser, user)
    # The secret was shown once: the page now only says the feature is on.
    page = browser.open(sdk_env.base_url + MFA_PAGE)
    assert page.status_code == 200
    assert authenticator.secret not in page.text
    assert text_of(page.text, "recovery-left") == "10"

    client = web_app(sdk_env)
    other, url, second_step = start_login(sdk_env, client, user)
    form = parse_form(second_step)
    assert "Authentication code" in form.labels and "password" not in form.fields
    status, page_text, _ = send_code(other, url, second_step, authenticator.wrong_code())
    assert status == 401
    assert "not valid" in page_text
    status, consent, _ = send_code(other, url, page_text, authenticator.next_code())
    assert status == 200 and "decision" in parse_form(consent).buttons.values()
    location = other.submit(url, parse_form(consent), decision="allow").headers["Location"]
    token = redeem(client, location)
    authentication = session_info(client, token)["authentications"][user.id]
    assert authentication["mfa"] is True
    assert authentication["amr"] == ["mfa", "pwd"]


def test_a_code_cannot_be_replayed(
    sdk_env: LiveServer, user: User, enrolled: Authenticator
) -> None:
    client = web_app(sdk_env)
    code = enrolled.next_code()
    first, url, page = start_login(sdk_env, client, user)
    status, _, _ = send_code(first, url, page, code)
    assert status == 200  # the consent page
    second, url, page = start_login(sdk_env, client, user)
    status, text, _ = send_code(second, url, page, code)
    assert status == 401
    assert "has been used already" in text
    # The code of the step used at enrolment is refused too (it is older).
    status, _, _ = send_code(second, url, text, enrolled.code_for_step(enrolled.last_step - 1))
    assert status == 401


def test_a_recovery_code_works_once(
    sdk_env: LiveServer, user: User, enrolled: Authenticator
) -> None:
    client = web_app(sdk_env)
    code = enrolled.recovery_code()
    browser, url, page = start_login(sdk_env, client, user)
    # Typed in capitals, with spaces for the dashes: still the same code.
    status, consent, _ = send_code(browser, url, page, code.upper().replace("-", " "))
    assert status == 200 and "decision" in parse_form(consent).buttons.values()
    location = browser.submit(url, parse_form(consent), decision="allow").headers["Location"]
    assert session_info(client, redeem(client, location))["authentications"][user.id]["mfa"]

    again, url, page = start_login(sdk_env, client, user)
    status, _, _ = send_code(again, url, page, code)
    assert status == 401
    account = again.sign_in(sdk_env.base_url, MFA_PAGE, user.username, user.password,
                            second_factor=enrolled.recovery_code)
    assert text_of(account.text, "recovery-left") == "8"


def test_wrong_codes_count_towards_the_login_throttle(
    sdk_env: LiveServer, enrolled: Authenticator, user: User
) -> None:
    client = web_app(sdk_env)
    browser, url, page = start_login(sdk_env, client, user)
    for _ in range(3):
        status, page, _ = send_code(browser, url, page, enrolled.wrong_code())
        assert status == 401
    # Knowing the password does not wipe the count: a new login keeps it.
    browser, url, page = start_login(sdk_env, client, user)
    for _ in range(2):
        status, page, _ = send_code(browser, url, page, enrolled.wrong_code())
        assert status == 401
    login = Browser(sdk_env.ca_file)
    url = client.oauth2_get_authorize_url()
    locked = login.submit(url, parse_form(login.open(url).text), username=user.username,
                          password=user.password)
    assert locked.status_code == 429
    assert "Too many failed login attempts" in locked.text


def test_the_pending_login_belongs_to_its_browser(
    sdk_env: LiveServer, enrolled: Authenticator, user: User
) -> None:
    client = web_app(sdk_env)
    browser, url, page = start_login(sdk_env, client, user)
    thief = Browser(sdk_env.ca_file)
    thief.open(url)  # a CSRF cookie of its own, but not the pending login's cookie
    form = parse_form(page)
    form.fields["csrf_token"] = thief.http.cookies["isthmus_csrf"]
    stolen = thief.submit(url, form, code=enrolled.next_code())
    assert stolen.status_code == 400
    assert "expired or was started in another browser" in stolen.text
    no_csrf = browser.http.post(sdk_env.base_url + "v2/web/login/mfa",
                                data={"code": enrolled.next_code()}, allow_redirects=False)
    assert_error_page(no_csrf, "The form has expired", 403)


def test_turning_mfa_off_needs_a_current_code(
    sdk_env: LiveServer, enrolled: Authenticator, user: User
) -> None:
    browser = Browser(sdk_env.ca_file)
    page = browser.sign_in(sdk_env.base_url, MFA_PAGE, user.username, user.password,
                           second_factor=enrolled.next_code)
    url = sdk_env.base_url + MFA_PAGE
    refused = browser.submit(url, form_with(page.text, action="disable"),
                             code=enrolled.wrong_code())
    assert refused.status_code == 401
    assert "two-factor authentication is <strong>on</strong>" in refused.text.lower()
    done = browser.submit(url, form_with(refused.text, action="disable"),
                          code=enrolled.recovery_code())
    assert done.status_code == 200
    assert "Two-factor authentication is now off." in done.text
    client = web_app(sdk_env)
    _, _, page_after = start_login(sdk_env, client, user)
    assert "decision" in parse_form(page_after).buttons.values()  # straight to consent


def test_account_pages_need_a_recent_login(sdk_env: LiveServer, user: User) -> None:
    browser = Browser(sdk_env.ca_file)
    page = browser.open(sdk_env.base_url + MFA_PAGE + "?next=v2/web/account/sessions")
    assert page.status_code == 303
    assert page.headers["Location"] == (
        sdk_env.base_url + "v2/web/login?next=v2%2Fweb%2Faccount%2Fmfa%3Fnext%3Dv2%2Fweb%2F"
        "account%2Fsessions"
    )
    login = browser.open(page.headers["Location"])
    assert "Log in to your Isthmus account" in login.text
    # Only this site's own pages are places to go back to.
    evil = browser.open(sdk_env.base_url + "v2/web/login?next=https://evil.example/")
    assert 'name="next" value="v2/web/account"' in evil.text
    forged = browser.http.post(sdk_env.base_url + MFA_PAGE, data={"action": "start"},
                               allow_redirects=False)
    assert_error_page(forged, "The form has expired", 403)


def test_the_secret_is_neither_stored_in_clear_nor_logged(
    server: LiveServer, enrolled: Authenticator
) -> None:
    stored = b"".join(path.read_bytes() for path in Path(server.data_dir).glob("isthmus.db*"))
    assert enrolled.secret.encode() not in stored
    assert enrolled.secret not in server.log()
    for code in enrolled.recovery_codes:
        assert code.replace("-", "").encode() not in stored
    key = Path(server.data_dir) / "keys" / "secrets-encryption.key"
    assert key.stat().st_mode & 0o077 == 0


def test_required_mfa_without_an_authenticator_leads_to_enrolment(sdk_env: LiveServer) -> None:
    user = _new_user(sdk_env, "noauth")
    client = web_app(sdk_env)
    browser, _, page = start_login(sdk_env, client, user, session_required_mfa=True,
                                     session_message="The lab requires a second factor.")
    assert "The lab requires a second factor." in page
    assert "has no two-factor authentication set up yet" in page
    found = re.search(r'has no two-factor[^<]*<a href="([^"]+)"', page)
    assert found is not None
    enrol_url = html.unescape(found.group(1))
    assert enrol_url.startswith(sdk_env.base_url + MFA_PAGE + "?next=v2%2Foauth2%2Fauthorize")
    mfa_page = browser.open(enrol_url)
    started = browser.submit(enrol_url, form_with(mfa_page.text, action="start"))
    authenticator = Authenticator(text_of(started.text, "totp-secret"), [])
    confirmed = browser.submit(enrol_url, form_with(started.text, action="confirm"),
                               code=authenticator.next_code())
    assert "Recovery codes" in confirmed.text
    # Back to the application: the code just entered counts as this session's second factor.
    found = re.search(r'id="continue" href="([^"]+)"', confirmed.text)
    assert found is not None
    onward = html.unescape(found.group(1))
    location = browser.authorize(onward)
    assert session_info(client, redeem(client, location))["authentications"][user.id]["mfa"]


def test_an_administrator_can_reset_a_lost_authenticator(
    sdk_env: LiveServer, enrolled: Authenticator, user: User
) -> None:
    client = web_app(sdk_env)
    _, _, page = start_login(sdk_env, client, user)
    assert "code" in parse_form(page).fields
    name = user.username.partition("@")[0]
    assert "turned off" in sdk_env.run("user", "reset-mfa", name)
    _, _, page = start_login(sdk_env, client, user)
    assert "decision" in parse_form(page).buttons.values()  # no code asked for
    assert "had no two-factor authentication" in sdk_env.run("user", "reset-mfa", name)
