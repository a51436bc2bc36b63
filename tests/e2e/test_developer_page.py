"""The developer page: a user manages projects, clients, secrets and scopes with HTML forms.

A Browser fills in the forms as a user would; what the forms did is checked
through the official SDK (the management API with a manage_projects token, and
a client-credentials login with the secret the page showed).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from urllib.parse import quote

import globus_sdk
import pytest
import requests

from tests.browser import Browser, Form, find_form, parse_form, parse_links
from tests.conftest import User, _new_user
from tests.e2e.helpers import MANAGE, TRANSFER_ALL, auth_client_for
from tests.e2e.security_helpers import enrol
from tests.live import LiveServer

DEVELOPER = "v2/web/developer"


def sign_in(server: LiveServer, browser: Browser, user: User,
            second_factor: Callable[[], str] | None = None) -> requests.Response:
    """Open the developer page, get sent to the site's sign-in, and come back to it (after
    the second factor when ``second_factor`` gives the codes); returns the page."""
    first = browser.open(server.base_url + DEVELOPER)
    assert first.status_code == 303
    assert first.headers["Location"] == (
        server.base_url + "v2/web/login?next=" + quote("/" + DEVELOPER, safe="")
    )
    login = browser.follow(first)
    assert login.status_code == 200
    assert "Log in to your Isthmus account" in login.text
    form = parse_form(login.text)
    assert form.fields["next"] == DEVELOPER  # kept relative to the base URL
    assert {"Username", "Password"} <= set(form.labels)
    signed_in = browser.submit(login.url, form, username=user.username, password=user.password)
    if second_factor is not None:
        assert signed_in.status_code == 200, signed_in.text[:2000]
        asked = parse_form(signed_in.text)
        assert "code" in asked.fields, signed_in.text[:2000]
        assert "isthmus_session" not in browser.http.cookies  # not signed in on a password
        signed_in = browser.submit(login.url, asked, code=second_factor())
    assert signed_in.status_code == 303, signed_in.text[:2000]
    assert signed_in.headers["Location"] == server.base_url + DEVELOPER
    page = browser.follow(signed_in)
    assert page.status_code == 200
    assert user.username in page.text
    return page


def act(browser: Browser, page: requests.Response, form_id: str,
        **values: str) -> requests.Response:
    """Submit a form whose success redirects back to the page; returns the new page."""
    response = browser.submit_form(page, form_id, **values)
    assert response.status_code == 303, response.text[:3000]
    after = browser.follow(response)
    assert after.status_code == 200
    return after


def refused(browser: Browser, page: requests.Response, form_id: str, status: int,
            message: str, **values: str) -> requests.Response:
    """Submit a form the rules refuse: the page comes back with the API's message."""
    response = browser.submit_form(page, form_id, **values)
    assert response.status_code == status, response.text[:3000]
    assert response.headers["Content-Type"].startswith("text/html")
    assert message in html.unescape(response.text), response.text[:3000]
    return response


def shown_secret(response: requests.Response) -> str:
    assert response.status_code == 200, response.text[:3000]
    start = response.text.index('id="client-secret">') + len('id="client-secret">')
    return response.text[start:response.text.index("</code>", start)].strip()


def csrf_of(browser: Browser) -> str:
    return str(browser.http.cookies["isthmus_csrf"])


