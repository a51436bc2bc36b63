"""Data access asks for the session Auth says the token came from, and the SDK reads why.

A high-assurance storage gateway with ``require_mfa`` refuses a token from a password-only
login with a 403 whose ``authorization_parameters`` (``err.info.authorization_parameters``,
`globus_sdk.gare.to_gare`) say how to log in; logging in again with exactly those
parameters (after enrolling an authenticator) gives a token that reads the file. A guest
collection whose mapped collection names a ``guest_auth_policy_id`` (an Auth policy made
through Auth's policies API, with a short timeout) refuses once the sign-in is older than
the policy allows, until the user logs in again for ``session_required_policies``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
from globus_sdk import (
    GCSClient,
    GuestCollectionDocument,
    MappedCollectionDocument,
    StorageGatewayDocument,
    UserCredentialDocument,
)

from tests.browser import Browser
from tests.conftest import EndpointSite, User, _new_user
from tests.e2e.helpers import MANAGE, TUTORIAL_CLIENT_ID, auth_client_for
from tests.e2e.security_helpers import enrol
from tests.e2e.test_connect_guest import ACCOUNT
from tests.e2e.test_connect_manager_api import POSIX, gcs_client


class Collection:
    """A user's login to one collection's HTTPS interface, in a browser of their own."""

    def __init__(self, site: EndpointSite, user: User, collection_id: str) -> None:
        self.site, self.user, self.collection_id = site, user, collection_id
        self.browser = Browser(site.server.ca_file)
        self.login = globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID)
        self.login.oauth2_start_flow(requested_scopes=[
            str(GCSClient.get_gcs_collection_scopes(collection_id).https)])

    def log_in(self, second_factor: Any = None, **requirements: Any) -> globus_sdk.BaseClient:
        """Log in (with ``session_required_*`` ``requirements``); a client for the files."""
        url = self.login.oauth2_get_authorize_url(**requirements)
        location = self.browser.authorize(url, self.user.username, self.user.password,
                                          second_factor=second_factor)
        tokens = self.login.oauth2_exchange_code_for_tokens(
            self.browser.code_from_page(location))
        token = tokens.by_resource_server[self.collection_id]["access_token"]
        return globus_sdk.BaseClient(
            base_url=f"{self.site.server.base_url}data/{self.collection_id}",
            authorizer=globus_sdk.AccessTokenAuthorizer(token))


def refusal(files: globus_sdk.BaseClient, path: str) -> globus_sdk.GlobusAPIError:
    with pytest.raises(globus_sdk.GlobusAPIError) as caught:
        files.get(path)
    assert caught.value.http_status == 403, caught.value.text
    return caught.value


def delete_collection(gcs: GCSClient, collection_id: str) -> None:
    gcs.update_collection(collection_id, MappedCollectionDocument(delete_protected=False))
    gcs.delete_collection(collection_id)


def test_high_assurance_storage_with_mfa_refuses_until_the_user_logs_in_as_asked(
    site: EndpointSite, owner: GCSClient,
) -> None:
    dana = _new_user(site.server, "dana")
    domain = dana.username.rpartition("@")[2]
    files: Path = site.server.data_dir / "files"
    gateway = owner.create_storage_gateway(StorageGatewayDocument(
        display_name="secure storage", connector_id=POSIX, root=str(files),
        high_assurance=True,
        require_mfa=True, allowed_domains=[domain],
        identity_mappings=[{"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": [{
            "source": "{username}", "match": "(.*)@" + domain.replace(".", "\\."),
            "output": ACCOUNT}]}],
        additional_fields={"restrict_paths": {"DATA_TYPE": "path_restrictions#1.0.0",
                                              "read_write": ["$HOME"]}}))
    collection = str(owner.create_collection(MappedCollectionDocument(
        display_name="secure data", storage_gateway_id=gateway["id"],
        collection_base_path="/"))["id"])
    try:
        (files / dana.username).mkdir(exist_ok=True)
        (files / dana.username / "secret.txt").write_bytes(b"for two factors only\n")
        path = f"/{dana.username}/secret.txt"  # the SDK quotes it
        dana_files = Collection(site, dana, collection)

        error = refusal(dana_files.log_in(), path)
        wanted = error.info.authorization_parameters
        assert wanted, error.text
        assert wanted.session_required_mfa is True
        assert wanted.session_required_single_domain == [domain]
        assert wanted.session_required_identities == [dana.id]
        assert wanted.session_message and "two-factor" in wanted.session_message
        gare = globus_sdk.gare.to_gare(error)
        assert gare is not None and gare.authorization_parameters.session_required_mfa
        # What globus-cli looks for to tell the user to log in again.
        assert error.raw_json["detail"] == {
            "DATA_TYPE": "authentication_timeout#1.1.0", "high_assurance": True,
            "identities": [dana.id], "require_mfa": True}

        authenticator = enrol(site.server, Browser(site.server.ca_file), dana)
        again = dana_files.log_in(
            second_factor=authenticator.next_code,
            session_required_identities=wanted.session_required_identities,
            session_required_single_domain=wanted.session_required_single_domain,
            session_required_mfa=wanted.session_required_mfa)
        assert again.get(path).binary_content == b"for two factors only\n"
    finally:
        delete_collection(owner, collection)
        owner.delete_storage_gateway(gateway["id"])


def test_a_guest_auth_policy_times_out_and_a_new_login_meets_it(
    site: EndpointSite, owner: GCSClient, files_gateway: str,
) -> None:
    timeout = 8
    admin = auth_client_for(site.server, site.owner, f"openid profile email {MANAGE}")
    project = admin.create_project("Data policies", "lab@example.org")["project"]["id"]
    policy = str(admin.create_policy(
        project_id=project, display_name="Recent sign-in", description="for guests",
        high_assurance=True, authentication_assurance_timeout=timeout)["policy"]["id"])
    mapped = str(owner.create_collection(MappedCollectionDocument(
        display_name="guests need a recent sign-in", storage_gateway_id=files_gateway,
        collection_base_path="/", public=True, allow_guest_collections=True,
        guest_auth_policy_id=policy))["id"])
    erin = _new_user(site.server, "erin")
    erin_gcs = gcs_client(site, erin)
    try:
        shared = site.server.data_dir / "files" / erin.username / "shared"
        shared.mkdir(parents=True)
        (shared / "notes.txt").write_bytes(b"guest notes\n")
        credential = erin_gcs.create_user_credential(UserCredentialDocument(
            storage_gateway_id=files_gateway, identity_id=erin.id, username=ACCOUNT))
        guest = str(erin_gcs.create_collection(GuestCollectionDocument(
            display_name="erin's notes", mapped_collection_id=mapped,
            user_credential_id=credential["id"], collection_base_path="/~/shared"))["id"])
        assert owner.get_collection(mapped)["guest_auth_policy_id"] == policy
        erin_files = Collection(site, erin, guest)

        files = erin_files.log_in()
        assert files.get("/notes.txt").binary_content == b"guest notes\n"  # a fresh sign-in
        time.sleep(timeout + 0.5)
        error = refusal(files, "/notes.txt")
        wanted = error.info.authorization_parameters
        assert wanted.session_required_policies == [policy], error.text
        assert "Recent sign-in" in (wanted.session_message or "")
        # The login page insists on a new sign-in (the session's is too old now).
        again = erin_files.log_in(session_required_policies=wanted.session_required_policies)
        assert again.get("/notes.txt").binary_content == b"guest notes\n"
    finally:
        delete_collection(owner, mapped)  # its guest goes with it
