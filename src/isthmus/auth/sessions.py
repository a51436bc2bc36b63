"""Browser sessions: a login kept by a cookie, recording which identity signed in when."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.auth.models import BrowserSession, Identity, SessionAuthentication
from isthmus.core.db import utcnow
from isthmus.core.secrets import digest, new_secret


def find(session: Session, cookie: str | None) -> BrowserSession | None:
    if not cookie or len(cookie) > 256:
        return None
    found = session.scalar(select(BrowserSession).where(BrowserSession.digest == digest(cookie)))
    if found is None or found.revoked or found.expires_at <= utcnow():
        return None
    return found


def signed_in(session: Session, cookie: str | None) -> tuple[BrowserSession, Identity] | None:
    """The browser's live session and the identity acting in it, if it has one."""
    browser_session = find(session, cookie)
    if browser_session is None:
        return None
    identity = session.get(Identity, browser_session.primary_identity_id)
    return (browser_session, identity) if identity is not None else None


def login(
    session: Session,
    identity: Identity,
    existing: BrowserSession | None,
    lifetime: int,
    *,
    mfa: bool = False,
    acting: bool = True,
) -> tuple[BrowserSession, str | None]:
    """Record an authentication; returns the session and a new cookie value if one was made.

    The identity becomes the one acting in the session unless `acting` is False
    (an identity being linked joins the session beside the one signed in).
    """
    now = utcnow()
    cookie = None
    browser_session = existing
    if browser_session is None:
        cookie = new_secret()
        browser_session = BrowserSession(
            digest=digest(cookie), created=now, expires_at=now + timedelta(seconds=lifetime),
            primary_identity_id=identity.id,
        )
        session.add(browser_session)
        session.flush()
    if acting:
        browser_session.primary_identity_id = identity.id
    for authentication in browser_session.authentications:
        if authentication.identity_id == identity.id:
            authentication.auth_time = now
            authentication.mfa = mfa
            break
    else:
        browser_session.authentications.append(SessionAuthentication(
            session_id=browser_session.id, identity_id=identity.id, auth_time=now,
            identity_provider_id=identity.identity_provider_id, mfa=mfa,
        ))
    session.flush()
    return browser_session, cookie


def forget(session: Session, browser_session: BrowserSession, identity_id: uuid.UUID) -> None:
    """Drop an identity's authentication from the session (it left the account)."""
    for authentication in list(browser_session.authentications):
        if authentication.identity_id == identity_id:
            browser_session.authentications.remove(authentication)
    session.flush()


def logout(session: Session, browser_session: BrowserSession) -> None:
    browser_session.revoked = True
    session.flush()


def list_for(session: Session, identity_ids: list[uuid.UUID]) -> list[BrowserSession]:
    """Live browser sessions in which any of these identities signed in, newest first."""
    signed_in = select(SessionAuthentication.session_id).where(
        SessionAuthentication.identity_id.in_(identity_ids)
    )
    return list(session.scalars(
        select(BrowserSession)
        .where(BrowserSession.id.in_(signed_in), BrowserSession.revoked.is_(False),
               BrowserSession.expires_at > utcnow())
        .order_by(BrowserSession.created.desc())
    ))


def find_owned(
    session: Session, session_id: uuid.UUID, identity_ids: list[uuid.UUID]
) -> BrowserSession | None:
    """A live session of these identities by id; others' sessions look like missing ones."""
    return next((found for found in list_for(session, identity_ids) if found.id == session_id),
                None)
