"""User credentials: which storage account a user's identity acts as on a storage gateway.

For POSIX a credential records the local account the identity maps to (the gateway's
identity mapping decides it; a credential cannot name another account) and its home
folder; the user's guest collections act as that account. For S3 and ActiveScale it holds
the user's keys (`s3_gateways`), the secrets sealed and never shown again; WebDAV's are
OAuth2 grants made by the browser flow (`webdav_gateways`). Users make their own
credentials (no role needed, the gateway's policies decide); an endpoint administrator
may make them for others on a gateway with ``admin_managed_credentials``. Others'
credentials answer 404, so they never show.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.connect import (
    authz,
    documents,
    gateway_policies,
    paging,
    path_restrictions,
    s3_gateways,
    schemas,
    webdav_gateways,
)
from isthmus.connect.authz import Caller
from isthmus.connect.errors import bad_request, exists, gcs_error, invalid_input, not_found
from isthmus.connect.identity_mapping import (
    IdentityMappingError,
    map_single_identity,
    parse_identity_mappings,
)
from isthmus.connect.models import Endpoint, StorageGateway, UserCredential
from isthmus.connect.schemas import InvalidValueError
from isthmus.core.encryption import SecretBox
from isthmus.core.identities import IdentityDirectory
from isthmus.storage.accounts import LocalAccount
from isthmus.storage.errors import AccountNotFound

logger = logging.getLogger("isthmus.connect")

POLICY_SCHEMAS = {documents.POSIX_CONNECTOR_ID: schemas.posix_user_credential_policies,
                  documents.S3_CONNECTOR_ID: schemas.s3_user_credential_policies,
                  documents.ACTIVESCALE_CONNECTOR_ID: schemas.s3_user_credential_policies,
                  documents.WEBDAV_CONNECTOR_ID: webdav_gateways.credential_policies_schema}


@dataclass(frozen=True)
class Standing:
    """A credential's account as the gateway's policies see it now."""

    account: LocalAccount
    home_directory: str


def policy_refusal(error: gateway_policies.AccessPolicyError) -> Exception:
    return gcs_error(403, error.message, error.detail)


def invalid_credential(credential_id: object, why: str) -> Exception:
    return gcs_error(403, f"User credential {credential_id} cannot be used: {why}",
                     {"DATA_TYPE": "invalid_credential#1.0.0",
                      "user_credential_id": str(credential_id)})


def credential_not_found(gateway: StorageGateway, identity_id: uuid.UUID,
                         username: str) -> Exception:
    return gcs_error(403, f"You have no user credential for {username} on storage gateway "
                     f"{gateway.id}: register your keys with 'globus-connect-server "
                     f"user-credentials s3-create {gateway.id}'",
                     {"DATA_TYPE": "credential_not_found#1.0.0", "accounts": [
                         {"DATA_TYPE": "account#1.0.0", "identity_id": str(identity_id),
                          "storage_gateway_id": str(gateway.id), "username": username}]})


def mapped_account(gateway: StorageGateway, identity_id: uuid.UUID,
                   identity_username: str) -> str | None:
    """The account the gateway maps this identity to (None: none); 403 outside its domains."""
    allowed = list(gateway.document.get("allowed_domains") or ())
    identity = {"id": str(identity_id), "username": identity_username}
    if not gateway_policies.in_allowed_domains(identity, allowed):
        raise policy_refusal(gateway_policies.NotFromAllowedDomainError(allowed))
    try:
        mappings = parse_identity_mappings(gateway.document.get("identity_mappings"),
                                           connector_id=str(gateway.connector_id),
                                           storage_gateway_id=str(gateway.id))
        return map_single_identity(identity, mappings, allowed)
    except IdentityMappingError as error:
        logger.warning("identity mapping on storage gateway %s failed: %s %s", gateway.id,
                       error.message, error.detail)
        raise gcs_error(422, f"Identity mapping on storage gateway {gateway.id} failed: "
                        f"{error.message}") from None


def check_account(gateway: StorageGateway, username: str) -> LocalAccount:
    """The local account, if the gateway's users and groups policies let it in (403)."""
    document = gateway.document
    try:
        gateway_policies.check_user_allowed(username, document.get("users_allow"),
                                            document.get("users_deny"))
        account = LocalAccount.lookup(username)
        policies = document.get("policies") or {}
        gateway_policies.check_groups_allowed(username, account.group_names(),
                                              policies.get("groups_allow"),
                                              policies.get("groups_deny"))
    except gateway_policies.AccessPolicyError as error:
        raise policy_refusal(error) from None
    except AccountNotFound as error:
        raise gcs_error(422, f"{error} on this server") from None
    return account


