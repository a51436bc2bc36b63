"""The account pages for sign-in security: two-factor authentication, browser sessions
and consents. (The second-factor step of a login is `login_pages`'.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.auth import consents, identities, mfa, sessions, throttle, tokens
from isthmus.auth.api import service
from isthmus.auth.models import BrowserSession, Client, Consent, Identity
from isthmus.auth.pages import SESSION_COOKIE, PageResult, _check_csrf, _run, client_address
from isthmus.auth.sign_in import local_next, login_url
from isthmus.core.db import utcnow
from isthmus.core.http import read_form

router = APIRouter()

MFA_PAGE = "v2/web/account/mfa"
SESSIONS_PAGE = "v2/web/account/sessions"
CONSENTS_PAGE = "v2/web/account/consents"
# Turning two-factor authentication on or off needs a password login this recent,
# so a browser left signed in is not enough to take over someone's second factor.
RECENT_LOGIN = timedelta(minutes=15)


# --- who is signed in ------------------------------------------------------------------


@dataclass
class SignedIn:
    browser_session: BrowserSession
    identity: Identity
    # The person's linked identities (the signed-in one first): what they own.
    identity_ids: list[uuid.UUID]


def _signed_in(session: Session, cookie: str | None) -> SignedIn | None:
    found = sessions.signed_in(session, cookie)
    if found is None:
        return None
    browser_session, identity = found
    linked = [member.id for member in identities.identity_set(session, identity)]
    return SignedIn(browser_session, identity, linked)


def _to_login(request: Request, page: str) -> PageResult:
    """Send the visitor to log in, and back to this page (with its query) afterwards."""
    query = request.url.query
    back = f"{page}?{query}" if query else page
    return PageResult(redirect=login_url(service(request).settings.public_url, back))


def _recently_logged_in(signed_in: SignedIn) -> bool:
    return any(
        auth.identity_id == signed_in.identity.id and auth.auth_time >= utcnow() - RECENT_LOGIN
        for auth in signed_in.browser_session.authentications
    )


def _account_page(template: str, signed_in: SignedIn, **context: Any) -> PageResult:
    return PageResult(template=template, context={
        "username": signed_in.identity.username, **context,
    })


# --- two-factor authentication ---------------------------------------------------------


def _qr_svg(uri: str) -> str:
    import segno  # only an enrolment needs it; importing it costs every start ~0.1 s

    return str(segno.make(uri, error="m").svg_data_uri(scale=4, border=2))


def _mfa_state(session: Session, signed_in: SignedIn, next_path: str,
               **context: Any) -> PageResult:
    found = mfa.credential(session, signed_in.identity.id)
    state = "on" if found and found.enabled else "pending" if found else "off"
    return _account_page(
        "account_mfa.html", signed_in, state=state, next=next_path, action=f"/{MFA_PAGE}",
        enabled_at=found.enabled_at if found and found.enabled else None,
        recovery_left=mfa.recovery_codes_left(session, signed_in.identity.id),
        **context,
    )


@router.get("/v2/web/account/mfa")
async def mfa_page(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    next_path = local_next(request.query_params.get("next", ""),
                           service(request).settings.site_path)

    def work(session: Session) -> PageResult:
        signed_in = _signed_in(session, cookie)
        if signed_in is None or not _recently_logged_in(signed_in):
            return _to_login(request, MFA_PAGE)
        return _mfa_state(session, signed_in, next_path)

    return await _run(request, work)


@router.post("/v2/web/account/mfa")
async def mfa_change(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    box = service(request).secret_box
    action = form.get("action", "")
    code = form.get("code", "")
    next_path = local_next(form.get("next", ""), service(request).settings.site_path)
    address = client_address(request)

    def work(session: Session) -> PageResult:
        signed_in = _signed_in(session, cookie)
        if signed_in is None or not _recently_logged_in(signed_in):
            return _to_login(request, MFA_PAGE)
        identity = signed_in.identity
        if action == "start":
            enrolment = mfa.begin_enrolment(session, box, identity)
            return _mfa_state(session, signed_in, next_path, secret=enrolment.secret,
                              uri=enrolment.uri, qr=_qr_svg(enrolment.uri))
        if action not in ("confirm", "disable"):
            result = _mfa_state(session, signed_in, next_path, error="Unknown action.")
            result.status = 400
            return result
        locked = throttle.check(session, identity.username, address)
        if locked is not None:
            result = _mfa_state(session, signed_in, next_path, error=locked.message)
            result.status = 429
            return result
        now = utcnow()
        if action == "confirm":
            codes = mfa.confirm_enrolment(session, box, identity.id, code, now)
            if codes is not None:
                mfa.mark_session_mfa(session, signed_in.browser_session.id, identity.id)
                return _mfa_state(session, signed_in, next_path, recovery_codes=codes)
        elif mfa.disable(session, box, identity.id, code, now):
            return _mfa_state(session, signed_in, next_path, disabled=True)
        throttle.record_failure(session, identity.username, address)
        result = _mfa_state(session, signed_in, next_path,
                            error="That code is not valid, or has been used already.")
        result.status = 401
        return result

    return await _run(request, work)


# --- browser sessions ------------------------------------------------------------------


def _session_rows(session: Session, signed_in: SignedIn) -> list[dict[str, Any]]:
    rows = []
    for browser_session in sessions.list_for(session, signed_in.identity_ids):
        ids = [auth.identity_id for auth in browser_session.authentications]
        names = dict(session.execute(
            select(Identity.id, Identity.username).where(Identity.id.in_(ids))
        ).tuples().all())
        rows.append({
            "id": str(browser_session.id),
            "created": browser_session.created,
            "expires_at": browser_session.expires_at,
            "current": browser_session.id == signed_in.browser_session.id,
            "authentications": [
                {"username": names.get(auth.identity_id, str(auth.identity_id)),
                 "auth_time": auth.auth_time, "mfa": auth.mfa}
                for auth in sorted(browser_session.authentications,
                                   key=lambda auth: auth.auth_time, reverse=True)
            ],
        })
    return rows


@router.get("/v2/web/account/sessions")
async def sessions_page(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)

    def work(session: Session) -> PageResult:
        signed_in = _signed_in(session, cookie)
        if signed_in is None:
            return _to_login(request, SESSIONS_PAGE)
        return _account_page("account_sessions.html", signed_in,
                             sessions=_session_rows(session, signed_in),
                             action=f"/{SESSIONS_PAGE}/end")

    return await _run(request, work)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@router.post("/v2/web/account/sessions/end")
async def end_session(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    base = service(request).settings.public_url
    target = _uuid(form.get("session_id", ""))

    def work(session: Session) -> PageResult:
        signed_in = _signed_in(session, cookie)
        if signed_in is None:
            return _to_login(request, SESSIONS_PAGE)
        found = sessions.find_owned(session, target, signed_in.identity_ids) if target else None
        if found is None:
            return PageResult(template="error.html", status=404,
                              context={"message": "No such session: it may have ended already."})
        sessions.logout(session, found)
        if found.id == signed_in.browser_session.id:
            result = PageResult(template="logout.html", context={"logged_out": True})
            result.delete_cookies.append(SESSION_COOKIE)
            return result
        return PageResult(redirect=base + SESSIONS_PAGE)

    return await _run(request, work)


# --- consents --------------------------------------------------------------------------


def _consent_forest(session: Session, signed_in: SignedIn) -> list[dict[str, Any]]:
    rows = [row for identity_id in signed_in.identity_ids
            for row in consents.list_for(session, identity_id)]
    client_ids = {row.client_id for row in rows}
    names = dict(session.execute(
        select(Client.id, Client.name).where(Client.id.in_(client_ids))
    ).tuples().all()) if client_ids else {}
    nodes: dict[int, dict[str, Any]] = {
        row.id: {"id": row.id, "client_name": names.get(row.client_id, str(row.client_id)),
                 "scope_name": row.scope.name, "scope_string": row.scope.scope_string,
                 "created": row.created, "last_used": row.last_used, "children": []}
        for row in rows
    }
    roots = []
    for row in rows:
        parent = nodes.get(row.parent_id) if row.parent_id is not None else None
        if parent is not None:
            parent["children"].append(nodes[row.id])
        else:
            roots.append(nodes[row.id])
    return roots


@router.get("/v2/web/account/consents")
async def consents_page(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)

    def work(session: Session) -> PageResult:
        signed_in = _signed_in(session, cookie)
        if signed_in is None:
            return _to_login(request, CONSENTS_PAGE)
        return _account_page("account_consents.html", signed_in,
                             consents=_consent_forest(session, signed_in),
                             action=f"/{CONSENTS_PAGE}/revoke")

    return await _run(request, work)


@router.post("/v2/web/account/consents/revoke")
async def revoke_consent(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    base = service(request).settings.public_url
    raw_id = form.get("consent_id", "")
    consent_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 18 else 0

    def work(session: Session) -> PageResult:
        signed_in = _signed_in(session, cookie)
        if signed_in is None:
            return _to_login(request, CONSENTS_PAGE)
        found = session.get(Consent, consent_id) if consent_id else None
        if found is None or found.identity_id not in signed_in.identity_ids:
            return PageResult(template="error.html", status=404, context={
                "message": "No such consent: it may have been revoked already."})
        for row in consents.revoke(session, found):
            # Tokens minted under the consent stop working with it.
            tokens.revoke_carrying(session, row.client_id, row.identity_id,
                                   row.scope.scope_string)
        return PageResult(redirect=base + CONSENTS_PAGE)

    return await _run(request, work)
