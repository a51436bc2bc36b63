"""The documents the Manager API returns: info, endpoint, storage gateway, collection, role.

Each carries its ``DATA_TYPE`` (the SDK finds a resource in ``data`` by it).
Stored settable fields come first, then the fields the server computes.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from isthmus.connect import schemas
from isthmus.connect.models import (
    Collection,
    Endpoint,
    Node,
    Role,
    SharingPolicy,
    StorageGateway,
    UserCredential,
)

API_VERSION = "1.32.0"
MANAGER_VERSION = "5.4.76"
POSIX_CONNECTOR_ID = uuid.UUID("145812c8-decc-41f1-83cf-bb2a85a2a70b")
S3_CONNECTOR_ID = uuid.UUID("7643e831-5f6c-4b47-a07f-8ee90f401d23")
ACTIVESCALE_CONNECTOR_ID = uuid.UUID("7251f6c8-93c9-11eb-95ba-12704e0d6a4d")
# Isthmus's own: a WebDAV server behind OAuth2 (no GCS connector speaks WebDAV).
WEBDAV_CONNECTOR_ID = uuid.UUID("afe5e740-c8ed-4433-a2e0-d65747275517")
# The connectors this server has, by id: what `connector_id` may name.
CONNECTORS = {POSIX_CONNECTOR_ID: "POSIX", S3_CONNECTOR_ID: "S3",
              ACTIVESCALE_CONNECTOR_ID: "ActiveScale", WEBDAV_CONNECTOR_ID: "WebDAV"}
# Those that reach object storage through S3's API with users' keys.
S3_CONNECTORS = frozenset({S3_CONNECTOR_ID, ACTIVESCALE_CONNECTOR_ID})
# A gateway's sealed client secret: kept in its document, never shown.
SEALED_SECRET = "sealed_client_secret"
DEFAULT_AUTHENTICATION_TIMEOUT_MINS = 15840  # 11 days, as GCS

# Private gateway and collection fields: shown with include=private_policies to administrators.
PRIVATE_GATEWAY_FIELDS = ("restrict_paths", "users_allow", "users_deny")
PRIVATE_GATEWAY_POLICY_FIELDS = ("groups_allow", "groups_deny")
PRIVATE_COLLECTION_FIELDS = ("sharing_restrict_paths", "sharing_users_allow",
                             "sharing_users_deny", "policies")
# Stored with a collection, set through their own routes (see `collection_admin`), and kept
# when a PUT replaces the document: the owner Transfer advertises (never in the Manager's
# document) and the subscription administrator's mark.
COLLECTION_OWNER_STRING = "owner_string"
COLLECTION_VERIFIED = "subscription_admin_verified"
COLLECTION_KEPT_FIELDS = (COLLECTION_OWNER_STRING, COLLECTION_VERIFIED)


def _date(value: Any) -> str | None:
    return value.date().isoformat() if value is not None else None


def info_documents(endpoint: Endpoint, domain_name: str) -> list[dict[str, Any]]:
    return [
        {"DATA_TYPE": "info#1.0.0", "api_version": API_VERSION, "client_id": str(endpoint.id),
         "endpoint_id": str(endpoint.id), "domain_name": domain_name,
         "manager_version": MANAGER_VERSION},
        *({"DATA_TYPE": "connector#1.1.0", "display_name": name, "id": str(connector_id),
           "version": MANAGER_VERSION, "is_ha": False, "is_baa": False}
          for connector_id, name in CONNECTORS.items()),
    ]


def endpoint_document(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "DATA_TYPE": schemas.ENDPOINT.data_type,
        **endpoint.document,
        "id": str(endpoint.id),
        "display_name": endpoint.display_name,
        "public": endpoint.public,
        "gcs_manager_url": manager_url(endpoint),
        "earliest_last_access": None,
    }


def gateway_document(gateway: StorageGateway, *, private: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "DATA_TYPE": schemas.STORAGE_GATEWAY.data_type,
        **gateway.document,
        "id": str(gateway.id),
        "display_name": gateway.display_name,
        "connector_id": str(gateway.connector_id),
        "high_assurance": gateway.high_assurance,
        "require_high_assurance": gateway.high_assurance,
        "authentication_assurance_timeout": gateway.document.get("authentication_timeout_mins"),
        "deleted": False,
    }
    document.pop(SEALED_SECRET, None)
    if not private:
        for key in PRIVATE_GATEWAY_FIELDS:
            document.pop(key, None)
        policies = document.get("policies")
        if isinstance(policies, dict):
            document["policies"] = {key: value for key, value in policies.items()
                                    if key not in PRIVATE_GATEWAY_POLICY_FIELDS}
    return document


def _on_host(url: str, host: str | None) -> str:
    """``url`` with ``host`` (a custom domain) in place of its own; port and path stay."""
    if not host or not url:
        return url
    parts = urlsplit(url)
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def manager_url(endpoint: Endpoint) -> str:
    """The Manager URL the endpoint advertises: under its custom domain, if it has one."""
    return _on_host(endpoint.manager_url, endpoint.custom_domain)


def https_url(endpoint: Endpoint, collection: Collection) -> str:
    """Where a collection's files are reached over HTTPS: a path under its custom domain,
    or else the endpoint's advertised host."""
    base = _on_host(endpoint.manager_url, collection.custom_domain or endpoint.custom_domain)
    return f"{base}/data/{collection.id}"


