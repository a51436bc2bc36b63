"""Guest collections: a user shares part of a mapped collection, acting as their own account.

A guest collection is made by a user with a user credential on the mapped collection's
storage gateway (their mapped identity's account, whose files the guest's readers reach)
and lies at a ``collection_base_path`` inside the mapped collection. Sharing is refused
(403, with the GCS detail document) where the gateway's policies refuse the account, where
the mapped collection does not allow guests or this account sharing
(``sharing_users_*``, POSIX ``sharing_groups_*``), and at paths the account cannot reach
(the gateway's ``restrict_paths``) or may not share (``sharing_restrict_paths`` joined
with the sharing policies for the account). The same checks run again at every data
access (`policy_for`), so tightening a policy takes effect on existing guests.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from isthmus.connect import credentials, gateway_policies, path_restrictions
from isthmus.connect.authz import (
    ACCESS_MANAGER,
    ADMINISTRATOR,
    ENDPOINT_ROLE_ON_COLLECTIONS,
    Caller,
)
from isthmus.connect.errors import gcs_error, invalid_input
from isthmus.connect.guest_access import GuestPolicy, ShareableArea
from isthmus.connect.models import Collection, Role, SharingPolicy, StorageGateway, UserCredential
from isthmus.connect.path_restrictions import UserPaths, combine
from isthmus.core.access_rules import NO_ACCESS
from isthmus.core.errors import APIError
from isthmus.core.registry import GROUP_PRINCIPAL, IDENTITY_PRINCIPAL
from isthmus.storage import paths
from isthmus.storage.accounts import LocalAccount
from isthmus.storage.errors import InvalidPath

# Roles that give their holders read and write on a guest collection (Globus' implicit rules).
MANAGING_ROLES = (ADMINISTRATOR, ACCESS_MANAGER)


def restrictions_for(session: Session, mapped: Collection,
                     username: str) -> dict[str, Any] | None:
    """The sharing restrictions for guests of ``mapped`` made by storage account
    ``username``: the collection's own joined with the sharing policies that name the
    account (or everyone); None when nothing restricts sharing."""
    policies = session.scalars(select(SharingPolicy).where(
        SharingPolicy.collection_id == mapped.id).order_by(SharingPolicy.created))
    applicable = [policy.sharing_restrict_paths for policy in policies
                  if policy.users is None or username in policy.users]
    return combine([mapped.document.get("sharing_restrict_paths"), *applicable])


def check_sharer(mapped: Collection, username: str, account: LocalAccount) -> None:
    """403 when the mapped collection does not let this storage account share."""
    document = mapped.document
    if not document.get("allow_guest_collections"):
        raise gcs_error(403, f"Collection {mapped.id} does not allow guest collections")
    try:
        if username in (document.get("sharing_users_deny") or ()):
            raise gateway_policies.AccountDeniedError(
                username, "it is in the collection's sharing_users_deny")
        allowed = document.get("sharing_users_allow")
        if allowed and username not in allowed:
            raise gateway_policies.AccountDeniedError(
                username, "it is not in the collection's sharing_users_allow")
        policies = document.get("policies") or {}
        gateway_policies.check_groups_allowed(
            username, account.group_names(), policies.get("sharing_groups_allow"),
            policies.get("sharing_groups_deny"))
    except gateway_policies.AccessPolicyError as error:
        raise gcs_error(403, f"{error.message}; it may not share from collection "
                        f"{mapped.id}", error.detail) from None


@dataclass(frozen=True)
class Sharer:
    """A credential's account sharing from a mapped collection."""

    mapped: Collection
    gateway: StorageGateway
    credential: UserCredential
    area: ShareableArea

    def policy(self, guest: Collection, managers: frozenset[uuid.UUID],
               manager_groups: frozenset[uuid.UUID]) -> GuestPolicy:
        return GuestPolicy(
            owner_identity_id=guest.identity_id, managers=managers,
            guest_base=paths.normalize(str(guest.document.get("collection_base_path") or "/")),
            area=self.area, manager_groups=manager_groups, anonymous_writes=not (
                self.gateway.high_assurance
                or self.mapped.document.get("disable_anonymous_writes")))


def sharer(session: Session, mapped: Collection, gateway: StorageGateway,
           credential: UserCredential, account: LocalAccount) -> Sharer:
    check_sharer(mapped, credential.username, account)
    home = credential.document.get("home_directory")
    gateway_paths = UserPaths(home, credential.username)
    try:
        mapped_base = path_restrictions.resolve_path(
            str(mapped.document.get("collection_base_path") or "/"), gateway_paths)
    except InvalidPath as error:
        raise gcs_error(403, f"Collection {mapped.id} lies at {error.message}: "
                        f"{credential.username} cannot share from it") from None
    area = ShareableArea(
        mapped_base=mapped_base,
        gateway_restrictions=gateway.document.get("restrict_paths"),
        sharing_restrictions=restrictions_for(session, mapped, credential.username),
        gateway_paths=gateway_paths,
        mapped_paths=UserPaths(path_restrictions.within(mapped_base, home) if home else None,
                               credential.username))
    return Sharer(mapped=mapped, gateway=gateway, credential=credential, area=area)


def _usable_credential(session: Session, caller: Caller | None, credential_id: Any,
                       mapped: Collection) -> UserCredential:
    """The credential a guest of ``mapped`` acts with (the caller's, when making one)."""
    try:
        credential = session.get(UserCredential, uuid.UUID(str(credential_id)))
    except ValueError:
        credential = None
    if credential is None or (caller is not None
                              and credential.identity_id not in caller.identities):
        raise credentials.invalid_credential(credential_id, "there is no such credential "
                                             "of yours")
    if credential.storage_gateway_id != mapped.storage_gateway_id:
        raise credentials.invalid_credential(
            credential_id, f"it is for another storage gateway than collection {mapped.id}'s")
    if credential.invalid:
        raise credentials.invalid_credential(credential_id, "it has been invalidated")
    return credential


