"""The account page: the signed-in person's linked identities, linking and unlinking them.

Other account pages (MFA, sessions, consents, developers) hang off the same
navigation (`account_nav.html`); this module owns only the identities. Signing
in to the account, and the sign-in that links an identity, are `login_pages`'.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from isthmus.auth import identity_sets, sessions
from isthmus.auth.api import service
from isthmus.auth.models import BrowserSession, Identity
from isthmus.auth.pages import SESSION_COOKIE, PageResult, _check_csrf, _run, login_page
from isthmus.auth.sign_in import ACCOUNT_PAGE, Destination
from isthmus.core.config import Settings
from isthmus.core.errors import APIError, bad_request
from isthmus.core.http import read_form

router = APIRouter()

LOGIN_PATH = "v2/web/account/login"
LINK_PATH = "v2/web/account/link"
DONE_MESSAGES = {
    "unlinked": "The identity was unlinked; it is now an account of its own.",
    "already": "That identity is already linked to your account.",
}


def account_url(settings: Settings, **params: str) -> str:
    url = settings.public_url + ACCOUNT_PAGE
    return url + "?" + urlencode(params) if params else url


def _account_view(
    session: Session, settings: Settings, browser_session: BrowserSession, holder: Identity, *,
    notice: str | None = None, error: str | None = None, status: int = 200,
) -> PageResult:
    rows = identity_sets.members(session, holder.account_id) if holder.account_id else [holder]
    primary = rows[0].id  # members() puts the primary first
    authenticated = {auth.identity_id for auth in browser_session.authentications}
    return PageResult(template="account.html", status=status, context={
        "base": settings.public_url,
        "username": holder.username,
        "identities": [{
            "id": str(row.id),
            "username": row.username,
            "provider": row.identity_provider.name,
            "primary": row.id == primary,
            "current": row.id == holder.id,
            "in_session": row.id in authenticated,
            "unlinkable": row.id not in (primary, holder.id),
        } for row in rows],
        "unlink_action": "/v2/web/account/unlink",
        "notice": notice,
        "error": error,
    })


def _done_notice(session: Session, holder: Identity, done: str, identity_id: str) -> str | None:
    if done != "linked":
        return DONE_MESSAGES.get(done)
    try:
        linked = session.get(Identity, uuid.UUID(identity_id))
    except ValueError:
        linked = None
    if linked is None or linked.account_id is None or linked.account_id != holder.account_id:
        return "The identity was linked to your account."
    return f"{linked.username} is now linked to your account."


def link_login_page(
    session: Session, holder: Identity, *, error: str | None = None, username: str = "",
    status: int = 200,
) -> PageResult:
    return login_page(
        session, heading="Link another identity", action="/" + LINK_PATH, purpose="link",
        hidden={}, error=error, username=username, status=status,
        notices=[{"text": f"You are signed in as {holder.username}. Log in with the "
                          "identity to link to this account."}],
    )


def linking_account(
    session: Session, cookie: str | None, going: Destination
) -> tuple[BrowserSession, Identity]:
    """The browser's session and its signed-in identity, if still of the account the link
    was started from (a link comes back from a second factor or another site)."""
    signed_in = sessions.signed_in(session, cookie)
    if signed_in is None or signed_in[1].account_id != going.account_id:
        raise bad_request("Your session changed while you were away; start linking again "
                          "from your account page.")
    return signed_in


def complete_link(
    session: Session, settings: Settings, cookie: str | None, going: Destination,
    joining: Identity, *, mfa_used: bool,
) -> PageResult:
    """After `joining` proved itself in this browser: put it in the identity set of the
    account signed in here, the one the link was started from."""
    browser_session, holder = linking_account(session, cookie, going)
    try:
        changed = identity_sets.link(session, holder, joining)
    except identity_sets.LinkRefusedError as refusal:
        return _account_view(session, settings, browser_session, holder, error=refusal.message,
                             status=refusal.status)
    sessions.login(session, joining, browser_session, settings.browser_session_lifetime,
                   mfa=mfa_used, acting=False)
    if not changed:
        return PageResult(redirect=account_url(settings, done="already"))
    return PageResult(redirect=account_url(settings, done="linked", identity=str(joining.id)))


@router.get("/v2/web/account")
async def account_page(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings
    done = request.query_params.get("done", "")
    identity_param = request.query_params.get("identity", "")

    def work(session: Session) -> PageResult:
        signed_in = sessions.signed_in(session, cookie)
        if signed_in is None:
            return PageResult(redirect=settings.public_url + LOGIN_PATH)
        browser_session, holder = signed_in
        notice = _done_notice(session, holder, done, identity_param) if done else None
        return _account_view(session, settings, browser_session, holder, notice=notice)

    return await _run(request, work)


@router.get("/v2/web/account/link")
async def link_page(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings

    def work(session: Session) -> PageResult:
        signed_in = sessions.signed_in(session, cookie)
        if signed_in is None:
            return PageResult(redirect=settings.public_url + LOGIN_PATH)
        return link_login_page(session, signed_in[1])

    return await _run(request, work)


@router.post("/v2/web/account/unlink")
async def unlink(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings
    identity_field = form.get("identity", "")

    def work(session: Session) -> PageResult:
        signed_in = sessions.signed_in(session, cookie)
        if signed_in is None:
            return PageResult(redirect=settings.public_url + LOGIN_PATH)
        browser_session, holder = signed_in
        try:
            target = identity_sets.unlink(session, holder, _identity_id(identity_field))
        except APIError as refusal:  # checked before anything is written
            return _account_view(session, settings, browser_session, holder,
                                 error=refusal.message, status=refusal.status)
        sessions.forget(session, browser_session, target.id)
        return PageResult(redirect=account_url(settings, done="unlinked"))

    return await _run(request, work)


def _identity_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise APIError(404, "NOT_FOUND", "That identity is not linked to your account") from None