def test_manage_a_project_through_the_page(sdk_env: LiveServer, user: User) -> None:
    browser = Browser(sdk_env.ca_file)
    page = sign_in(sdk_env, browser, user)
    assert "You administer no projects yet." in page.text
    admin = auth_client_for(sdk_env, user, f"openid {MANAGE}")

    page = act(browser, page, "create-project", display_name="Lab portal",
               contact_email="lab@example.org")
    assert "Project created." in page.text
    (project,) = admin.get_projects()
    assert project["display_name"] == "Lab portal"
    assert project["contact_email"] == "lab@example.org"
    assert project["admin_ids"] == [user.id]
    pid = project["id"]

    # Bad input comes back as the API's message on the page, never a 500.
    refused(browser, page, f"create-client-{pid}", 400, "Invalid redirect URI",
            name="Broken", redirect_uris="ftp://example.org/cb")
    refused(browser, page, "create-project", 400, "display_name must be a non-empty string",
            display_name=" ", contact_email="lab@example.org")

    page = act(browser, page, f"create-client-{pid}", name="Portal",
               client_type="confidential_client",
               redirect_uris="https://portal.example.org/cb\r\nhttps://portal.example.org/cb2\r\n")
    page = act(browser, page, f"create-client-{pid}", name="Command line",
               client_type="public_installed_client", redirect_uris="")
    by_name = {client["name"]: client for client in admin.get_clients()}
    portal, native = by_name["Portal"], by_name["Command line"]
    assert portal["client_type"] == "confidential_client"
    assert portal["project"] == pid
    assert portal["redirect_uris"] == ["https://portal.example.org/cb",
                                       "https://portal.example.org/cb2"]
    assert native["public_client"] is True
    # A native app has neither secrets nor scopes of its own: the page offers neither.
    assert f'id="create-credential-{native["id"]}"' not in page.text
    assert f'id="create-scope-{native["id"]}"' not in page.text

    result = browser.submit_form(page, f"create-credential-{portal['id']}", name="ci")
    secret = shown_secret(result)
    assert result.headers["Cache-Control"] == "no-store"
    (credential,) = admin.get_client_credentials(portal["id"])
    assert credential["name"] == "ci"
    assert credential["secret"] is None
    confidential = globus_sdk.ConfidentialAppAuthClient(portal["id"], secret)
    tokens = confidential.oauth2_client_credentials_tokens(requested_scopes="openid")
    assert tokens.by_resource_server["auth.globus.org"]["access_token"]
    page = browser.open(sdk_env.base_url + DEVELOPER)
    assert credential["id"] in page.text
    assert secret not in page.text  # shown once, never again

    transfer = next(iter(admin.get_scopes(scope_strings=[TRANSFER_ALL])))
    page = act(browser, page, f"create-scope-{portal['id']}", scope_suffix="portal_access",
               name="Portal access", description="Use the portal",
               dependent_scopes=f"*{TRANSFER_ALL}\n")
    scope_string = f"https://auth.globus.org/scopes/{portal['id']}/portal_access"
    (scope,) = admin.get_scopes(scope_strings=[scope_string])
    assert scope["name"] == "Portal access"
    assert scope["description"] == "Use the portal"
    assert scope["dependent_scopes"] == [
        {"scope": transfer["id"], "optional": True, "requires_refresh_token": False}
    ]
    assert scope_string in page.text
    refused(browser, page, f"create-scope-{portal['id']}", 409, "already exists",
            scope_suffix="portal_access", name="Again", description="Duplicate suffix")
    refused(browser, page, f"create-scope-{portal['id']}", 400, "Unknown dependent scope",
            scope_suffix="other", name="Other", description="Other",
            dependent_scopes="https://auth.globus.org/scopes/nowhere/all")

    # The API's rule, in the API's words: a project with clients stays.
    refused(browser, page, f"delete-project-{pid}", 409,
            "This project still has clients: delete them before the project")
    assert admin.get_project(pid)["project"]["id"] == pid

    page = act(browser, page, f"delete-credential-{credential['id']}")
    assert "Client secret deleted" in page.text
    assert list(admin.get_client_credentials(portal["id"])) == []
    with pytest.raises(globus_sdk.AuthAPIError) as revoked:
        confidential.oauth2_client_credentials_tokens(requested_scopes="openid")
    assert revoked.value.http_status == 401

    page = act(browser, page, f"delete-scope-{scope['id']}")
    assert list(admin.get_scopes(scope_strings=[scope_string])) == []
    page = act(browser, page, f"delete-client-{portal['id']}")
    page = act(browser, page, f"delete-client-{native['id']}")
    assert list(admin.get_clients()) == []
    page = act(browser, page, f"delete-project-{pid}")
    assert "Project deleted." in page.text
    assert list(admin.get_projects()) == []


