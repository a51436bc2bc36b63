"""Tasks outlive their owner's tokens, as on Globus, through the official SDK.

On a server whose access tokens live 3 seconds: a task held by an endpoint manager's pause
rule well past that lifetime (the owner logged out, and the owner's token and the
data_access token taken at submission both expired meanwhile) resumes, renews its grant
and completes; once the owner
revokes Transfer's data_access consent on the account page, a task stops with
PERMISSION_DENIED. A task's sealed grants exist while it runs and are deleted when it ends.

The runner claims and renews here, so the module runs on PostgreSQL too.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
from globus_sdk import TransferClient, TransferData
from globus_sdk.globus_app import GlobusAppConfig
from sqlalchemy import create_engine, text

from tests.browser import Browser, form_with
from tests.conftest import User, _new_user
from tests.database import fresh_database_url
from tests.e2e.helpers import TUTORIAL_CLIENT_ID, pointed_at, scripted_login_flow
from tests.e2e.test_account_security import CONSENTS, consent_rows
from tests.e2e.test_transfer_tasks import (
    LARGE_FILE,
    collection_of,
    digests,
    expect_error,
    make_tree,
)
from tests.live import LiveServer, start_server

pytestmark = pytest.mark.postgres

LIFETIME = 3


@dataclass
class Site:
    server: LiveServer
    database_url: str
    collection_id: str

    def home(self, user: User) -> Path:
        return self.server.data_dir / "files" / user.username

    def sealed_grants(self, task_id: str) -> list[str]:
        """The task's rows in the credentials table, as a copy of the database shows them."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return [row[0] for row in connection.execute(text(
                    "SELECT sealed_token FROM transfer_task_credentials WHERE task_id = :id"),
                    {"id": uuid.UUID(task_id).hex if "sqlite" in self.database_url
                     else task_id})]
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("long-tasks")
    with fresh_database_url(tmp) as database_url:
        server = start_server(tmp / "data", ISTHMUS_ACCESS_TOKEN_LIFETIME=str(LIFETIME),
                              ISTHMUS_DATABASE_URL=database_url)
        try:
            with pointed_at(server):
                yield Site(server, database_url, collection_of(server))
        finally:
            server.stop()


def lasting_app(site: Site, user: User) -> globus_sdk.UserApp:
    """A UserApp that renews its own tokens by refresh (they live 3 seconds here)."""
    flow = scripted_login_flow(Browser(site.server.ca_file), user.username, user.password)
    return globus_sdk.UserApp("isthmus long tasks", client_id=TUTORIAL_CLIENT_ID,
                              config=GlobusAppConfig(token_storage="memory",
                                                     login_flow_manager=flow,
                                                     request_refresh_tokens=True))


def lasting_client(site: Site, user: User,
                   app: globus_sdk.UserApp | None = None) -> TransferClient:
    """A TransferClient of `lasting_app` with the collection's data_access consent."""
    client = TransferClient(app=app or lasting_app(site, user))
    client.add_app_data_access_scope(site.collection_id)
    return client


@pytest.fixture(scope="module")
def manager(site: Site) -> TransferClient:
    """The endpoint's owner (the first user), who may pause tasks on its collections."""
    return lasting_client(site, _new_user(site.server, "owner"))


def current_token(app: globus_sdk.UserApp) -> str:
    header = app.get_authorizer("transfer.api.globus.org").get_authorization_header()
    assert header is not None and header.startswith("Bearer ")
    return header.removeprefix("Bearer ")


def paused_task(site: Site, manager: TransferClient, user: User,
                client: TransferClient, name: str) -> tuple[str, str]:
    """A recursive transfer of ``user``'s tree, held by a pause rule on the collection:
    (task id, rule id)."""
    rule = manager.endpoint_manager_create_pause_rule({
        "DATA_TYPE": "pause_rule", "message": "held while tokens expire",
        "endpoint_id": site.collection_id, "identity_id": user.id, "start_time": None})
    data = TransferData(site.collection_id, site.collection_id, label=name,
                        verify_checksum=True)
    data.add_item("/~/src/", f"/~/{name}/", recursive=True)
    task_id = str(client.submit_transfer(data)["task_id"])
    started = time.monotonic()
    while not client.get_task(task_id)["is_paused"]:
        assert time.monotonic() - started < 30
        time.sleep(0.2)
    return task_id, str(rule["id"])


