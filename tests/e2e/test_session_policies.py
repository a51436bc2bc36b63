"""The authorize URL's session requirements on a live server: policies (high assurance,
domain constraints, required MFA), single_domain, session_required_mfa, prompt=login."""

from __future__ import annotations

import time
import uuid
from typing import Any

import globus_sdk
import pytest

from tests.browser import Browser, parse_form, query_of
from tests.conftest import User, _new_user
from tests.e2e.helpers import MANAGE, auth_client_for
from tests.e2e.security_helpers import enrol, redeem, session_info, web_app
from tests.live import LiveServer


@pytest.fixture
def admin(sdk_env: LiveServer) -> globus_sdk.AuthClient:
    return auth_client_for(sdk_env, _new_user(sdk_env, "padmin"),
                           f"openid profile email {MANAGE}")


@pytest.fixture
def project_id(admin: globus_sdk.AuthClient) -> str:
    return str(admin.create_project("Policies", "lab@example.org")["project"]["id"])


def new_policy(admin: globus_sdk.AuthClient, project_id: str, **fields: Any) -> str:
    created = admin.create_policy(project_id=project_id, display_name="Lab policy",
                                  description="for the tests", **fields)
    return str(created["policy"]["id"])


def domain_of(user: User) -> str:
    return user.username.rpartition("@")[2]


def log_in(browser: Browser, url: str, user: User) -> tuple[int, str, str]:
    """Open the authorize URL, log in if asked: (status, page, Location)."""
    response = browser.open(url)
    if response.status_code == 200 and "password" in parse_form(response.text).fields:
        response = browser.submit(url, parse_form(response.text), username=user.username,
                                  password=user.password)
    if response.status_code == 200 and "decision" in parse_form(response.text).buttons.values():
        response = browser.submit(url, parse_form(response.text), decision="allow")
    return response.status_code, response.text, response.headers.get("Location", "")


def test_unknown_or_malformed_requirements_are_clear_errors(sdk_env: LiveServer) -> None:
    client = web_app(sdk_env)
    browser = Browser(sdk_env.ca_file)
    missing = str(uuid.uuid4())
    for params, words in [
        ({"session_required_policies": missing}, f"unknown policies: {missing}"),
        ({"session_required_policies": "not-a-uuid"}, "invalid id: 'not-a-uuid'"),
        # An unknown identity is the login page's to explain (test_identity_sets).
        ({"session_required_identities": f"{missing},nope"}, "invalid id: 'nope'"),
        ({"session_required_single_domain": ",".join(f"d{n}.org" for n in range(51))},
         "may list at most 50 values"),
        ({"query_params": {"session_required_mfa": "maybe"}}, "must be True or False"),
    ]:
        answer = browser.open(client.oauth2_get_authorize_url(**params))
        assert answer.status_code == 303
        error = query_of(answer.headers["Location"])
        assert error["error"] == "invalid_request"
        assert words in error["error_description"]


def test_a_high_assurance_timeout_forces_a_new_login(
    sdk_env: LiveServer, admin: globus_sdk.AuthClient, project_id: str, user: User
) -> None:
    policy = new_policy(admin, project_id, high_assurance=True,
                        authentication_assurance_timeout=3)
    client = web_app(sdk_env)
    url = client.oauth2_get_authorize_url(session_required_policies=[policy],
                                          session_message="Protected data: log in again.")
    browser = Browser(sdk_env.ca_file)
    first = browser.open(url)
    assert "Protected data: log in again." in first.text
    status, _, location = log_in(browser, url, user)
    assert status == 303
    first_login = session_info(client, redeem(client, location))["authentications"][user.id]
    # Within the timeout the session is good enough: no login page.
    assert browser.open(url).status_code == 303
    time.sleep(3.5)
    stale = browser.open(url)
    assert stale.status_code == 200
    assert "password" in parse_form(stale.text).fields
    assert "requires that you have logged in within the last 3 seconds" in stale.text
    assert f'value="{user.username}"' in stale.text
    status, _, location = log_in(browser, url, user)
    assert status == 303
    again = session_info(client, redeem(client, location))["authentications"][user.id]
    assert again["auth_time"] > first_login["auth_time"]


