"""Multi-factor sign-in: TOTP enrolment, recovery codes, and logins waiting for a code.

A TOTP secret must be read back to check codes, so it is sealed (AES-256-GCM,
`core.encryption`) and bound to its identity; recovery codes and the cookie of
a pending login are only compared, so they are kept as SHA-256 digests. Codes
are single-use: a TOTP time step, once accepted, never opens a login again.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from isthmus.auth import totp
from isthmus.auth.models import (
    Identity,
    MfaCredential,
    MfaRecoveryCode,
    PendingLogin,
    SessionAuthentication,
)
from isthmus.auth.sign_in import Destination
from isthmus.core.encryption import SecretBox
from isthmus.core.errors import APIError
from isthmus.core.secrets import digest, new_secret

ISSUER = "Isthmus"
RECOVERY_CODE_COUNT = 10
# 16 base32 characters: 80 bits, beyond an offline search of their SHA-256 digests.
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY_LENGTH = 16
PENDING_LOGIN_LIFETIME = timedelta(minutes=5)
# Wrong codes against one pending login before it is dropped (the account
# throttle, which these failures also feed, bounds guesses across logins).
PENDING_LOGIN_ATTEMPTS = 5


def _purpose(identity_id: uuid.UUID) -> str:
    # Binds a sealed secret to its row: copied to another identity, it does not open.
    return f"totp-secret:{identity_id}"


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows once: the secret, and the URI its QR code carries."""

    secret: str
    uri: str


def credential(session: Session, identity_id: uuid.UUID) -> MfaCredential | None:
    return session.get(MfaCredential, identity_id)


def is_enabled(session: Session, identity_id: uuid.UUID) -> bool:
    found = credential(session, identity_id)
    return found is not None and found.enabled


def recovery_codes_left(session: Session, identity_id: uuid.UUID) -> int:
    return session.scalar(
        select(func.count()).select_from(MfaRecoveryCode)
        .where(MfaRecoveryCode.identity_id == identity_id, MfaRecoveryCode.used_at.is_(None))
    ) or 0


def begin_enrolment(session: Session, box: SecretBox, identity: Identity) -> Enrolment:
    """A fresh secret, pending until confirmed; replaces any earlier unconfirmed one."""
    existing = credential(session, identity.id)
    if existing is not None and existing.enabled:
        raise APIError(409, "CONFLICT", "Two-factor authentication is already enabled")
    secret = totp.new_secret()
    sealed = box.seal(secret, _purpose(identity.id))
    if existing is None:
        session.add(MfaCredential(identity_id=identity.id, sealed_secret=sealed, enabled=False))
    else:
        existing.sealed_secret = sealed
        existing.last_used_step = None
    session.flush()
    return Enrolment(secret, totp.provisioning_uri(secret, identity.username, ISSUER))


def confirm_enrolment(
    session: Session, box: SecretBox, identity_id: uuid.UUID, code: str, now: datetime
) -> list[str] | None:
    """Enable the pending secret if the code is right; returns the new recovery codes."""
    pending = credential(session, identity_id)
    if pending is None or pending.enabled:
        return None
    if not _accept_totp(session, box, pending, code, now):
        return None
    pending.enabled = True
    pending.enabled_at = now
    return _new_recovery_codes(session, identity_id)


def _new_recovery_codes(session: Session, identity_id: uuid.UUID) -> list[str]:
    session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.identity_id == identity_id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        session.add(MfaRecoveryCode(identity_id=identity_id, digest=digest(raw)))
        codes.append("-".join(raw[i:i + 4] for i in range(0, _RECOVERY_LENGTH, 4)))
    session.flush()
    return codes


def verify(
    session: Session, box: SecretBox, identity_id: uuid.UUID, code: str, now: datetime
) -> bool:
    """Accept a TOTP code of an unused time step, or an unused recovery code (consuming it)."""
    found = credential(session, identity_id)
    if found is None or not found.enabled or len(code) > 100:
        return False
    if _accept_totp(session, box, found, code, now):
        return True
    return _accept_recovery_code(session, identity_id, code, now)


