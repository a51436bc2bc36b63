"""Forgetting what can no longer be used: expired codes and tokens, old login failures.

Expired and revoked rows answer exactly like rows that never existed (an
inactive token, an invalid code), so deleting them changes no answer; it keeps
the tables, and the indexes every request walks, the size of what is live.
A grace period keeps a just-expired code long enough to recognise its replay.
Browser sessions stay: tokens issued in one report its authentications
(introspection's ``session_info``) for as long as they live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from isthmus.auth.models import AuthorizationCode, LoginFailure, Token
from isthmus.auth.throttle import WINDOW as LOGIN_FAILURE_WINDOW

GRACE = timedelta(hours=1)
# How often `isthmus serve` purges; every process may do it, deletes are idempotent.
PURGE_INTERVAL_SECONDS = 15 * 60


@dataclass(frozen=True)
class Purged:
    codes: int
    tokens: int
    login_failures: int


def purge_expired(session: Session, now: datetime) -> Purged:
    cutoff = now - GRACE
    codes = session.execute(
        delete(AuthorizationCode).where(AuthorizationCode.expires_at < cutoff)
    )
    # Access tokens that expired, and refresh tokens that were revoked (the access
    # tokens they minted were revoked with them and go by the foreign key's cascade).
    tokens = session.execute(delete(Token).where(or_(
        Token.expires_at < cutoff,
        (Token.kind == "refresh") & Token.revoked.is_(True),
    )))
    failures = session.execute(
        delete(LoginFailure).where(LoginFailure.at < now - LOGIN_FAILURE_WINDOW)
    )
    return Purged(
        codes=codes.rowcount,  # type: ignore[attr-defined]
        tokens=tokens.rowcount,  # type: ignore[attr-defined]
        login_failures=failures.rowcount,  # type: ignore[attr-defined]
    )
