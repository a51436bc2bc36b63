"""Login throttling: too many failed passwords lock an account, or an address, for a while.

Failures live in the database, so every server process and node sees the same
counts and a restart forgets nothing.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from isthmus.auth import identities
from isthmus.auth.models import Identity, LoginFailure
from isthmus.core.db import utcnow

WINDOW = timedelta(minutes=15)
# Per account: guessing one person's password. Per address: one machine trying
# many accounts (high enough for a campus behind one NAT address).
ACCOUNT_LIMIT = int(os.environ.get("ISTHMUS_LOGIN_ACCOUNT_LIMIT", "5"))
ADDRESS_LIMIT = int(os.environ.get("ISTHMUS_LOGIN_ADDRESS_LIMIT", "50"))


@dataclass(frozen=True)
class Locked:
    retry_after_seconds: int

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after_seconds / 60))
        return f"Too many failed login attempts. Try again in {minutes} minute(s)."


def _keys(username: str, address: str | None) -> list[tuple[str, int]]:
    keys = [(f"account:{username.strip().lower()[:300]}", ACCOUNT_LIMIT)]
    if address:
        keys.append((f"address:{address[:100]}", ADDRESS_LIMIT))
    return keys


def check(session: Session, username: str, address: str | None) -> Locked | None:
    """Whether this login may be tried now (checked before the password is)."""
    since = utcnow() - WINDOW
    for key, limit in _keys(username, address):
        count, oldest = session.execute(
            select(func.count(), func.min(LoginFailure.at))
            .where(LoginFailure.key == key, LoginFailure.at > since)
        ).one()
        if count >= limit and oldest is not None:
            unlocks = oldest + WINDOW
            return Locked(max(1, int((unlocks - utcnow()).total_seconds())))
    return None


def record_failure(session: Session, username: str, address: str | None) -> None:
    now = utcnow()
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - WINDOW))
    for key, _limit in _keys(username, address):
        session.add(LoginFailure(key=key, at=now))
    session.flush()


def record_success(session: Session, username: str) -> None:
    account_key = _keys(username, None)[0][0]
    session.execute(delete(LoginFailure).where(LoginFailure.key == account_key))


@dataclass(frozen=True)
class LoginRefused:
    message: str
    status: int


def password_login(
    session: Session, username: str, password: str, address: str | None
) -> Identity | LoginRefused:
    """Check a password login under the throttle; failures are recorded, not raised,
    so that the unit of work commits them. A right password does not clear the
    failures: only a complete sign-in does (see `record_success`), so that wrong
    second-factor codes keep counting."""
    account = identities.canonical_username(session, username)
    locked = check(session, account, address)
    if locked is not None:
        return LoginRefused(locked.message, 429)
    identity = identities.check_password(session, username, password)
    if identity is None:
        record_failure(session, account, address)
        return LoginRefused("Invalid username or password.", 401)
    return identity