def collection_document(
    endpoint: Endpoint, gateway: StorageGateway, collection: Collection, *,
    private: bool, root_path: str | None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "DATA_TYPE": schemas.COLLECTION.data_type,
        **{key: value for key, value in collection.document.items()
           if key != COLLECTION_OWNER_STRING},
        "collection_type": collection.collection_type,
        "id": str(collection.id),
        "display_name": collection.display_name,
        "public": collection.public,
        "identity_id": str(collection.identity_id) if collection.identity_id else None,
        "storage_gateway_id": str(gateway.id),
        "connector_id": str(gateway.connector_id),
        "high_assurance": gateway.high_assurance,
        "require_mfa": bool(gateway.document.get("require_mfa", False)),
        "authentication_timeout_mins": gateway.document.get(
            "authentication_timeout_mins", DEFAULT_AUTHENTICATION_TIMEOUT_MINS),
        "manager_url": manager_url(endpoint),
        "https_url": https_url(endpoint, collection),
        # Set through /api/collections/{id}/domain (`domains`), certificate shown there.
        "domain": {"DATA_TYPE": schemas.DOMAIN.data_type,
                   "domain_name": collection.custom_domain, "wildcard": False}
        if collection.custom_domain else None,
        # Isthmus moves data over HTTPS only; it runs no GridFTP server.
        "tlsftp_url": None,
        "root_path": root_path,
        "created_at": _date(collection.created),
        "last_access": _date(collection.last_access),
        "deleted": False,
        COLLECTION_VERIFIED: bool(collection.document.get(COLLECTION_VERIFIED, False)),
    }
    if collection.mapped_collection_id is not None:
        document["mapped_collection_id"] = str(collection.mapped_collection_id)
    if not private:
        for key in PRIVATE_COLLECTION_FIELDS:
            document.pop(key, None)
    return document


def role_document(role: Role) -> dict[str, Any]:
    return {
        "DATA_TYPE": schemas.ROLE.data_type,
        "id": str(role.id),
        "collection": str(role.collection_id) if role.collection_id else None,
        "principal": role.principal,
        "role": role.role,
    }



# Where a node's Manager is reached: kept with the node, not a field of node#1.x.
NODE_MANAGER_URL = "manager_url"


def node_document(node: Node) -> dict[str, Any]:
    return {
        "DATA_TYPE": schemas.NODE.data_type,
        **{key: value for key, value in node.document.items() if key != NODE_MANAGER_URL},
        "id": str(node.id),
        "status": node.status,
    }


def user_credential_document(credential: UserCredential, gateway: StorageGateway) -> dict[str, Any]:
    return {
        "DATA_TYPE": schemas.USER_CREDENTIAL.data_type,
        "id": str(credential.id),
        "identity_id": str(credential.identity_id),
        "storage_gateway_id": str(gateway.id),
        "connector_id": str(gateway.connector_id),
        "username": credential.username,
        "display_name": credential.display_name,
        "policies": credential.document.get("policies"),
        "home_directory": credential.document.get("home_directory"),
        "invalid": credential.invalid,
        # POSIX credentials are made by their users, never provisioned at login.
        "provisioned": True,
        "deleted": False,
    }


def sharing_policy_document(policy: SharingPolicy) -> dict[str, Any]:
    return {
        "DATA_TYPE": schemas.SHARING_POLICY.data_type,
        "id": str(policy.id),
        "collection_id": str(policy.collection_id),
        "users": policy.users,
        "sharing_restrict_paths": policy.sharing_restrict_paths,
    }
