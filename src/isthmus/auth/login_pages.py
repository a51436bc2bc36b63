"""Signing in: the password forms, the second-factor step, and where a sign-in goes on.

Every way of signing in (a password here, an upstream provider in
`upstream_pages`, the sign-in that links an identity) ends in `_authenticated`:
it asks an identity with an authenticator for its code first, then records the
login in the browser session and goes on to where the sign-in was for (a
`sign_in.Destination`: an authorize request, a page of this site, or linking).
The site's own pages share one sign-in, ``/v2/web/login?next=<page>``;
``/v2/web/account/login`` is the same page returning to the account.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from isthmus.auth import authorize, mfa, sessions, throttle
from isthmus.auth.account_pages import LOGIN_PATH, complete_link, link_login_page
from isthmus.auth.api import service
from isthmus.auth.authorize import AuthorizationRequest
from isthmus.auth.models import Identity
from isthmus.auth.pages import (
    SESSION_COOKIE,
    PageResult,
    _check_csrf,
    _continue,
    _login_page,
    _run,
    client_address,
    login_page,
)
from isthmus.auth.sign_in import ACCOUNT_PAGE, LOGIN_PAGE, Destination
from isthmus.core.config import Settings
from isthmus.core.db import utcnow
from isthmus.core.errors import bad_request
from isthmus.core.http import read_form

router = APIRouter()

# A login waiting for its second factor (see `mfa.start_pending_login`).
PENDING_LOGIN_COOKIE = "isthmus_pending_login"


def site_login_page(
    session: Session, going: Destination, *, error: str | None = None, username: str = "",
    status: int = 200,
) -> PageResult:
    """The login form for this site's own pages, returning to ``going.next_path``."""
    return login_page(
        session, heading="Log in to your Isthmus account", action="/" + LOGIN_PAGE,
        purpose="account", hidden={"next": going.next_path or ACCOUNT_PAGE}, error=error,
        username=username, status=status,
    )


def second_factor_page(
    request: AuthorizationRequest | None, *, error: str | None = None, status: int = 200
) -> PageResult:
    return PageResult(template="mfa_login.html", status=status, context={
        "client_name": request.client.name if request else None,
        "session_message": request.requirements.message if request else None,
        "action": "/v2/web/login/mfa",
        "error": error,
    })


def authorize_request(
    session: Session, going: Destination, settings: Settings
) -> AuthorizationRequest | None:
    if going.purpose != "authorize":
        return None
    query = going.authorize_query or ""
    return authorize.parse_request(session, dict(parse_qsl(query)), query, settings)


def _login_form(
    session: Session, going: Destination, request: AuthorizationRequest | None,
    cookie: str | None, *, error: str, username: str, status: int,
) -> PageResult:
    """The form to sign in again with, for where the sign-in was going."""
    if request is not None:
        return _login_page(session, request, error=error, username=username, status=status)
    if going.purpose == "link":
        signed_in = sessions.signed_in(session, cookie)
        if signed_in is not None:
            return link_login_page(session, signed_in[1], error=error, username=username,
                                   status=status)
        going = Destination.page(ACCOUNT_PAGE)
    return site_login_page(session, going, error=error, username=username, status=status)


def _authenticated(
    session: Session, going: Destination, identity: Identity, cookie: str | None,
    settings: Settings, *, request: AuthorizationRequest | None = None, mfa_used: bool = False,
) -> PageResult:
    """Every way of signing in ends here, once `identity` has proved itself.

    `request` is ``going``'s authorize request when the caller has read it already.
    A login for an authorize request must be by an identity the request accepts.
    An identity with an authenticator is not signed in on its first factor: the
    login waits, server-side and bound to this browser, for a code, and the
    second-factor step comes back here with `mfa_used`.
    """
    request = request or authorize_request(session, going, settings)
    if request is not None and not request.requirements.accepts(identity.id):
        return _login_page(
            session, request, status=403,
            error=f"You logged in as {identity.username}, which this request does not accept.",
        )
    if not mfa_used and mfa.is_enabled(session, identity.id):
        result = second_factor_page(request)
        result.set_cookies[PENDING_LOGIN_COOKIE] = mfa.start_pending_login(
            session, identity.id, going, utcnow())
        return result
    # Only a complete sign-in clears the failures: a known password alone must
    # not reset the count of wrong second-factor codes.
    throttle.record_success(session, identity.username)
    if going.purpose == "link":
        return complete_link(session, settings, cookie, going, identity, mfa_used=mfa_used)
    browser_session, new_cookie = sessions.login(
        session, identity, sessions.find(session, cookie), settings.browser_session_lifetime,
        mfa=mfa_used,
    )
    if request is None:
        result = PageResult(redirect=settings.public_url + (going.next_path or ACCOUNT_PAGE))
    else:
        result = _continue(session, request, browser_session,
                           settings.authorization_code_lifetime)
    result.new_session_cookie = new_cookie
    return result


