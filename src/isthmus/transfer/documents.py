"""Transfer's endpoint document, with every key a real one carries (null where unused)."""

from __future__ import annotations

from typing import Any

from isthmus.core.registry import GCSV5_ENDPOINT
from isthmus.transfer.models import RegistryEntity

# Every key of a real endpoint document, with the value it has when nothing says otherwise.
# The CLI indexes some directly (`is_globus_connect`, `display_name`, `canonical_name`).
_DEFAULTS: dict[str, Any] = {
    "name": None, "username": None, "description": None, "organization": None,
    "department": None, "keywords": None, "contact_email": None, "contact_info": None,
    "info_link": None, "user_message": None, "user_message_link": None,
    "subscription_id": None, "subscription_admin_verified": False, "default_directory": None,
    "force_encryption": False, "force_verify": False, "disable_verify": False,
    "disable_anonymous_writes": False, "mfa_required": False, "high_assurance": False,
    "authentication_timeout_mins": None, "authentication_assurance_timeout": None,
    "authentication_policy_id": None, "acl_max_expiration_period_mins": None,
    "is_globus_connect": False, "gcp_connected": None, "gcp_paused": None,
    "gcs_version": None, "gcs_manager_url": None, "tlsftp_server": None, "https_server": None,
    "globus_connect_setup_key": None, "host_endpoint": None, "host_endpoint_id": None,
    "host_endpoint_display_name": None, "host_path": None, "sharing_target_endpoint": None,
    "sharing_target_root_path": None, "mapped_collection_id": None,
    "mapped_collection_display_name": None, "non_functional": False,
    "non_functional_endpoint_id": None, "non_functional_endpoint_display_name": None,
    "shareable": False, "acl_available": False, "acl_editable": False, "in_use": False,
    "network_use": None, "location": None, "max_concurrency": None,
    "preferred_concurrency": None, "max_parallelism": None, "preferred_parallelism": None,
    "local_user_info_available": None, "activated": False, "expires_in": -1,
    "expire_time": None, "myproxy_server": None, "myproxy_dn": None, "oauth_server": None,
    "s3_url": None, "s3_owner_activated": False, "requester_pays": False,
    "french_english_bilingual": False, "last_accessed_time": None,
    "auto_delete_timeout": None, "skip_auto_delete": False, "storage_type": None,
    "is_go_storage": False,
}


def canonical_name(entity: RegistryEntity) -> str:
    """The legacy name: ``<endpoint id>#<id>`` for GCSv5 endpoints and collections."""
    return f"{entity.endpoint_id}#{entity.id}"


def endpoint_document(entity: RegistryEntity, my_roles: list[str], in_use: bool) -> dict[str, Any]:
    """The document `get_endpoint` returns and `endpoint_search` lists, for one caller."""
    document: dict[str, Any] = {"DATA_TYPE": "endpoint", "DATA": [], **_DEFAULTS}
    document.update({key: value for key, value in entity.attributes.items() if key in _DEFAULTS})
    document.update({
        "id": str(entity.id),
        "display_name": entity.display_name,
        "canonical_name": canonical_name(entity),
        "entity_type": entity.entity_type,
        "owner_id": str(entity.endpoint_id),
        "owner_string": entity.owner_string,
        "public": entity.public,
        "host_endpoint_id": str(entity.host_endpoint_id) if entity.host_endpoint_id else None,
        "non_functional": entity.entity_type == GCSV5_ENDPOINT,
        "my_effective_roles": my_roles,
        "in_use": in_use,
    })
    return document
