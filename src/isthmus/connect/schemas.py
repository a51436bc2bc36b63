"""The GCS Manager's input documents: which fields each type has, and how each is checked.

A `Schema` knows a document type's accepted ``DATA_TYPE`` versions and its
fields: settable (``rw``), settable only at creation (``create``), or computed
by the server (``ro``: accepted when equal to the stored value, as scripts that
send back a fetched document do). Fields are accepted under any accepted
version, even one older than the version that introduced them: the SDK sends
``posix_collection_policies#1.0.0`` with 1.1.0's fields.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from isthmus.connect.errors import bad_request, invalid_input

Check = Callable[[Any], Any]
RW, CREATE, RO = "rw", "create", "ro"


class InvalidValueError(ValueError):
    """A field value that does not fit its type; the message says how."""


# What JSON each check accepts, as a JSON Schema, for the OpenAPI document (`openapi`).
JSON_SCHEMAS: dict[Check, dict[str, Any]] = {}


def described(check: Check, json_schema: dict[str, Any]) -> Check:
    JSON_SCHEMAS[check] = json_schema
    return check


def json_schema_of(check: Check) -> dict[str, Any]:
    return JSON_SCHEMAS.get(check, {})


# --- checks ---------------------------------------------------------------------------


def text(max_length: int = 1024, *, single_line: bool = False, non_empty: bool = False) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidValueError("must be a string")
        if len(value) > max_length:
            raise InvalidValueError(f"must have at most {max_length} characters")
        if single_line and ("\n" in value or "\r" in value):
            raise InvalidValueError("must not contain line breaks")
        if non_empty and not value.strip():
            raise InvalidValueError("must not be empty")
        return value

    return described(check, {"type": "string", "maxLength": max_length,
                             **({"minLength": 1} if non_empty else {})})


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidValueError("must be true or false")
    return value


described(boolean, {"type": "boolean"})


def integer(minimum: int, maximum: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValueError("must be an integer")
        if not minimum <= value <= maximum:
            raise InvalidValueError(f"must be between {minimum} and {maximum}")
        return value

    return described(check, {"type": "integer", "minimum": minimum, "maximum": maximum})


def uuid_text(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidValueError("must be a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidValueError("must be a UUID") from None


described(uuid_text, {"type": "string", "format": "uuid"})


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str:
        if value not in choices:
            raise InvalidValueError(f"must be one of {', '.join(choices)}")
        return str(value)

    return described(check, {"type": "string", "enum": list(choices)})


def text_list(max_items: int = 256, item: Check | None = None) -> Check:
    item_check = item or text(1024)

    def check(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise InvalidValueError("must be a list")
        if len(value) > max_items:
            raise InvalidValueError(f"must have at most {max_items} items")
        checked = []
        for index, entry in enumerate(value):
            try:
                checked.append(item_check(entry))
            except InvalidValueError as error:
                raise InvalidValueError(f"item {index} {error}") from None
        return checked

    return described(check, {"type": "array", "maxItems": max_items,
                             "items": json_schema_of(item_check)})


_DOMAIN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$")


def domain_name(value: Any) -> str:
    if not isinstance(value, str) or not _DOMAIN.match(value.lower()) or len(value) > 253:
        raise InvalidValueError("must be a DNS domain name")
    return value.lower()


described(domain_name, {"type": "string", "maxLength": 253, "pattern": _DOMAIN.pattern})


def absolute_path(value: Any) -> str:
    path: str = text(4096, single_line=True, non_empty=True)(value)
    if not path.startswith(("/", "~", "$HOME", "$USER")):
        raise InvalidValueError("must be an absolute path (or start with ~, $HOME or $USER)")
    if ".." in path.split("/"):
        raise InvalidValueError("must not contain '..' segments")
    return path


described(absolute_path, {"type": "string", "minLength": 1, "maxLength": 4096})


def typed_document(data_type: str, fields: Mapping[str, Check],
                   required: tuple[str, ...] = ()) -> Check:
    """A nested document tagged ``<data_type>#1.x.0`` with exactly these fields."""

    def check(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise InvalidValueError(f"must be a {data_type} document")
        tag = value.get("DATA_TYPE", f"{data_type}#1.0.0")
        if not isinstance(tag, str) or not re.fullmatch(re.escape(data_type) + r"#1\.\d+\.0",
                                                          tag):
            raise InvalidValueError(f"DATA_TYPE must be {data_type}#1.x.0")
        checked: dict[str, Any] = {"DATA_TYPE": tag}
        for key, inner in value.items():
            if key == "DATA_TYPE":
                continue
            if key not in fields:
                raise InvalidValueError(f"has an unknown property {key!r}")
            try:
                checked[key] = None if inner is None else fields[key](inner)
            except InvalidValueError as error:
                raise InvalidValueError(f"{key} {error}") from None
        missing = [key for key in required if checked.get(key) is None]
        if missing:
            raise InvalidValueError(f"needs {', '.join(missing)}")
        return checked

    return described(check, _document_schema(data_type, fields, required))


def data_type_schema(name: str) -> dict[str, Any]:
    return {"type": "string", "pattern": "^" + re.escape(name) + r"#1\.[0-9]+\.0$"}


def _document_schema(data_type: str, fields: Mapping[str, Check],
                    required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "properties": {"DATA_TYPE": data_type_schema(data_type),
                           **{key: json_schema_of(inner) for key, inner in fields.items()}},
            **({"required": list(required)} if required else {})}


def any_of(*checks: Check, message: str) -> Check:
    """The first check that accepts the value (documents told apart by DATA_TYPE)."""

    def check(value: Any) -> Any:
        tag = value.get("DATA_TYPE") if isinstance(value, dict) else None
        for candidate in checks:
            try:
                return candidate(value)
            except InvalidValueError as error:
                if isinstance(tag, str) and str(error).startswith("DATA_TYPE"):
                    continue
                raise
        raise InvalidValueError(message)

    return described(check, {"anyOf": [json_schema_of(candidate) for candidate in checks]})


_paths = text_list(256, text(4096, single_line=True, non_empty=True))
path_restrictions = typed_document(
    "path_restrictions", {"read": _paths, "read_write": _paths, "none": _paths})

_expression_rule = typed_document("expression_identity_mapping_rule", {
    "source": text(1024, non_empty=True), "match": text(1024, non_empty=True),
    "output": text(1024), "ignore_case": boolean, "literal": boolean,
}, required=("source", "match", "output"))
identity_mapping = any_of(
    typed_document("expression_identity_mapping",
                   {"mappings": text_list(256, _expression_rule)}, required=("mappings",)),
    typed_document("external_identity_mapping",
                   {"command": text_list(64, text(4096, non_empty=True))},
                   required=("command",)),
    message="must be an expression_identity_mapping or external_identity_mapping document",
)

_groups = text_list(256, text(256, single_line=True, non_empty=True))
posix_storage_policies = typed_document(
    "posix_storage_policies", {"groups_allow": _groups, "groups_deny": _groups})
posix_collection_policies = typed_document(
    "posix_collection_policies",
    {"sharing_groups_allow": _groups, "sharing_groups_deny": _groups})
posix_user_credential_policies = typed_document("posix_user_credential_policies", {})


def url(value: Any) -> str:
    checked: str = text(2048, single_line=True, non_empty=True)(value)
    if not re.match(r"^https?://[^/\s]+", checked):
        raise InvalidValueError("must be an http or https URL")
    return checked


described(url, {"type": "string", "maxLength": 2048, "pattern": r"^https?://[^/\s]+"})

_bucket = text(63, single_line=True, non_empty=True)
# S3 and ActiveScale share one policy document, as in GCS (1.3.0's fields included).
s3_storage_policies = typed_document("s3_storage_policies", {
    "s3_endpoint": url, "s3_buckets": text_list(1024, _bucket),
    "s3_user_credential_required": boolean, "s3_allow_multi_keys": boolean,
    "s3_requester_pays": boolean, "s3_restore": boolean,
    "s3_storage_class": text(64, single_line=True),
})
s3_collection_policies = typed_document("s3_collection_policies", {})
_s3_key_id = text(128, single_line=True, non_empty=True)
_s3_secret = text(256, single_line=True, non_empty=True)


def _s3_multi_key(value: Any) -> dict[str, Any]:
    """One ``s3_multi_keys`` entry; a null secret (in an update) deletes the entry."""
    if not isinstance(value, dict):
        raise InvalidValueError("must be an object")
    unknown = set(value) - {"path_prefixes", "s3_key_id", "s3_secret_key"}
    if unknown:
        raise InvalidValueError(f"has an unknown property {sorted(unknown)[0]!r}")
    entry: dict[str, Any] = {
        "path_prefixes": text_list(256, absolute_path)(value.get("path_prefixes", [])),
        "s3_key_id": _s3_key_id(value.get("s3_key_id")),
    }
    if "s3_secret_key" in value:
        secret = value["s3_secret_key"]
        entry["s3_secret_key"] = None if secret is None else _s3_secret(secret)
    return entry


described(_s3_multi_key, {
    "type": "object", "additionalProperties": False, "required": ["s3_key_id"],
    "properties": {"path_prefixes": {"type": "array", "maxItems": 256,
                                     "items": json_schema_of(absolute_path)},
                   "s3_key_id": json_schema_of(_s3_key_id),
                   "s3_secret_key": {"anyOf": [json_schema_of(_s3_secret), {"type": "null"}]}}})

s3_user_credential_policies = typed_document("s3_user_credential_policies", {
    "s3_key_id": _s3_key_id, "s3_secret_key": _s3_secret, "s3_requester_pays": boolean,
    "s3_multi_keys": text_list(100, _s3_multi_key),
})

_DOMAIN_FIELDS: dict[str, Check] = {
    "domain_name": domain_name, "wildcard": boolean, "certificate": text(65536),
    "certificate_chain": text(65536), "private_key": text(65536),
    "certificate_path": text(4096), "certificate_chain_path": text(4096),
    "private_key_path": text(4096),
}
# Files on a node's disk, which GCS reads; Isthmus takes the PEM text only.
DOMAIN_PATH_FIELDS = ("certificate_path", "certificate_chain_path", "private_key_path")


def json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidValueError("must be an object")
    return value


def uuid_or_default(value: Any) -> str:
    # "DEFAULT" names the caller's only subscription; Isthmus stores it as given.
    return "DEFAULT" if value == "DEFAULT" else uuid_text(value)


described(json_object, {"type": "object"})
described(uuid_or_default, {"anyOf": [{"type": "string", "format": "uuid"},
                                      {"type": "string", "enum": ["DEFAULT"]}]})


# --- schemas ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    check: Check
    mode: str = RW
    nullable: bool = True
    # For collections: which collection types may set it.
    applies: frozenset[str] = frozenset({"mapped", "guest"})


@dataclass(frozen=True)
class Schema:
    name: str
    newest_minor: int
    fields: Mapping[str, Field]
    required: tuple[str, ...] = ()
    ignored: frozenset[str] = field(default_factory=frozenset)

    @property
    def data_type(self) -> str:
        return f"{self.name}#1.{self.newest_minor}.0"

    def check_data_type(self, document: Mapping[str, Any]) -> None:
        tag = document.get("DATA_TYPE")
        if not isinstance(tag, str):
            raise bad_request(f"The document needs a DATA_TYPE of {self.name}#1.x.0")
        match = re.fullmatch(re.escape(self.name) + r"#1\.(\d+)\.0", tag)
        if match is None or int(match.group(1)) > self.newest_minor:
            raise bad_request(
                f"Unsupported DATA_TYPE {tag!r}: this server accepts {self.name}#1.0.0 "
                f"to {self.data_type}")

    def parse(
        self,
        document: Mapping[str, Any],
        *,
        creating: bool,
        stored: Mapping[str, Any] | None = None,
        kind: str | None = None,
    ) -> dict[str, Any]:
        """The fields a request sets (``None`` for an explicit null: clear it).

        ``stored`` is the current document (with read-only fields) when updating;
        ``kind`` the collection type, whose fields alone apply.
        """
        self.check_data_type(document)
        stored = stored or {}
        problems: list[tuple[str, str]] = []
        values: dict[str, Any] = {}
        for key, value in document.items():
            if key == "DATA_TYPE" or key in self.ignored:
                continue
            spec = self.fields.get(key)
            if spec is None or (kind is not None and kind not in spec.applies):
                problems.append((key, "is not a property of this document"))
                continue
            if spec.mode == RO or (spec.mode == CREATE and not creating):
                if value != stored.get(key):
                    problems.append((key, "is read-only" if spec.mode == RO else
                                     "can only be set when the resource is created"))
                continue
            if value is None:
                if not spec.nullable:
                    problems.append((key, "must not be null"))
                else:
                    values[key] = None
                continue
            try:
                values[key] = spec.check(value)
            except InvalidValueError as error:
                problems.append((key, str(error)))
        if creating:
            problems.extend((key, "is required") for key in self.required
                            if values.get(key) is None)
        if problems:
            raise invalid_input(self.name, problems)
        return values

    def json_schema(self, *, creating: bool) -> dict[str, Any]:
        """The document as JSON Schema: server-computed fields read-only, and at creation
        the required ones required."""
        properties: dict[str, Any] = {"DATA_TYPE": data_type_schema(self.name)}
        for key, spec in self.fields.items():
            inner = json_schema_of(spec.check)
            if spec.nullable:
                inner = {"anyOf": [inner, {"type": "null"}]}
            if spec.mode == RO or (spec.mode == CREATE and not creating):
                inner = {**inner, "readOnly": True}
            properties[key] = inner
        required = ["DATA_TYPE", *(self.required if creating else ())]
        return {"type": "object", "properties": properties, "required": required}


_STRING_FIELDS = {
    "contact_email": Field(text(256, single_line=True)),
    "contact_info": Field(text(4096)),
    "department": Field(text(1024, single_line=True)),
    "description": Field(text(4096)),
    "info_link": Field(text(1024, single_line=True)),
    "organization": Field(text(1024, single_line=True)),
    "keywords": Field(text_list(64, text(256, single_line=True))),
}
_DISPLAY_NAME = Field(text(128, single_line=True, non_empty=True), nullable=False)
_TUNING = {name: Field(integer(1, 1000)) for name in (
    "max_concurrency", "preferred_concurrency", "max_parallelism", "preferred_parallelism")}
NETWORK_USE = ("normal", "minimal", "aggressive", "custom")

ENDPOINT = Schema("endpoint", 2, {
    "display_name": _DISPLAY_NAME,
    "public": Field(boolean, nullable=False),
    "network_use": Field(one_of(*NETWORK_USE), nullable=False),
    **_TUNING,
    **_STRING_FIELDS,
    "allow_udt": Field(boolean, nullable=False),
    "subscription_id": Field(uuid_or_default),
    "gridftp_control_channel_port": Field(integer(1, 65535)),
    "id": Field(uuid_text, RO),
    "gcs_manager_url": Field(text(), RO),
    "earliest_last_access": Field(text(), RO),
}, required=("display_name",))

STORAGE_GATEWAY = Schema("storage_gateway", 3, {
    "display_name": _DISPLAY_NAME,
    "connector_id": Field(uuid_text, CREATE, nullable=False),
    "root": Field(absolute_path),
    "allowed_domains": Field(text_list(64, domain_name), nullable=False),
    "identity_mappings": Field(text_list(64, identity_mapping)),
    "policies": Field(json_object),  # checked against the connector's own policy schema
    "restrict_paths": Field(path_restrictions),
    "users_allow": Field(text_list(1024, text(256, single_line=True, non_empty=True))),
    "users_deny": Field(text_list(1024, text(256, single_line=True, non_empty=True))),
    "high_assurance": Field(boolean, CREATE, nullable=False),
    "require_mfa": Field(boolean, nullable=False),
    "authentication_timeout_mins": Field(integer(1, 10_000_000)),
    "admin_managed_credentials": Field(boolean, nullable=False),
    "network_use": Field(one_of(*NETWORK_USE)),
    **_TUNING,
    "process_user": Field(text(256, single_line=True)),
    "load_dsi_module": Field(text(256, single_line=True)),
    "id": Field(uuid_text, RO),
    "deleted": Field(boolean, RO),
    "require_high_assurance": Field(boolean, RO),
    "authentication_assurance_timeout": Field(integer(0, 10_000_000), RO),
}, required=("display_name", "connector_id", "allowed_domains"))

_MAPPED = frozenset({"mapped"})
_GUEST = frozenset({"guest"})
_BOTH = frozenset({"mapped", "guest"})
HTTPS_METHODS = ("GET", "PUT", "DELETE")

COLLECTION = Schema("collection", 16, {
    "display_name": _DISPLAY_NAME,
    "collection_base_path": Field(absolute_path, CREATE),
    "identity_id": Field(uuid_text, nullable=False),
    "public": Field(boolean, nullable=False),
    "default_directory": Field(text(4096, single_line=True)),
    **_STRING_FIELDS,
    "disable_verify": Field(boolean, nullable=False),
    "force_encryption": Field(boolean, nullable=False),
    "force_verify": Field(boolean, nullable=False),
    "enable_https": Field(boolean, nullable=False),
    "https_methods": Field(text_list(3, one_of(*HTTPS_METHODS))),
    # Set through its own route, where the certificate is checked (`domains`).
    "domain": Field(json_object, RO),
    "acl_expiration_mins": Field(integer(1, 10_000_000)),
    "associated_flow_policy": Field(json_object),
    "preserve_modtime": Field(one_of("inbound", "outbound", "all")),
    # mapped only
    "storage_gateway_id": Field(uuid_text, CREATE, nullable=False, applies=_MAPPED),
    "domain_name": Field(domain_name, CREATE, applies=_MAPPED),
    "user_message": Field(text(256), applies=_MAPPED),
    "user_message_link": Field(text(1024, single_line=True), applies=_MAPPED),
    "allow_guest_collections": Field(boolean, nullable=False, applies=_MAPPED),
    "sharing_restrict_paths": Field(path_restrictions, applies=_MAPPED),
    "sharing_users_allow": Field(text_list(1024, text(256, single_line=True)), applies=_MAPPED),
    "sharing_users_deny": Field(text_list(1024, text(256, single_line=True)), applies=_MAPPED),
    "policies": Field(json_object, applies=_MAPPED),
    "disable_anonymous_writes": Field(boolean, nullable=False, applies=_MAPPED),
    "guest_auth_policy_id": Field(uuid_text, applies=_MAPPED),
    "delete_protected": Field(boolean, nullable=False, applies=_MAPPED),
    "restrict_transfers_to_high_assurance": Field(one_of("inbound", "outbound", "all"),
                                                  applies=_MAPPED),
    "auto_delete_timeout": Field(integer(1, 100_000), applies=_MAPPED),
    # guest only
    "mapped_collection_id": Field(uuid_text, CREATE, nullable=False, applies=_GUEST),
    "user_credential_id": Field(uuid_text, nullable=False, applies=_GUEST),
    "skip_auto_delete": Field(boolean, nullable=False, applies=_GUEST),
    "activity_notification_policy": Field(json_object, applies=_GUEST),
    # computed by the server
    **{name: Field(json_object, RO, applies=_BOTH) for name in (
        "id", "root_path", "https_url", "tlsftp_url", "manager_url", "connector_id",
        "high_assurance", "authentication_timeout_mins", "require_mfa", "created_at",
        "last_access", "deleted", "subscription_admin_verified")},
}, required=("display_name",), ignored=frozenset({"collection_type"}))

ROLE = Schema("role", 0, {
    "collection": Field(uuid_text),
    "principal": Field(text(200, single_line=True, non_empty=True), nullable=False),
    "role": Field(text(40, single_line=True, non_empty=True), nullable=False),
    "id": Field(uuid_text, RO),
}, required=("principal", "role"))


def ip_address(value: Any) -> str:
    import ipaddress

    if not isinstance(value, str):
        raise InvalidValueError("must be an IP address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidValueError("must be an IP address") from None


described(ip_address, {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})


def port_range(value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) != 2:
        raise InvalidValueError("must be a list of two port numbers [low, high]")
    low, high = (integer(1024, 65535)(port) for port in value)
    if low > high:
        raise InvalidValueError("must not start above its end")
    return [low, high]


described(port_range, {"type": "array", "minItems": 2, "maxItems": 2,
                       "items": {"type": "integer", "minimum": 1024, "maximum": 65535}})


_lan_address = typed_document("lan_address", {
    "address": ip_address, "network_name": text(256, single_line=True)},
    required=("address",))


def _lan_addresses(value: Any) -> list[Any]:
    # lan_addresses entries carry no DATA_TYPE of their own in node#1.3.0.
    if not isinstance(value, list):
        raise InvalidValueError("must be a list")
    return [_lan_address({"DATA_TYPE": "lan_address#1.0.0", **item})
            if isinstance(item, dict) else _lan_address(item) for item in value]


described(_lan_addresses, {"type": "array", "items": json_schema_of(_lan_address)})


NODE = Schema("node", 3, {
    "ip_addresses": Field(text_list(16, ip_address), nullable=False),
    "status": Field(one_of("active", "inactive"), nullable=False),
    "incoming_port_range": Field(port_range),
    "outgoing_port_range": Field(port_range),
    "data_interface": Field(ip_address),
    "data_interface6": Field(ip_address),
    "lan_addresses": Field(_lan_addresses),
    "internal_stream_port_range": Field(port_range),
    "id": Field(uuid_text, RO),
}, required=("ip_addresses", "status"))

ENDPOINT_OWNER = Schema("endpoint_owner", 0, {"identity_id": Field(uuid_text, nullable=False)},
                        required=("identity_id",))
OWNER_STRING = Schema("owner_string", 0, {"identity_id": Field(uuid_text, nullable=False)},
                      required=("identity_id",))
ENDPOINT_SUBSCRIPTION = Schema("endpoint_subscription", 0,
                               {"subscription_id": Field(uuid_or_default)})
COLLECTION_OWNER = Schema("collection_owner", 0,
                          {"identity_id": Field(uuid_text, nullable=False)},
                          required=("identity_id",))
SUBSCRIPTION_ADMIN_VERIFIED = Schema(
    "subscription_admin_verified", 0,
    {"subscription_admin_verified": Field(boolean, nullable=False)},
    required=("subscription_admin_verified",))
BATCH = Schema("batch", 0, {"ids": Field(text_list(1000, uuid_text), nullable=False)},
               required=("ids",))

USER_CREDENTIAL = Schema("user_credential", 0, {
    "identity_id": Field(uuid_text, CREATE, nullable=False),
    "storage_gateway_id": Field(uuid_text, CREATE, nullable=False),
    "connector_id": Field(uuid_text, CREATE, nullable=False),
    "username": Field(text(256, single_line=True, non_empty=True), nullable=False),
    "display_name": Field(text(128, single_line=True)),
    "policies": Field(json_object),  # checked against the connector's credential policies
    "id": Field(uuid_text, RO),
    "invalid": Field(boolean, RO),
    "provisioned": Field(boolean, RO),
    "home_directory": Field(text(4096), RO),
    "deleted": Field(boolean, RO),
}, required=("storage_gateway_id",))

SHARING_POLICY = Schema("sharing_policy", 0, {
    "collection_id": Field(uuid_text, CREATE, nullable=False),
    "users": Field(text_list(1024, text(256, single_line=True, non_empty=True))),
    "sharing_restrict_paths": Field(path_restrictions, nullable=False),
    "id": Field(uuid_text, RO),
}, required=("collection_id", "sharing_restrict_paths"))

DOMAIN = Schema("domain", 0, {
    key: Field(check, nullable=key not in ("domain_name", "wildcard"))
    for key, check in _DOMAIN_FIELDS.items()}, required=("domain_name",))

# PAM services are files of /etc/pam.d: a plain name, never a path.
_PAM_SERVICE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def pam_service(value: Any) -> str:
    if not isinstance(value, str) or not _PAM_SERVICE.match(value) or ".." in value:
        raise InvalidValueError("must name a PAM service of /etc/pam.d, such as login")
    return value


described(pam_service, {"type": "string", "maxLength": 64, "pattern": _PAM_SERVICE.pattern})

# The endpoint's own OpenID Connect provider (Isthmus; `oidc create|update|show`).
OIDC_SERVER = Schema("oidc_server", 0, {
    "domain": Field(domain_name, CREATE),
    "display_name": Field(text(128, single_line=True, non_empty=True)),
    "pam_service": Field(pam_service),
    "issuer": Field(text(1024), RO),
    "client_id": Field(text(64), RO),
    "redirect_uris": Field(text_list(8, text(2048)), RO),
    "registered": Field(boolean, RO),
    "identity_provider_id": Field(uuid_text, RO),
})
# `oidc register`: the PEM certificates Auth must trust for the provider's HTTPS.
OIDC_REGISTRATION = Schema("oidc_registration", 0, {
    "ca_certificates": Field(text(262144)),
})