def test_domain_constraints_decide_which_identities_satisfy_a_policy(
    sdk_env: LiveServer, admin: globus_sdk.AuthClient, project_id: str, user: User
) -> None:
    domain = domain_of(user)
    suffix = domain.split(".", 1)[1]
    client = web_app(sdk_env)
    satisfied = [
        new_policy(admin, project_id, domain_constraints_include=[domain]),
        new_policy(admin, project_id, domain_constraints_include=[f"*.{suffix}"],
                   domain_constraints_exclude=["other.example.org"]),
    ]
    unsatisfied = [
        new_policy(admin, project_id, domain_constraints_include=["uni.example.edu"]),
        new_policy(admin, project_id, domain_constraints_exclude=[domain]),
        new_policy(admin, project_id, domain_constraints_include=[domain],
                   domain_constraints_exclude=[f"*.{suffix}"]),
    ]
    browser = Browser(sdk_env.ca_file)
    status, _, _ = log_in(browser, client.oauth2_get_authorize_url(
        session_required_policies=satisfied), user)
    assert status == 303
    for policy in unsatisfied:
        url = client.oauth2_get_authorize_url(session_required_policies=policy)
        status, page, _ = log_in(browser, url, user)
        # Logging in again cannot help: this identity is not one the policy accepts.
        assert status == 200
        assert "password" in parse_form(page).fields
        assert "requires a login with an identity" in page


def test_single_domain(sdk_env: LiveServer, user: User) -> None:
    client = web_app(sdk_env)
    browser = Browser(sdk_env.ca_file)
    status, _, _ = log_in(browser, client.oauth2_get_authorize_url(
        session_required_single_domain=[domain_of(user)]), user)
    assert status == 303
    url = client.oauth2_get_authorize_url(
        session_required_single_domain=["uni.example.edu", "lab.example.edu"])
    page = browser.open(url)
    assert page.status_code == 200
    assert "requires a login with an identity from uni.example.edu or lab.example.edu" \
        in page.text


def test_prompt_login_asks_again_even_with_a_session(sdk_env: LiveServer, user: User) -> None:
    client = web_app(sdk_env)
    browser = Browser(sdk_env.ca_file)
    status, _, location = log_in(browser, client.oauth2_get_authorize_url(), user)
    assert status == 303
    before = session_info(client, redeem(client, location))
    assert browser.open(client.oauth2_get_authorize_url()).status_code == 303
    url = client.oauth2_get_authorize_url(prompt="login")
    page = browser.open(url)
    assert page.status_code == 200 and "password" in parse_form(page.text).fields
    time.sleep(1.1)
    status, _, location = log_in(browser, url, user)
    assert status == 303
    after = session_info(client, redeem(client, location))
    assert after["session_id"] == before["session_id"]
    assert (after["authentications"][user.id]["auth_time"]
            > before["authentications"][user.id]["auth_time"])


def test_a_policy_requiring_mfa(
    sdk_env: LiveServer, admin: globus_sdk.AuthClient, project_id: str, user: User
) -> None:
    policy = new_policy(admin, project_id, high_assurance=True, required_mfa=True,
                        authentication_assurance_timeout=600)
    client = web_app(sdk_env)
    url = client.oauth2_get_authorize_url(session_required_policies=policy)
    # Without an authenticator: told to set one up.
    plain = Browser(sdk_env.ca_file)
    status, page, _ = log_in(plain, url, user)
    assert status == 200
    assert "\u201cLab policy\u201d requires two-factor authentication" in page
    assert "has no two-factor authentication set up yet" in page
    # With one: the code step, then straight through.
    authenticator = enrol(sdk_env, Browser(sdk_env.ca_file), user)
    location = Browser(sdk_env.ca_file).authorize(url, user.username, user.password,
                                                  second_factor=authenticator.next_code)
    assert session_info(client, redeem(client, location))["authentications"][user.id]["mfa"]
    # The earlier password-only session is not enough, and logging in there asks for a code.
    stale = plain.open(url)
    assert stale.status_code == 200
    assert "requires two-factor authentication" in stale.text
    assert "has no two-factor authentication set up yet" not in stale.text


def test_session_required_mfa_with_an_enrolled_user(sdk_env: LiveServer, user: User) -> None:
    authenticator = enrol(sdk_env, Browser(sdk_env.ca_file), user)
    client = web_app(sdk_env)
    browser = Browser(sdk_env.ca_file)
    location = browser.authorize(client.oauth2_get_authorize_url(session_required_mfa=True),
                                 user.username, user.password,
                                 second_factor=authenticator.recovery_code)
    assert session_info(client, redeem(client, location))["authentications"][user.id]["mfa"]