def _accept_totp(
    session: Session, box: SecretBox, found: MfaCredential, code: str, now: datetime
) -> bool:
    secret = box.open(found.sealed_secret, _purpose(found.identity_id))
    step = totp.matching_step(secret, code, now.timestamp())
    if step is None:
        return False
    # Conditional UPDATE: of two logins racing with the same code, one wins.
    claimed = session.execute(
        update(MfaCredential)
        .where(MfaCredential.identity_id == found.identity_id)
        .where((MfaCredential.last_used_step.is_(None))
               | (MfaCredential.last_used_step < step))
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)
    )
    accepted: bool = claimed.rowcount == 1  # type: ignore[attr-defined]
    if accepted:
        found.last_used_step = step
    return accepted


def _accept_recovery_code(
    session: Session, identity_id: uuid.UUID, code: str, now: datetime
) -> bool:
    normalised = code.strip().lower().replace("-", "").replace(" ", "")
    if len(normalised) != _RECOVERY_LENGTH:
        return False
    claimed = session.execute(
        update(MfaRecoveryCode)
        .where(MfaRecoveryCode.identity_id == identity_id,
               MfaRecoveryCode.digest == digest(normalised),
               MfaRecoveryCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    used: bool = claimed.rowcount == 1  # type: ignore[attr-defined]
    return used


def disable(
    session: Session, box: SecretBox, identity_id: uuid.UUID, code: str, now: datetime
) -> bool:
    """Remove the authenticator and recovery codes, if the code proves possession."""
    if not verify(session, box, identity_id, code, now):
        return False
    reset(session, identity_id)
    return True


def reset(session: Session, identity_id: uuid.UUID) -> bool:
    """Remove an identity's authenticator and recovery codes (an administrator's way back
    in for someone who lost both); True when there was one."""
    session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.identity_id == identity_id))
    removed = session.execute(
        delete(MfaCredential).where(MfaCredential.identity_id == identity_id)
    )
    session.expire_all()
    had_one: bool = removed.rowcount == 1  # type: ignore[attr-defined]
    return had_one


def mark_session_mfa(
    session: Session, session_id: uuid.UUID, identity_id: uuid.UUID
) -> None:
    """A code just confirmed in this browser session is a second factor for its login."""
    session.execute(
        update(SessionAuthentication)
        .where(SessionAuthentication.session_id == session_id,
               SessionAuthentication.identity_id == identity_id)
        .values(mfa=True)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()


# --- logins waiting for their second factor ----------------------------------------


def start_pending_login(
    session: Session, identity_id: uuid.UUID, going: Destination, now: datetime
) -> str:
    """Keep a login whose first factor is checked for a few minutes, with where it goes
    on; returns the browser's cookie value."""
    session.execute(delete(PendingLogin).where(PendingLogin.expires_at <= now))
    cookie = new_secret()
    session.add(PendingLogin(
        digest=digest(cookie), identity_id=identity_id, **going.columns(), failures=0,
        created=now, expires_at=now + PENDING_LOGIN_LIFETIME,
    ))
    session.flush()
    return cookie


def destination_of(pending: PendingLogin) -> Destination:
    return Destination.kept(pending.purpose, pending.authorize_query, pending.next_path,
                            pending.account_id)


def find_pending_login(
    session: Session, cookie: str | None, now: datetime
) -> PendingLogin | None:
    if not cookie or len(cookie) > 256:
        return None
    found = session.get(PendingLogin, digest(cookie))
    if found is None or found.expires_at <= now:
        return None
    return found


def record_wrong_code(session: Session, pending: PendingLogin) -> bool:
    """Count a wrong code; True when the pending login is used up (and removed)."""
    pending.failures += 1
    if pending.failures >= PENDING_LOGIN_ATTEMPTS:
        session.delete(pending)
        session.flush()
        return True
    session.flush()
    return False


def finish_pending_login(session: Session, pending: PendingLogin) -> None:
    session.delete(pending)
    session.flush()
