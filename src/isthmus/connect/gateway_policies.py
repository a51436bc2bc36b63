"""A storage gateway's access policies, as pure functions: allowed identity domains,
``users_allow``/``users_deny``, the POSIX connector's ``groups_allow``/``groups_deny``, and the
choice of account. Refusals carry the GCS error detail document the Manager API returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Identity = Mapping[str, Any]


def identity_domain(identity: Identity) -> str | None:
    """The domain of an identity's username (``alice@example.org`` -> ``example.org``)."""
    username = identity.get("username")
    if not isinstance(username, str) or "@" not in username:
        return None
    return username.rsplit("@", 1)[1].lower()


def in_allowed_domains(identity: Identity, allowed_domains: Iterable[str]) -> bool:
    """Whether the identity's domain is one of the gateway's (case-insensitively). A gateway
    with no allowed domains allows no one: GCS requires at least one."""
    domain = identity_domain(identity)
    return domain is not None and domain in {d.lower() for d in allowed_domains}


class AccessPolicyError(Exception):
    """A gateway policy refuses the user; ``detail`` is the GCS error detail document."""

    def __init__(self, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFromAllowedDomainError(AccessPolicyError):
    def __init__(self, allowed_domains: Sequence[str]) -> None:
        domains = ", ".join(allowed_domains) or "(none)"
        super().__init__(
            f"You need an identity from one of these domains to use this storage: {domains}",
            {
                "DATA_TYPE": "not_from_allowed_domain#1.0.0",
                "allowed_domains": list(allowed_domains),
            },
        )


class NoAccountMappedError(AccessPolicyError):
    def __init__(self) -> None:
        super().__init__(
            "None of your identities maps to an account on this storage",
            {"DATA_TYPE": "credential_not_found#1.0.0", "accounts": []},
        )


class AccountDeniedError(AccessPolicyError):
    def __init__(self, username: str, reason: str) -> None:
        super().__init__(
            f"The account '{username}' may not use this storage ({reason})",
            {"DATA_TYPE": "invalid_user#1.0.0", "usernames": [username]},
        )


def require_allowed_domain(
    identities: Sequence[Identity], allowed_domains: Sequence[str]
) -> list[Identity]:
    """The identities in allowed domains; NotFromAllowedDomainError when there are none."""
    eligible = [i for i in identities if in_allowed_domains(i, allowed_domains)]
    if not eligible:
        raise NotFromAllowedDomainError(allowed_domains)
    return eligible


def check_user_allowed(
    username: str, users_allow: Sequence[str] | None, users_deny: Sequence[str] | None
) -> None:
    """``users_deny`` always wins; a non-empty ``users_allow`` admits only its members."""
    if users_deny and username in users_deny:
        raise AccountDeniedError(username, "it is in the storage gateway's users_deny")
    if users_allow and username not in users_allow:
        raise AccountDeniedError(username, "it is not in the storage gateway's users_allow")


def check_groups_allowed(
    username: str,
    group_names: Iterable[str],
    groups_allow: Sequence[str] | None,
    groups_deny: Sequence[str] | None,
) -> None:
    """POSIX gateway policies: membership of any ``groups_deny`` group refuses; a non-empty
    ``groups_allow`` requires membership of one of its groups."""
    groups = set(group_names)
    if groups_deny and groups & set(groups_deny):
        denied = sorted(groups & set(groups_deny))[0]
        raise AccountDeniedError(username, f"its group '{denied}' is in groups_deny")
    if groups_allow and not groups & set(groups_allow):
        raise AccountDeniedError(username, "it is in none of the groups in groups_allow")


def select_account(candidates: Sequence[str], requested: str | None = None) -> str:
    """The account to act as: the one asked for (Transfer's ``local_user``) if the identity
    set maps to it, else the most preferred one."""
    if not candidates:
        raise NoAccountMappedError()
    if requested is None:
        return candidates[0]
    if requested not in candidates:
        raise AccountDeniedError(requested, "none of your identities maps to it")
    return requested