def test_another_user_can_neither_see_nor_change_the_project(
    sdk_env: LiveServer, user: User
) -> None:
    owner = auth_client_for(sdk_env, user, f"openid {MANAGE}")
    project = owner.create_project("Owner's lab", "owner@example.org", admin_ids=user.id)[
        "project"]
    client = owner.create_client("Owner's portal", project["id"], public_client=False)["client"]
    owned_scope = owner.create_scope(client["id"], "Owner's scope", "Owner's", "owned")["scope"]

    stranger = _new_user(sdk_env, "mallory")
    browser = Browser(sdk_env.ca_file)
    page = sign_in(sdk_env, browser, stranger)
    for secret_thing in (project["id"], client["id"], "Owner&#39;s lab", "Owner&#39;s portal"):
        assert secret_thing not in page.text

    # Forged forms, with the stranger's own session and valid CSRF token.
    def forge(path: str, status: int, **fields: str) -> None:
        form = Form(action=sdk_env.base_url + path, fields={"csrf_token": csrf_of(browser)})
        response = browser.submit(page.url, form, **fields)
        assert response.status_code == status, (path, response.text[:2000])
        assert "Owner&#39;s" not in response.text

    base = f"{DEVELOPER}/projects/{project['id']}"
    forge(f"{base}/delete", 404)
    forge(f"{base}/clients", 404, name="Sneaky", client_type="confidential_client")
    forge(f"{DEVELOPER}/clients/{client['id']}/credentials", 404, name="stolen")
    forge(f"{DEVELOPER}/clients/{client['id']}/delete", 404)
    forge(f"{DEVELOPER}/clients/{client['id']}/scopes", 404, scope_suffix="mine", name="Mine",
          description="Mine")
    forge(f"{DEVELOPER}/scopes/{owned_scope['id']}/delete", 403)

    assert owner.get_project(project["id"])["project"]["display_name"] == "Owner's lab"
    assert [c["id"] for c in owner.get_clients()] == [client["id"]]
    assert list(owner.get_client_credentials(client["id"])) == []
    assert [s["id"] for s in owner.get_scopes()] == [owned_scope["id"]]
    assert list(auth_client_for(sdk_env, stranger, f"openid {MANAGE}").get_projects()) == []


def test_forms_need_the_csrf_token_and_a_session(sdk_env: LiveServer, user: User) -> None:
    browser = Browser(sdk_env.ca_file)
    page = sign_in(sdk_env, browser, user)
    form = find_form(page.text, "create-project")
    values = {"display_name": "Forged", "contact_email": "forged@example.org"}
    without = Form(action=form.action, fields={k: v for k, v in form.fields.items()
                                               if k != "csrf_token"})
    assert browser.submit(page.url, without, **values).status_code == 403
    assert browser.submit(page.url, form, csrf_token="x" * 43, **values).status_code == 403
    # A cross-site page cannot read the cookie; without it the form's token proves nothing.
    for cookie in list(browser.http.cookies):
        if cookie.name == "isthmus_csrf":
            browser.http.cookies.clear(cookie.domain, cookie.path, cookie.name)
    assert browser.submit(page.url, form, **values).status_code == 403

    # No session (but a valid CSRF pair): sent to log in, nothing created.
    stranger = Browser(sdk_env.ca_file)
    login = stranger.follow(stranger.open(sdk_env.base_url + DEVELOPER))
    fresh = Form(action=form.action, fields={"csrf_token": csrf_of(stranger)})
    response = stranger.submit(login.url, fresh, **values)
    assert response.status_code == 303
    assert "/v2/web/login?next=" in response.headers["Location"]

    admin = auth_client_for(sdk_env, user, f"openid {MANAGE}")
    assert list(admin.get_projects()) == []


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "http:/evil.example",
    "evil.example", "/v2/web/developer\r\nSet-Cookie: x=1", "javascript:alert(1)",
    "/v2/web/developer\x00", "v2/web/developer/../../../x", "/v2/web/logout",
])
def test_sign_in_returns_only_to_this_site(
    sdk_env: LiveServer, user: User, target: str
) -> None:
    """Anything but a page of this site a sign-in may return to means the account page."""
    browser = Browser(sdk_env.ca_file)
    entry = browser.open(sdk_env.base_url + "v2/web/login?next=" + quote(target, safe=""))
    assert entry.status_code == 200
    assert parse_form(entry.text).fields["next"] == "v2/web/account"
    # A forged form fares no better: the sign-in goes to the account, nowhere else.
    login = browser.open(sdk_env.base_url + "v2/web/login?next=/" + DEVELOPER)
    form = parse_form(login.text)
    response = browser.submit(login.url, form, next=target, username=user.username,
                              password=user.password)
    if "\x00" in target:  # a form with a NUL is refused before anything else
        assert response.status_code == 400
        assert "isthmus_session" not in browser.http.cookies
        return
    assert response.status_code == 303
    assert response.headers["Location"] == sdk_env.base_url + "v2/web/account"


