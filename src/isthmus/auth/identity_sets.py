"""Accounts: linking identities into one person's identity set, and unlinking them.

An account holds one or more identities; the one it was made for is its primary
identity and stays in it. Linking moves an identity the user has just proved
control of (by signing in with it) into the account; an identity that is already
linked with others elsewhere is never taken from that set silently.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from isthmus.auth.models import Account, Identity
from isthmus.core.errors import APIError, bad_request, not_found


class LinkRefusedError(APIError):
    def __init__(self, message: str) -> None:
        super().__init__(409, "CONFLICT", message)


def new_account(session: Session, identity: Identity) -> Account:
    """Give the identity an account of its own, with it as the primary identity."""
    account = Account(primary_identity_id=identity.id)
    session.add(account)
    session.flush()
    identity.account_id = account.id
    session.flush()
    return account


def members(session: Session, account_id: uuid.UUID) -> list[Identity]:
    """The account's identities: the primary first, then in the order they were made."""
    account = session.get(Account, account_id)
    rows = list(session.scalars(
        select(Identity).where(Identity.account_id == account_id).order_by(Identity.created)
    ))
    primary = primary_identity_id(account, rows)
    return sorted(rows, key=lambda row: row.id != primary)


def primary_identity_id(account: Account | None, rows: list[Identity]) -> uuid.UUID | None:
    if account is not None and account.primary_identity_id is not None:
        return account.primary_identity_id
    return rows[0].id if rows else None


def _count(session: Session, account_id: uuid.UUID) -> int:
    return session.scalar(
        select(func.count()).select_from(Identity).where(Identity.account_id == account_id)
    ) or 0


def link(session: Session, holder: Identity, joining: Identity) -> bool:
    """Put `joining` into `holder`'s account; False when it is there already."""
    if joining.identity_type != "login" or holder.identity_type != "login":
        raise bad_request("Only identities people log in with can be linked")
    if holder.account_id is None:
        new_account(session, holder)
    if joining.account_id == holder.account_id:
        return False
    previous = joining.account_id
    if previous is not None:
        others = _count(session, previous) - 1
        if others > 0:
            raise LinkRefusedError(
                f"{joining.username} is already linked with {others} other "
                f"identit{'y' if others == 1 else 'ies'} in another account. Sign in with it, "
                "unlink it there first, then link it here."
            )
    joining.account_id = holder.account_id
    session.flush()
    if previous is not None:
        old = session.get(Account, previous)
        if old is not None:
            session.delete(old)
            session.flush()
    return True


def unlink(session: Session, holder: Identity, identity_id: uuid.UUID) -> Identity:
    """Take an identity out of `holder`'s account; it becomes an account of its own."""
    target = session.get(Identity, identity_id)
    if target is None or holder.account_id is None or target.account_id != holder.account_id:
        raise not_found("That identity is not linked to your account")
    account = session.get(Account, holder.account_id)
    rows = members(session, holder.account_id)
    if target.id == primary_identity_id(account, rows):
        raise bad_request("The primary identity of an account cannot be unlinked")
    if target.id == holder.id:
        raise bad_request(
            f"You are signed in as {target.username}: sign in with another identity of "
            "this account to unlink it"
        )
    new_account(session, target)
    return target