def finished(client: TransferClient, task_id: str) -> dict[str, Any]:
    assert client.task_wait(task_id, timeout=240, polling_interval=1)
    return client.get_task(task_id).data


def test_a_task_outlives_its_owners_tokens(site: Site, manager: TransferClient) -> None:
    alice = _new_user(site.server, "alice")
    app = lasting_app(site, alice)
    client = lasting_client(site, alice, app)
    client.operation_ls(site.collection_id)  # makes alice's home
    make_tree(site.home(alice) / "src", files=100, large=LARGE_FILE)
    submitted_with = current_token(app)
    task_id, rule_id = paused_task(site, manager, alice, client, "copy")
    sealed = site.sealed_grants(task_id)
    assert len(sealed) == 1 and sealed[0].startswith("v1.")  # encrypted at rest
    assert submitted_with not in sealed[0]

    # Alice logs out (her refresh token revoked, as `globus logout` does): her tasks go on.
    stored = app.token_storage.get_token_data("transfer.api.globus.org")
    assert stored is not None and stored.refresh_token
    globus_sdk.NativeAppAuthClient(TUTORIAL_CLIENT_ID).oauth2_revoke_token(
        stored.refresh_token)
    time.sleep(LIFETIME + 1.5)
    # Every token of the submission has expired: Transfer refuses the owner's.
    expired = TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(submitted_with))
    expect_error(401, "AuthenticationFailed", expired.get_task, task_id)

    manager.endpoint_manager_delete_pause_rule(rule_id)
    task = finished(lasting_client(site, alice), task_id)  # she logs in again to look
    assert (task["status"], task["fatal_error"]) == ("SUCCEEDED", None)
    assert digests(site.home(alice) / "copy") == digests(site.home(alice) / "src")
    assert task["bytes_transferred"] >= LARGE_FILE
    seconds = (time.mktime(time.strptime(task["completion_time"][:19], "%Y-%m-%dT%H:%M:%S"))
               - time.mktime(time.strptime(task["request_time"][:19], "%Y-%m-%dT%H:%M:%S")))
    assert seconds > LIFETIME  # the task lived longer than any token of its owner
    assert site.sealed_grants(task_id) == []  # nothing acts for alice any more


def data_access_consent(page: str, collection_id: str) -> str:
    """The id of Transfer's data_access consent for the collection on the consents page."""
    rows = consent_rows(page)
    found = [consent_id for scope, (consent_id, client, dependent) in rows.items()
             if dependent and client == "Globus Transfer" and "data" in scope.lower()]
    assert len(found) == 1, (rows, re.findall(collection_id, page))
    return found[0]


def test_revoking_the_consent_stops_the_task(site: Site, manager: TransferClient) -> None:
    bob = _new_user(site.server, "bob")
    client = lasting_client(site, bob)
    client.operation_ls(site.collection_id)
    make_tree(site.home(bob) / "src", files=20, large=1024 * 1024)
    task_id, rule_id = paused_task(site, manager, bob, client, "copy")

    # Bob withdraws Transfer's access to the collection on his account's consents page.
    browser = Browser(site.server.ca_file)
    page = browser.sign_in(site.server.base_url, CONSENTS, bob.username, bob.password)
    consent_id = data_access_consent(page.text, site.collection_id)
    revoked = browser.submit(site.server.base_url + CONSENTS,
                             form_with(page.text, consent_id=consent_id))
    assert revoked.status_code == 303

    manager.endpoint_manager_delete_pause_rule(rule_id)
    task = finished(client, task_id)
    assert task["status"] == "FAILED"
    assert task["fatal_error"] == {"code": "PERMISSION_DENIED",
                                   "description": "permission denied"}
    events = client.task_event_list(task_id)["DATA"]
    assert events[0]["code"] == "PERMISSION_DENIED" and events[0]["is_error"]
    assert "consent" in events[0]["details"] and "revoked" in events[0]["details"]
    assert not (site.home(bob) / "copy").exists()  # nothing was written for bob after
    assert site.sealed_grants(task_id) == []
