"""Identities of the local identity provider: users, passwords and lookups."""

from __future__ import annotations

import functools
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.auth.builtins import LOCAL_IDP_ID
from isthmus.auth.models import Account, Identity, IdentityProvider, LocalUser
from isthmus.core.errors import APIError, bad_request

_hasher = PasswordHasher()  # argon2id with the library's current recommended costs


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this keeps a login for an unknown user as slow as for a known one."""
    return str(_hasher.hash("isthmus-timing-equaliser"))

MAX_PASSWORD_LENGTH = 1024


class UserExistsError(APIError):
    def __init__(self, username: str) -> None:
        super().__init__(409, "CONFLICT", f"An identity named {username} already exists")


def local_provider(session: Session) -> IdentityProvider:
    provider = session.get(IdentityProvider, LOCAL_IDP_ID)
    if provider is None:
        raise RuntimeError("the local identity provider is missing: bootstrap has not run")
    return provider


def local_domain(session: Session) -> str:
    return local_provider(session).domains[0]


def qualify(session: Session, username: str) -> str:
    """``alice`` becomes ``alice@<local domain>``; a full username is lower-cased."""
    username = username.strip().lower()
    if not username or any(char.isspace() for char in username) or username.count("@") > 1:
        raise bad_request(f"Invalid username: {username!r}")
    if "@" not in username:
        username = f"{username}@{local_domain(session)}"
    return username


def hash_password(password: str) -> str:
    if not password or len(password) > MAX_PASSWORD_LENGTH:
        raise bad_request(f"A password must have 1 to {MAX_PASSWORD_LENGTH} characters")
    return str(_hasher.hash(password))


def create_user(
    session: Session,
    username: str,
    password: str | None,
    *,
    email: str | None = None,
    name: str | None = None,
    organization: str | None = None,
) -> Identity:
    full_name = qualify(session, username)
    if not full_name.endswith("@" + local_domain(session)):
        raise bad_request(f"Local users belong to the domain {local_domain(session)}")
    existing = session.scalar(select(Identity).where(Identity.username == full_name))
    if existing is not None:
        raise UserExistsError(full_name)
    account = Account()
    session.add(account)
    session.flush()
    identity = Identity(
        username=full_name,
        name=name or full_name.split("@", 1)[0],
        email=email,
        organization=organization,
        identity_provider_id=LOCAL_IDP_ID,
        status="used",
        identity_type="login",
        account_id=account.id,
    )
    session.add(identity)
    session.flush()
    session.add(LocalUser(
        identity_id=identity.id,
        password_hash=hash_password(password) if password else None,
    ))
    session.flush()
    return identity


def find_local_user(session: Session, username: str) -> LocalUser | None:
    try:
        full_name = qualify(session, username)
    except APIError:
        return None
    return session.scalar(
        select(LocalUser).join(Identity).where(Identity.username == full_name)
    )


def require_local_user(session: Session, username: str) -> LocalUser:
    user = find_local_user(session, username)
    if user is None:
        raise APIError(404, "NOT_FOUND", f"No local user named {username}")
    return user


def list_users(session: Session) -> list[LocalUser]:
    return list(session.scalars(select(LocalUser).join(Identity).order_by(Identity.username)))


def set_password(session: Session, username: str, password: str) -> None:
    require_local_user(session, username).password_hash = hash_password(password)


def set_disabled(session: Session, username: str, disabled: bool) -> None:
    require_local_user(session, username).disabled = disabled


def check_password(session: Session, username: str, password: str) -> Identity | None:
    """The identity whose password this is, or None (same cost either way)."""
    user = find_local_user(session, username)
    if user is None or user.password_hash is None or len(password) > MAX_PASSWORD_LENGTH:
        _verify(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])
        return None
    if not _verify(user.password_hash, password) or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user.identity


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def identity_set(session: Session, identity: Identity) -> list[Identity]:
    """All identities linked with this one (itself first)."""
    if identity.account_id is None:
        return [identity]
    linked = session.scalars(
        select(Identity)
        .where(Identity.account_id == identity.account_id, Identity.id != identity.id)
        .order_by(Identity.created)
    )
    return [identity, *linked]


def get_identity(session: Session, identity_id: uuid.UUID) -> Identity | None:
    return session.get(Identity, identity_id)