def connector_username(gateway: StorageGateway, identity_id: uuid.UUID,
                       identity_username: str, username: str | None) -> str:
    """The account the identity maps to, which ``username`` (when given) must be."""
    local = mapped_account(gateway, identity_id, identity_username)
    if local is None:
        raise gcs_error(422, f"Identity {identity_username} maps to no account on storage "
                        f"gateway {gateway.id}")
    if username is not None and username != local:
        raise gcs_error(422, f"Identity {identity_username} maps to the account {local} on "
                        f"storage gateway {gateway.id}, not {username}")
    return local


def standing(gateway: StorageGateway, identity_id: uuid.UUID, identity_username: str,
             username: str | None) -> Standing:
    """The local account the identity maps to, which ``username`` (when given) must be,
    checked against the gateway's policies, with its home folder."""
    local = connector_username(gateway, identity_id, identity_username, username)
    account = check_account(gateway, local)
    try:
        home = path_restrictions.home_directory(str(gateway.document.get("root") or "/"),
                                                account.home, identity_username)
    except ValueError as error:
        raise gcs_error(422, str(error)) from None
    return Standing(account, home)


def _gateway(session: Session, endpoint: Endpoint, gateway_id: str) -> StorageGateway:
    gateway = session.get(StorageGateway, uuid.UUID(gateway_id))
    if gateway is None or gateway.endpoint_id != endpoint.id:
        raise gcs_error(422, f"Storage Gateway {gateway_id} not found",
                        {"DATA_TYPE": "storage_gateway_not_found#1.0.0",
                         "storage_gateway_id": gateway_id})
    return gateway


def _check_policies(gateway: StorageGateway, policies: Any) -> dict[str, Any]:
    check = POLICY_SCHEMAS[gateway.connector_id]
    try:
        checked: dict[str, Any] = check(policies if policies is not None else {})
    except InvalidValueError as error:
        raise invalid_input("user_credential", [("policies", str(error))]) from None
    return checked


def _manages_for_others(session: Session, endpoint: Endpoint, caller: Caller,
                        gateway: StorageGateway) -> bool:
    return bool(gateway.document.get("admin_managed_credentials")) and authz.caller_roles(
        session, endpoint, caller).endpoint_admin


def _identity_username(caller: Caller, identity_id: uuid.UUID,
                       directory: IdentityDirectory) -> str:
    if identity_id == caller.identity_id:
        return caller.username
    found = directory.lookup_identities([identity_id]).get(identity_id)
    if found is None:
        raise invalid_input("user_credential", [("identity_id", "names no identity")])
    return found.username


def _s3_username(gateway: StorageGateway, identity_id: uuid.UUID, identity_username: str,
                 username: str | None) -> str:
    """S3 keys need no local account: the mapped name identifies the credential."""
    mapped = connector_username(gateway, identity_id, identity_username, username)
    try:
        gateway_policies.check_user_allowed(mapped, gateway.document.get("users_allow"),
                                            gateway.document.get("users_deny"))
    except gateway_policies.AccessPolicyError as error:
        raise policy_refusal(error) from None
    return mapped


def create(
    session: Session, endpoint: Endpoint, caller: Caller, body: Mapping[str, Any],
    directory: IdentityDirectory, box: SecretBox,
) -> dict[str, Any]:
    values = schemas.USER_CREDENTIAL.parse(body, creating=True)
    gateway = _gateway(session, endpoint, values["storage_gateway_id"])
    if values.get("connector_id") not in (None, str(gateway.connector_id)):
        raise invalid_input("user_credential", [(
            "connector_id", f"must be the storage gateway's connector {gateway.connector_id}")])
    if webdav_gateways.is_webdav(gateway):
        raise gcs_error(422, f"Storage gateway {gateway.id} takes OAuth2 credentials: make "
                        "them with 'globus-connect-server user-credentials oauth-create'")
    identity_id = uuid.UUID(values.get("identity_id") or str(caller.identity_id))
    if identity_id not in caller.identities and not _manages_for_others(
            session, endpoint, caller, gateway):
        raise gcs_error(403, f"Identity {identity_id} is not in your identity set",
                        {"DATA_TYPE": "id_not_in_identity_set#1.0.0", "id": str(identity_id)})
    identity_username = _identity_username(caller, identity_id, directory)
    credential_id = uuid.uuid4()
    if gateway.connector_id in documents.S3_CONNECTORS:
        username = _s3_username(gateway, identity_id, identity_username, values.get("username"))
        policies, sealed = s3_gateways.seal_policies(box, gateway, credential_id,
                                                     values.get("policies"), None)
        document: dict[str, Any] = {"policies": policies, s3_gateways.SEALED: sealed,
                                    "home_directory": None}
    else:
        policies = _check_policies(gateway, values.get("policies"))
        found = standing(gateway, identity_id, identity_username, values.get("username"))
        username = found.account.name
        document = {"policies": policies, "home_directory": found.home_directory}
    duplicate = session.scalar(select(UserCredential.id).where(
        UserCredential.storage_gateway_id == gateway.id,
        UserCredential.identity_id == identity_id, UserCredential.username == username))
    if duplicate is not None:
        raise exists(f"Identity {identity_username} already has user credential {duplicate} "
                     f"for {username} on storage gateway {gateway.id}")
    credential = UserCredential(
        id=credential_id, endpoint_id=endpoint.id, storage_gateway_id=gateway.id,
        identity_id=identity_id, identity_username=identity_username, username=username,
        display_name=values.get("display_name"), invalid=False, document=document,
    )
    session.add(credential)
    session.flush()
    return documents.user_credential_document(credential, gateway)


