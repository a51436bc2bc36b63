"""What an authorization request demands of the browser session: ``session_required_identities``.

An application (or a service's authorization-requirements error, re-driven by
the SDK) names identities of which the session must hold a login. A session
without one is sent to the login page, which says who to log in as, and a login
with any other identity does not satisfy that request.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.auth.models import BrowserSession, Identity

MAX_REQUIRED_IDENTITIES = 50


def parse_identity_ids(value: str) -> tuple[uuid.UUID, ...]:
    """The comma-joined ids the SDK sends; ValueError names the first malformed one."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if len(parts) > MAX_REQUIRED_IDENTITIES:
        raise ValueError(
            f"session_required_identities names more than {MAX_REQUIRED_IDENTITIES} identities"
        )
    ids = []
    for part in parts:
        try:
            ids.append(uuid.UUID(part))
        except ValueError:
            raise ValueError(
                f"session_required_identities: {part[:60]!r} is not an identity id"
            ) from None
    return tuple(dict.fromkeys(ids))


def unmet_identities(
    session: Session, browser_session: BrowserSession | None, required: tuple[uuid.UUID, ...]
) -> list[Identity] | None:
    """None when the session holds a login by a required identity (or nothing is required);
    otherwise the required identities that exist, for the login page to name."""
    if browser_session is not None and is_met(browser_session, required):
        return None
    if not required:
        return None
    return list(session.scalars(
        select(Identity).where(Identity.id.in_(required)).order_by(Identity.username)
    ))


def is_met(browser_session: BrowserSession, required: tuple[uuid.UUID, ...]) -> bool:
    if not required:
        return True
    authenticated = {auth.identity_id for auth in browser_session.authentications}
    return not authenticated.isdisjoint(required)


def accepts(required: tuple[uuid.UUID, ...], identity: Identity) -> bool:
    """Whether a login by `identity` may answer a request with these requirements."""
    return not required or identity.id in required


def describe(identities: list[Identity]) -> str:
    """The sentence the login page shows about who must log in."""
    if not identities:
        return ("This application requires a login with an identity that does not exist "
                "on this server.")
    names = ", ".join(identity.username for identity in identities)
    if len(identities) == 1:
        return f"This application requires you to log in as {names}."
    return f"This application requires you to log in with one of these identities: {names}."