def test_sign_in_returns_to_the_page_asked_for(sdk_env: LiveServer, user: User) -> None:
    browser = Browser(sdk_env.ca_file)
    # The path as a browser shows it, or relative to the base URL: the same page.
    for asked in ("/v2/web/account/sessions", "v2/web/account/sessions"):
        login = browser.open(sdk_env.base_url + "v2/web/login?next=" + quote(asked, safe=""))
        assert parse_form(login.text).fields["next"] == "v2/web/account/sessions"
    form = parse_form(login.text)
    wrong = browser.submit(login.url, form, username=user.username, password="wrong")
    assert wrong.status_code == 401
    assert "Invalid username or password." in wrong.text
    assert parse_form(wrong.text).fields["next"] == "v2/web/account/sessions"
    done = browser.submit(login.url, form, username=user.username, password=user.password)
    assert done.headers["Location"] == sdk_env.base_url + "v2/web/account/sessions"
    assert user.username in browser.follow(done).text


def test_developer_sign_in_asks_for_the_second_factor(sdk_env: LiveServer) -> None:
    """The developer page signs in through the site's one sign-in: an identity with an
    authenticator is not signed in on its password alone."""
    user = _new_user(sdk_env, "mfadev")
    authenticator = enrol(sdk_env, Browser(sdk_env.ca_file), user)
    browser = Browser(sdk_env.ca_file)
    page = sign_in(sdk_env, browser, user, second_factor=authenticator.next_code)
    page = act(browser, page, "create-project", display_name="Second factor lab",
               contact_email="mfa@example.org")
    assert "Second factor lab" in page.text
    # A wrong code leaves the browser signed out: the page still sends it to log in.
    other = Browser(sdk_env.ca_file)
    login = other.follow(other.open(sdk_env.base_url + DEVELOPER))
    asked = other.submit(login.url, parse_form(login.text), username=user.username,
                         password=user.password)
    refused = other.submit(login.url, parse_form(asked.text), code=authenticator.wrong_code())
    assert refused.status_code == 401
    assert other.open(sdk_env.base_url + DEVELOPER).status_code == 303


def test_the_developer_page_is_part_of_the_account_pages(
    sdk_env: LiveServer, user: User
) -> None:
    browser = Browser(sdk_env.ca_file)
    page = sign_in(sdk_env, browser, user)
    links = parse_links(page.text)
    assert links["Developers"] == sdk_env.base_url + DEVELOPER
    assert links["Identities"] == sdk_env.base_url + "v2/web/account"
    account = browser.open(links["Identities"])
    assert account.status_code == 200
    # And back, from the account's own navigation.
    again = browser.open(parse_links(account.text)["Developers"])
    assert again.status_code == 200
    assert 'id="create-project"' in again.text
