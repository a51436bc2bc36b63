"""What the MFA, session-policy and account-security tests share: an authenticator app
(pyotp, not the server's own TOTP code), enrolment through the pages, web-app logins."""

from __future__ import annotations

import html
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import globus_sdk
import pyotp

from tests.browser import Browser, form_with, query_of, text_of
from tests.conftest import User
from tests.live import LiveServer

WEB_REDIRECT = "https://app.example.org/callback"
MFA_PAGE = "v2/web/account/mfa"


@dataclass
class Authenticator:
    """A phone app holding the secret, plus the recovery codes the user wrote down."""

    secret: str
    recovery_codes: list[str]
    last_step: int = 0
    used_recovery: set[str] = field(default_factory=set)

    def code_for_step(self, step: int) -> str:
        return str(pyotp.TOTP(self.secret).at(step * 30))

    def next_code(self) -> str:
        """A code of a time step not used yet, now or the next one (the server accepts one
        step either side); waits when both are used."""
        step = max(int(time.time() // 30), self.last_step + 1)
        while step > int(time.time() // 30) + 1:
            time.sleep(0.5)
        self.last_step = step
        return self.code_for_step(step)

    def wrong_code(self) -> str:
        now = int(time.time() // 30)
        valid = {self.code_for_step(step) for step in range(now - 2, now + 3)}
        return next(code for code in (f"{n:06d}" for n in range(123456, 999999, 7919))
                    if code not in valid)

    def recovery_code(self) -> str:
        code = next(code for code in self.recovery_codes if code not in self.used_recovery)
        self.used_recovery.add(code)
        return code


def enrol(server: LiveServer, browser: Browser, user: User) -> Authenticator:
    """Sign in to the MFA page, scan the secret, confirm with a code, keep the codes."""
    browser.sign_in(server.base_url, MFA_PAGE, user.username, user.password)
    return enrol_signed_in(server, browser, user.username)


def enrol_signed_in(server: LiveServer, browser: Browser, username: str) -> Authenticator:
    """`enrol`, for a browser signed in (recently) already, in whatever way."""
    url = server.base_url + MFA_PAGE
    page = browser.open(url)
    assert page.status_code == 200, page.text[:2000]
    started = browser.submit(url, form_with(page.text, action="start"))
    assert started.status_code == 200, started.text[:2000]
    secret = text_of(started.text, "totp-secret")
    uri = html.unescape(text_of(started.text, "totp-uri"))
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == secret
    assert parsed.name == username and parsed.issuer == "Isthmus"
    assert 'id="qr-code" alt="QR code for your authenticator app" src="data:image/svg+xml' \
        in started.text
    authenticator = Authenticator(secret, [])
    confirmed = browser.submit(url, form_with(started.text, action="confirm"),
                               code=authenticator.next_code())
    assert confirmed.status_code == 200, confirmed.text[:2000]
    authenticator.recovery_codes = re.findall(r"<li><code>([a-z2-7-]+)</code></li>",
                                              confirmed.text)
    assert len(authenticator.recovery_codes) == 10
    return authenticator


def web_app(server: LiveServer) -> globus_sdk.ConfidentialAppAuthClient:
    created = server.create_client(f"app-{uuid.uuid4().hex[:6]}", "confidential_client",
                                   WEB_REDIRECT)
    client = globus_sdk.ConfidentialAppAuthClient(created["id"], created["secret"])
    client.oauth2_start_flow(WEB_REDIRECT, requested_scopes="openid profile email")
    return client


def redeem(client: globus_sdk.ConfidentialAppAuthClient, location: str) -> str:
    """The auth.globus.org access token for the code in a redirect to the web app."""
    assert location.startswith(WEB_REDIRECT + "?"), location
    assert "code" in query_of(location), location
    tokens = client.oauth2_exchange_code_for_tokens(query_of(location)["code"])
    return str(tokens.by_resource_server["auth.globus.org"]["access_token"])


def session_info(client: globus_sdk.ConfidentialAppAuthClient, token: str) -> dict[str, Any]:
    info = client.oauth2_token_introspect(token, include="session_info")
    assert info["active"] is True
    return dict(info["session_info"])
