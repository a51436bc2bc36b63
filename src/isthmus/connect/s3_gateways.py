"""S3 and ActiveScale storage gateways: where a collection's files lie in object storage, and
the keys a user's credential holds for it.

The gateway's namespace is ``/<bucket>/<key>``: a collection's root names a bucket (and may
go on into a prefix of it). A user credential holds an S3 key pair (and, with the gateway's
``s3_allow_multi_keys``, more pairs each for some path prefixes); secret keys are sealed with
the server's `SecretBox`, bound to their credential, and never appear in a document again:
an update that leaves a secret out keeps the one stored for that key id, and an
``s3_multi_keys`` entry whose secret is null is removed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from isthmus.connect import schemas
from isthmus.connect.errors import gcs_error, invalid_input
from isthmus.connect.models import StorageGateway, UserCredential
from isthmus.connect.path_restrictions import within
from isthmus.core.encryption import SealedValueError, SecretBox
from isthmus.storage import paths
from isthmus.storage.errors import StorageError
from isthmus.storage.s3 import S3Credentials

# Where a credential keeps its sealed secrets, by key id (beside `policies`).
SEALED = "sealed_s3_secrets"


def _purpose(credential_id: uuid.UUID, key_id: str) -> str:
    return f"connect.user_credential.s3:{credential_id}:{key_id}"


def bucket_and_prefix(root_path: str) -> tuple[str, str]:
    """``/bucket/a/b`` -> ``("bucket", "a/b/")``; a root above every bucket is refused."""
    try:
        parts = paths.split(root_path)
    except StorageError as error:
        raise gcs_error(422, f"'{root_path}' is not an S3 path: {error.message}") from None
    if not parts:
        raise gcs_error(422, "A collection on an S3 storage gateway must be rooted in a "
                        "bucket: its base path starts with the bucket's name (/bucket/...)")
    return parts[0], "".join(part + "/" for part in parts[1:])


def endpoint_url(gateway: StorageGateway) -> str | None:
    """The gateway's ``s3_endpoint`` (None: AWS itself)."""
    policies = gateway.document.get("policies") or {}
    value = policies.get("s3_endpoint")
    return str(value) if value else None


def credential_required(gateway: StorageGateway) -> bool:
    """Without ``s3_user_credential_required: false`` every user brings their own keys;
    with it, users without a credential act with the server's own (boto3's default chain)."""
    policies = gateway.document.get("policies") or {}
    return policies.get("s3_user_credential_required") is not False


def seal_policies(
    box: SecretBox, gateway: StorageGateway, credential_id: uuid.UUID, policies: Any,
    stored: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The policies as stored (every secret null) and the sealed secrets by key id.

    ``stored`` is the credential's current document when updating (None when creating)."""
    try:
        checked: dict[str, Any] = schemas.s3_user_credential_policies(
            policies if policies is not None else {})
    except schemas.InvalidValueError as error:
        raise invalid_input("user_credential", [("policies", str(error))]) from None
    previous: dict[str, str] = dict((stored or {}).get(SEALED) or {})
    sealed: dict[str, str] = {}

    def keep(key_id: str, secret: str | None, where: str) -> None:
        if secret is not None:
            sealed[key_id] = box.seal(secret, _purpose(credential_id, key_id))
        elif key_id in previous:
            sealed[key_id] = previous[key_id]
        else:
            raise invalid_input("user_credential", [(where, "needs the s3_secret_key of "
                                                     f"the key {key_id}")])

    if not checked.get("s3_key_id"):
        raise invalid_input("user_credential", [("policies", "needs s3_key_id and "
                                                 "s3_secret_key")])
    keep(checked["s3_key_id"], checked.get("s3_secret_key"), "policies")
    checked["s3_secret_key"] = None
    entries = checked.get("s3_multi_keys")
    if entries:
        gateway_policies = gateway.document.get("policies") or {}
        if not gateway_policies.get("s3_allow_multi_keys"):
            raise gcs_error(422, f"Storage gateway {gateway.id} does not allow more than one "
                            "key pair per credential (s3_allow_multi_keys)")
        kept = []
        for index, entry in enumerate(entries):
            if "s3_secret_key" in entry and entry["s3_secret_key"] is None:
                continue  # a null secret removes the entry
            keep(entry["s3_key_id"], entry.get("s3_secret_key"), f"s3_multi_keys.{index}")
            kept.append({**entry, "s3_secret_key": None})
        checked["s3_multi_keys"] = kept
    return checked, sealed


def keys_for(box: SecretBox, credential: UserCredential, path: str) -> S3Credentials:
    """The key pair a credential uses at ``path`` (gateway namespace): the multi-key entry
    with the longest path prefix holding it, else the credential's own pair."""
    policies = credential.document.get("policies") or {}
    key_id = str(policies.get("s3_key_id") or "")
    longest = -1
    for entry in policies.get("s3_multi_keys") or ():
        for prefix in entry.get("path_prefixes") or ():
            if within(paths.normalize(prefix), path) is not None and len(prefix) > longest:
                key_id, longest = entry["s3_key_id"], len(prefix)
    sealed = (credential.document.get(SEALED) or {}).get(key_id)
    if sealed is None:
        raise SealedValueError(f"no secret is stored for the key {key_id}")
    return S3Credentials(key_id, box.open(sealed, _purpose(credential.id, key_id)))