# --- the password forms ------------------------------------------------------------------


@router.get("/v2/web/login")
async def site_login(request: Request) -> Response:
    """Signing in to this site's own pages (``next``), rather than for an application.
    Shown even to a signed-in browser: some pages want a recent login."""
    going = Destination.page(request.query_params.get("next", ""),
                             service(request).settings.site_path)
    return await _run(request, lambda session: site_login_page(session, going))


@router.get("/v2/web/account/login")
async def account_login(request: Request) -> Response:
    """The account's own address for signing in: the site's login, back to the account."""
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings

    def work(session: Session) -> PageResult:
        if sessions.signed_in(session, cookie) is not None:
            return PageResult(redirect=settings.public_url + ACCOUNT_PAGE)
        return site_login_page(session, Destination.page(ACCOUNT_PAGE))

    return await _run(request, work)


@router.post("/v2/web/login")
async def password_login(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings
    query = form.get("authorize", "")
    going = (Destination.authorize(query) if query
             else Destination.page(form.get("next", ""), settings.site_path))
    username = form.get("username", "")
    password = form.get("password", "")
    address = client_address(request)

    def work(session: Session) -> PageResult:
        parsed = authorize_request(session, going, settings)
        identity = throttle.password_login(session, username, password, address)
        if isinstance(identity, throttle.LoginRefused):
            return _login_form(session, going, parsed, cookie, error=identity.message,
                               username=username, status=identity.status)
        return _authenticated(session, going, identity, cookie, settings, request=parsed)

    return await _run(request, work)


@router.post("/v2/web/account/link")
async def link_with_password(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings
    username, password = form.get("username", ""), form.get("password", "")
    address = client_address(request)

    def work(session: Session) -> PageResult:
        signed_in = sessions.signed_in(session, cookie)
        if signed_in is None:
            return PageResult(redirect=settings.public_url + LOGIN_PATH)
        holder = signed_in[1]
        joining = throttle.password_login(session, username, password, address)
        if isinstance(joining, throttle.LoginRefused):
            return link_login_page(session, holder, error=joining.message, username=username,
                                   status=joining.status)
        return _authenticated(session, Destination.link(holder.account_id), joining, cookie,
                              settings)

    return await _run(request, work)


# --- the second factor -------------------------------------------------------------------


@router.post("/v2/web/login/mfa")
async def second_factor(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    pending_cookie = request.cookies.get(PENDING_LOGIN_COOKIE)
    cookie = request.cookies.get(SESSION_COOKIE)
    auth = service(request)
    settings = auth.settings
    code = form.get("code", "")
    address = client_address(request)

    def work(session: Session) -> PageResult:
        now = utcnow()
        pending = mfa.find_pending_login(session, pending_cookie, now)
        if pending is None:
            raise bad_request("This login has expired or was started in another browser. "
                              "Go back to the application and log in again.")
        identity = session.get(Identity, pending.identity_id)
        assert identity is not None  # the pending row goes with its identity
        going = mfa.destination_of(pending)
        parsed = authorize_request(session, going, settings)
        locked = throttle.check(session, identity.username, address)
        if locked is not None:
            return second_factor_page(parsed, error=locked.message, status=429)
        if not mfa.verify(session, auth.secret_box, identity.id, code, now):
            throttle.record_failure(session, identity.username, address)
            if mfa.record_wrong_code(session, pending):
                result = _login_form(session, going, parsed, cookie, status=401,
                                     error="Too many wrong codes: log in again.",
                                     username=identity.username)
                result.delete_cookies.append(PENDING_LOGIN_COOKIE)
                return result
            return second_factor_page(
                parsed, status=401,
                error="That code is not valid, or has been used already. Wait for the next "
                      "code from your app, or use a recovery code.")
        mfa.finish_pending_login(session, pending)
        result = _authenticated(session, going, identity, cookie, settings, request=parsed,
                                mfa_used=True)
        result.delete_cookies.append(PENDING_LOGIN_COOKIE)
        return result

    return await _run(request, work)