def require_own(session: Session, endpoint: Endpoint, caller: Caller,
                credential_id: str) -> tuple[UserCredential, StorageGateway]:
    """One of the caller's credentials (or one they manage for others); 404 otherwise."""
    try:
        key = uuid.UUID(credential_id)
    except ValueError:
        raise not_found("User Credential", credential_id) from None
    credential = session.get(UserCredential, key)
    if credential is None or credential.endpoint_id != endpoint.id:
        raise not_found("User Credential", credential_id)
    gateway = session.get(StorageGateway, credential.storage_gateway_id)
    assert gateway is not None  # a foreign key keeps it
    if credential.identity_id not in caller.identities and not _manages_for_others(
            session, endpoint, caller, gateway):
        raise not_found("User Credential", credential_id)
    return credential, gateway


def list_documents(
    session: Session, endpoint: Endpoint, caller: Caller, params: Mapping[str, str]
) -> paging.Page:
    include = {value.strip() for value in params.get("include", "").split(",") if value.strip()}
    if include - {"all"}:
        raise bad_request("include accepts only all")
    statement = select(UserCredential).where(UserCredential.endpoint_id == endpoint.id)
    roles = authz.caller_roles(session, endpoint, caller)
    if "all" not in include or not roles.endpoint_admin:
        statement = statement.where(UserCredential.identity_id.in_(caller.identities))
    gateway_id = params.get("storage_gateway")
    if gateway_id:
        try:
            statement = statement.where(
                UserCredential.storage_gateway_id == uuid.UUID(gateway_id))
        except ValueError:
            raise bad_request("storage_gateway must be a UUID") from None
    request = paging.page_request(params)
    rows: list[UserCredential] = list(session.scalars(
        paging.paged(statement, UserCredential.created, UserCredential.id, request)))
    if not rows and not endpoint.public and not roles.any:
        raise gcs_error(403, "Could not list user credentials. Insufficient permissions")
    page = paging.page_of(rows, request)
    gateways = {gateway.id: gateway for gateway in session.scalars(select(
        StorageGateway).where(StorageGateway.id.in_({row.storage_gateway_id
                                                     for row in page.items})))}
    return paging.Page([documents.user_credential_document(row, gateways[row.storage_gateway_id])
                        for row in page.items], page.marker)


def get_document(session: Session, endpoint: Endpoint, caller: Caller,
                 credential_id: str) -> dict[str, Any]:
    credential, gateway = require_own(session, endpoint, caller, credential_id)
    return documents.user_credential_document(credential, gateway)


def update(
    session: Session, endpoint: Endpoint, caller: Caller, credential_id: str,
    body: Mapping[str, Any], box: SecretBox, *, replace: bool,
) -> dict[str, Any]:
    """PATCH (absent unchanged, null clears) or PUT; whose and where stay as made."""
    credential, gateway = require_own(session, endpoint, caller, credential_id)
    current = documents.user_credential_document(credential, gateway)
    values = schemas.USER_CREDENTIAL.parse(body, creating=False, stored=current)
    s3 = gateway.connector_id in documents.S3_CONNECTORS
    if "username" in values and values["username"] != credential.username:
        if webdav_gateways.is_webdav(gateway):
            raise gcs_error(422, "An OAuth2 credential's username is the one it was granted "
                            "for; make another with oauth-create")
        if s3:
            _s3_username(gateway, credential.identity_id, credential.identity_username,
                         values["username"])
        else:
            found = standing(gateway, credential.identity_id, credential.identity_username,
                             values["username"])
            credential.document = {**credential.document,
                                   "home_directory": found.home_directory}
        credential.username = values["username"]
    if "display_name" in values or replace:
        credential.display_name = values.get("display_name")
    if ("policies" in values or replace) and s3:
        policies, sealed = s3_gateways.seal_policies(box, gateway, credential.id,
                                                     values.get("policies"), credential.document)
        credential.document = {**credential.document, "policies": policies,
                               s3_gateways.SEALED: sealed}
    elif "policies" in values or replace:
        credential.document = {**credential.document,
                               "policies": _check_policies(gateway, values.get("policies"))}
    session.flush()
    return documents.user_credential_document(credential, gateway)


def delete(session: Session, endpoint: Endpoint, caller: Caller, credential_id: str) -> None:
    """Guest collections made with it stay, but answer `invalid_credential` until given
    another credential."""
    credential, _ = require_own(session, endpoint, caller, credential_id)
    session.delete(credential)
    session.flush()
