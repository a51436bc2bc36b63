"""Pieces of `globus-connect-server` that need no server: how service answers become one-line
errors, the scopes a login asks for, and how options become documents."""

from __future__ import annotations

import json
from typing import Any

import globus_sdk
import pytest
import requests
from globus_sdk import MappedCollectionDocument

from isthmus.gcs_cli.base import translate
from isthmus.gcs_cli.common import identity_mappings, sdk_document
from isthmus.gcs_cli.errors import EXIT_ERROR, EXIT_LOGIN, EXIT_USAGE, CLIError
from isthmus.gcs_cli.gcs_collections import _filters
from isthmus.gcs_cli.session import scope_requirements, with_explicit_host

ENDPOINT = "2d1b4c2a-0cb7-4b7f-9d0e-1c2b3a4d5e6f"
COLLECTION = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def gcs_error(status: int, body: dict[str, Any]) -> globus_sdk.GCSAPIError:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.request = requests.Request("GET", "https://gcs.example.org/api/endpoint").prepare()
    return globus_sdk.GCSAPIError(response)


def test_a_consent_the_manager_asks_for_is_named_with_the_command_that_gives_it() -> None:
    scope = (f"urn:globus:auth:scope:{ENDPOINT}:manage_collections"
             f"[*https://auth.globus.org/scopes/{COLLECTION}/data_access]")
    error = translate(gcs_error(403, {
        "DATA_TYPE": "result#1.0.0", "code": "ConsentRequired", "http_response_code": 403,
        "message": "Missing required data_access consent",
        "authorization_parameters": {"session_message": "consent",
                                     "required_scopes": [scope]}}))
    assert error.exit_code == EXIT_LOGIN
    assert f"globus-connect-server session consent '{scope}'" in error.format_message()
    assert "\n" not in error.format_message()


def test_a_stale_session_asks_for_session_update() -> None:
    error = translate(gcs_error(403, {
        "DATA_TYPE": "result#1.0.0", "code": "permission_denied", "http_response_code": 403,
        "message": "Authenticate again",
        "authorization_parameters": {"session_required_identities": [ENDPOINT]}}))
    assert error.exit_code == EXIT_LOGIN and "session update" in error.format_message()


def test_refusals_keep_the_manager_message_and_code_on_one_line() -> None:
    error = translate(gcs_error(409, {
        "DATA_TYPE": "result#1.0.0", "code": "conflict", "http_response_code": 409,
        "message": "Storage Gateway x still has\n2 collection(s)", "detail": None}))
    assert (error.exit_code, error.format_message()) == (
        EXIT_ERROR, "Storage Gateway x still has 2 collection(s) (409 conflict)")
    expired = translate(gcs_error(401, {
        "DATA_TYPE": "result#1.0.0", "code": "not_authorized", "http_response_code": 401,
        "message": "The bearer token is not active"}))
    assert expired.exit_code == EXIT_LOGIN and "login ENDPOINT_ID" in expired.format_message()


def test_anything_else_is_still_one_line() -> None:
    error = translate(ValueError("bad\nthing"))
    assert isinstance(error, CLIError) and error.format_message() == \
        "Unexpected ValueError: bad thing"
    missing = translate(FileNotFoundError(2, "No such file or directory", "/x/map.json"))
    assert missing.format_message() == "No such file or directory: /x/map.json"


def test_login_scopes_merge_consents_into_manage_collections() -> None:
    wanted = scope_requirements(ENDPOINT, [
        f"urn:globus:auth:scope:{ENDPOINT}:manage_collections"
        f"[*https://auth.globus.org/scopes/{COLLECTION}/data_access]",
        f"https://auth.globus.org/scopes/{COLLECTION}/https",
    ])
    assert [str(scope) for scope in wanted[ENDPOINT]] == [
        f"urn:globus:auth:scope:{ENDPOINT}:manage_collections"
        f"[*https://auth.globus.org/scopes/{COLLECTION}/data_access]"]
    assert [str(scope) for scope in wanted[COLLECTION]] == [
        f"https://auth.globus.org/scopes/{COLLECTION}/https"]
    assert "urn:globus:auth:scope:auth.globus.org:manage_projects" in {
        str(scope) for scope in wanted["auth.globus.org"]}
    assert [str(scope) for scope in wanted["transfer.api.globus.org"]] == [
        "urn:globus:auth:scope:transfer.api.globus.org:all"]
    with pytest.raises(CLIError) as unknown:
        scope_requirements(ENDPOINT, ["https://example.org/not-a-globus-scope"])
    assert unknown.value.exit_code == EXIT_USAGE


def test_explicit_host_replaces_the_host_and_keeps_the_port() -> None:
    assert with_explicit_host("https://gcs.example.org:8443", "10.0.0.5") == \
        "https://10.0.0.5:8443"
    assert with_explicit_host("https://gcs.example.org", "fe80::1") == "https://[fe80::1]"
    assert with_explicit_host("https://gcs.example.org", "https://node2:9000/") == \
        "https://node2:9000"
    assert with_explicit_host("https://gcs.example.org", None) == "https://gcs.example.org"


def test_identity_mapping_option_forms(tmp_path: Any) -> None:
    mapping = {"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": []}
    (tmp_path / "map.json").write_text(json.dumps([mapping, mapping]))
    assert identity_mappings((f"file:{tmp_path / 'map.json'}", json.dumps(mapping),
                              "external:/opt/map 'two words'")) == [
        mapping, mapping, mapping,
        {"DATA_TYPE": "external_identity_mapping#1.0.0", "command": ["/opt/map", "two words"]}]
    for bad in ("[1, 2]", "{nope", f"file:{tmp_path / 'missing.json'}", "external:"):
        with pytest.raises(CLIError) as refused:
            identity_mappings((bad,))
        assert refused.value.exit_code == EXIT_USAGE


def test_documents_keep_what_the_sdk_knows_and_carry_the_rest() -> None:
    document = sdk_document(MappedCollectionDocument, {
        "display_name": "x", "storage_gateway_id": COLLECTION, "collection_base_path": "/x",
        "allow_guest_collections": True, "sharing_restrict_paths": {"read": ["/"]}})
    sent = {key: value for key, value in dict(document).items()
            if value is not globus_sdk.MISSING}
    assert sent["allow_guest_collections"] is True
    assert sent["sharing_restrict_paths"] == {"read": ["/"]}
    assert sent["DATA_TYPE"].startswith("collection#1.")


def test_collection_list_filters_in_the_managers_spelling() -> None:
    assert _filters(("mapped-collections,created-by-me", "last-access>=2024-01-01")) == [
        "mapped_collections", "created_by_me", "last_access>=2024-01-01"]
    with pytest.raises(CLIError):
        _filters(("everything",))
