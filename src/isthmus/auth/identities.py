"""Identities of the local identity provider: users, passwords and lookups."""

from __future__ import annotations

import functools
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.auth import identity_sets
from isthmus.auth.builtins import LOCAL_IDP_ID
from isthmus.auth.models import Identity, IdentityProvider, LocalUser
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


def canonical_username(session: Session, username: str) -> str:
    """The name a login attempt is counted under (``alice`` and ``ALICE@domain`` alike)."""
    try:
        return qualify(session, username)
    except APIError:
        return username.strip().lower()


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
    identity = session.scalar(select(Identity).where(Identity.username == full_name))
    if identity is not None and identity.status != "unused":
        raise UserExistsError(full_name)
    if identity is None:
        identity = Identity(username=full_name, identity_provider_id=LOCAL_IDP_ID,
                            identity_type="login")
        session.add(identity)
        session.flush()
    # A provisioned ("unused") identity keeps its id: grants made to it still apply.
    identity.name = name or full_name.split("@", 1)[0]
    identity.email = email
    identity.organization = organization
    identity.status = "used"
    if identity.account_id is None:
        identity_sets.new_account(session, identity)
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


# --- lookups for the identities API -------------------------------------------------

MAX_LOOKUP = 1000


def _split(values: str, what: str) -> list[str]:
    parts = [part.strip() for part in values.split(",") if part.strip()]
    if len(parts) > MAX_LOOKUP:
        raise bad_request(f"At most {MAX_LOOKUP} {what} per request")
    return parts


def find_identities(
    session: Session, *, ids: str | None, usernames: str | None, provision: bool
) -> list[Identity]:
    """Identities by id or by username, in the order asked; unknown ones are left out."""
    if ids is not None:
        keys = []
        for part in _split(ids, "ids"):
            try:
                keys.append(uuid.UUID(part))
            except ValueError:
                raise bad_request(f"Invalid identity id {part!r}") from None
        rows = session.scalars(select(Identity).where(Identity.id.in_(keys)))
        found = {row.id: row for row in rows}
        return [found[key] for key in dict.fromkeys(keys) if key in found]
    names = [name.lower() for name in _split(usernames or "", "usernames") if "\x00" not in name]
    by_name = {
        row.username: row
        for row in session.scalars(select(Identity).where(Identity.username.in_(names)))
    }
    if provision:
        for name in names:
            if name not in by_name:
                provisioned = _provision(session, name)
                if provisioned is not None:
                    by_name[name] = provisioned
    return [by_name[name] for name in dict.fromkeys(names) if name in by_name]


def _provision(session: Session, username: str) -> Identity | None:
    """An ``unused`` identity for someone who has not logged in yet (when the domain is ours)."""
    local, _, domain = username.partition("@")
    if not local or not domain or any(char.isspace() for char in username):
        return None
    provider = next(
        (idp for idp in session.scalars(select(IdentityProvider)) if domain in idp.domains
         and idp.kind != "clients"),
        None,
    )
    if provider is None:
        return None
    identity = Identity(username=username, name=None, identity_provider_id=provider.id,
                        status="unused", identity_type="login")
    session.add(identity)
    session.flush()
    return identity


def find_identity_providers(
    session: Session, *, domains: str | None, ids: str | None
) -> list[IdentityProvider]:
    providers = list(session.scalars(select(IdentityProvider).order_by(IdentityProvider.created)))
    if ids is not None:
        wanted = set(_split(ids, "ids"))
        return [idp for idp in providers if str(idp.id) in wanted]
    if domains is not None:
        wanted = {domain.lower() for domain in _split(domains, "domains")}
        return [idp for idp in providers if wanted & set(idp.domains)]
    return providers