@dataclass(frozen=True)
class PreparedGuest:
    credential: UserCredential
    gateway: StorageGateway
    # Canonical, in the mapped collection's namespace, with ~ and $USER expanded.
    base_path: str


def prepare(session: Session, caller: Caller, mapped: Collection,
            values: Mapping[str, Any]) -> PreparedGuest:
    """Check a new guest collection of ``mapped`` against every sharing restriction."""
    if mapped.collection_type != "mapped":
        raise gcs_error(422, f"Collection {mapped.id} is a guest collection: guest "
                        "collections are made on mapped collections")
    if not values.get("user_credential_id"):
        raise invalid_input("collection", [(
            "user_credential_id", "is required: the credential (your account on the "
            "storage gateway) the guest collection acts with")])
    credential = _usable_credential(session, caller, values["user_credential_id"], mapped)
    if values.get("identity_id") not in (None, str(credential.identity_id)):
        raise credentials.invalid_credential(
            credential.id, f"it belongs to identity {credential.identity_id}, not "
            f"{values['identity_id']}")
    gateway = session.get(StorageGateway, mapped.storage_gateway_id)
    assert gateway is not None  # a foreign key keeps it
    standing = credentials.standing(gateway, credential.identity_id,
                                    credential.identity_username, credential.username)
    found = sharer(session, mapped, gateway, credential, standing.account)
    try:
        base = path_restrictions.resolve_path(
            str(values.get("collection_base_path") or "/"), found.area.mapped_paths)
    except InvalidPath as error:
        raise invalid_input("collection", [("collection_base_path", error.message)]) from None
    if found.area.reach(base) == NO_ACCESS:
        raise gcs_error(403, f"{credential.username} may not share {base} from collection "
                        f"{mapped.id}: the storage gateway's path restrictions or the "
                        "collection's sharing restrictions do not allow it")
    check_https(mapped, values)
    return PreparedGuest(credential, gateway, base)


def check_https(mapped: Collection, values: Mapping[str, Any]) -> None:
    if values.get("enable_https") and not mapped.document.get("enable_https", True):
        raise invalid_input("collection", [(
            "enable_https", f"cannot be true: collection {mapped.id} has HTTPS disabled")])


def check_update(session: Session, caller: Caller, guest: Collection, mapped: Collection,
                 values: Mapping[str, Any]) -> None:
    """A guest keeps its owner; a new credential must be the owner's, and usable."""
    if values.get("identity_id") not in (None, str(guest.identity_id)):
        raise invalid_input("collection", [(
            "identity_id", "of a guest collection is its user credential's identity and "
            "does not change")])
    wanted = values.get("user_credential_id")
    if wanted is not None and wanted != guest.document.get("user_credential_id"):
        credential = _usable_credential(session, caller, wanted, mapped)
        if credential.identity_id != guest.identity_id:
            raise credentials.invalid_credential(
                wanted, f"it belongs to identity {credential.identity_id}, not to the guest "
                f"collection's owner {guest.identity_id}")
    check_https(mapped, values)


def _managers(session: Session,
              guest: Collection) -> tuple[frozenset[uuid.UUID], frozenset[uuid.UUID]]:
    """Identities and groups with an effective administrator or access_manager role on
    the guest."""
    endpoint_roles = [role for role, implied in ENDPOINT_ROLE_ON_COLLECTIONS.items()
                      if implied in MANAGING_ROLES]
    principals = session.scalars(select(Role.principal).where(
        Role.endpoint_id == guest.endpoint_id,
        or_(and_(Role.collection_id.in_([guest.id, guest.mapped_collection_id]),
                 Role.role.in_(MANAGING_ROLES)),
            and_(Role.collection_id.is_(None), Role.role.in_(endpoint_roles)))))
    found: dict[str, set[uuid.UUID]] = {IDENTITY_PRINCIPAL: set(), GROUP_PRINCIPAL: set()}
    for principal in principals:
        prefix, _, principal_id = principal.rpartition(":")
        try:
            found[prefix + ":"].add(uuid.UUID(principal_id))
        except (KeyError, ValueError):
            continue
    return frozenset(found[IDENTITY_PRINCIPAL]), frozenset(found[GROUP_PRINCIPAL])


def policy_for(session: Session, guest: Collection) -> tuple[GuestPolicy, UserCredential]:
    """The decision's view of a guest collection, after checking (as at creation) that its
    owner may still share from the mapped collection; 403 with the GCS detail otherwise."""
    mapped = session.get(Collection, guest.mapped_collection_id)
    assert mapped is not None  # guests go with their mapped collection
    credential = _usable_credential(session, None, guest.document.get("user_credential_id"),
                                    mapped)
    if credential.identity_id != guest.identity_id:
        raise credentials.invalid_credential(credential.id, "it is not the owner's")
    gateway = session.get(StorageGateway, mapped.storage_gateway_id)
    assert gateway is not None  # a foreign key keeps it
    allowed = list(gateway.document.get("allowed_domains") or ())
    if not gateway_policies.in_allowed_domains({"username": credential.identity_username},
                                               allowed):
        raise credentials.policy_refusal(gateway_policies.NotFromAllowedDomainError(allowed))
    try:
        account = credentials.check_account(gateway, credential.username)
    except APIError as error:
        if error.status != 422:
            raise
        raise credentials.invalid_credential(credential.id, error.message) from None
    found = sharer(session, mapped, gateway, credential, account)
    return found.policy(guest, *_managers(session, guest)), credential
