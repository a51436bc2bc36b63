"""Task notifications through a real SMTP server (aiosmtpd on loopback): the owner is mailed
when a task succeeds, fails or is paused, with its id and status, only as its notify_* flags
ask (tasks submitted with the SDK's TransferData and DeleteData)."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from globus_sdk import DeleteData, TransferClient, TransferData

from tests.conftest import _new_user
from tests.database import fresh_database_url, wants_postgres
from tests.e2e.helpers import pointed_at
from tests.e2e.test_transfer_file_ops import app_transfer_client
from tests.e2e.test_transfer_registry import transfer_client
from tests.e2e.test_transfer_tasks import Site, collection_of
from tests.live import free_port, start_server

pytestmark = pytest.mark.postgres

SENDER = "Isthmus <isthmus@lab.example>"


class Inbox:
    """aiosmtpd's handler: every message the server accepts, parsed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def about(self, task_id: str) -> list[EmailMessage]:
        with self.lock:
            return [mail for mail in self.messages if task_id in mail.get_content()]

    def wait_for(self, task_id: str, timeout: float = 30) -> EmailMessage:
        started = time.monotonic()
        while not (found := self.about(task_id)):
            assert time.monotonic() - started < timeout, "no mail about the task"
            time.sleep(0.2)
        assert len(found) == 1
        return found[0]


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    handler = Inbox(free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, inbox: Inbox) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("notifications")
    with fresh_database_url(tmp) as database_url:
        env = {"ISTHMUS_DATABASE_URL": database_url} if wants_postgres() else {}
        server = start_server(tmp / "data", ISTHMUS_SMTP_URL=f"smtp://127.0.0.1:{inbox.port}",
                              ISTHMUS_MAIL_FROM=SENDER, **env)
        try:
            owner = _new_user(server, "owner")  # the first user owns the endpoint
            with pointed_at(server):
                yield Site(server, collection_of(server), owner)
        finally:
            server.stop()


def finished(tc: TransferClient, task_id: str, status: str) -> None:
    assert tc.task_wait(task_id, timeout=120, polling_interval=1)
    assert tc.get_task(task_id)["status"] == status


def test_owners_are_mailed_as_their_tasks_ask(site: Site, inbox: Inbox) -> None:
    alice = _new_user(site.server, "alice")
    tc = app_transfer_client(site, alice, site.collection_id)  # type: ignore[arg-type]
    tc.operation_ls(site.collection_id)  # makes alice's home
    (site.home(alice) / "src").mkdir()
    (site.home(alice) / "src" / "notes.txt").write_text("hello\n")
    ep = site.collection_id

    def transfer(source: str, label: str, **flags: bool) -> str:
        data = TransferData(ep, ep, label=label, **flags)
        data.add_item(source, f"/~/{label}/", recursive=True)
        return str(tc.submit_transfer(data)["task_id"])

    # Tasks that asked for no mail, ended first: the mails after them are sent in order.
    quiet = transfer("/~/src/", "quiet", notify_on_succeeded=False)
    finished(tc, quiet, "SUCCEEDED")
    quiet_failure = transfer("/~/missing/", "quiet-failure", notify_on_failed=False)
    finished(tc, quiet_failure, "FAILED")

    copied = transfer("/~/src/", "copied")
    finished(tc, copied, "SUCCEEDED")
    mail = inbox.wait_for(copied)
    address = alice.username.split("@")[0] + "@example.org"  # as `_new_user` made it
    assert (mail["To"], mail["From"]) == (address, SENDER)
    assert "SUCCEEDED" in mail["Subject"] and "copied" in mail["Subject"]
    body = mail.get_content()
    assert f"Task ID: {copied}" in body and "Status: SUCCEEDED" in body
    assert "Files transferred: 1" in body

    failed = transfer("/~/missing/", "failed")
    finished(tc, failed, "FAILED")
    mail = inbox.wait_for(failed)
    assert "FAILED" in mail["Subject"]
    body = mail.get_content()
    assert "Status: FAILED" in body and "Details: FILE_NOT_FOUND" in body

    removal = DeleteData(ep, label="removal", recursive=True)
    removal.add_item("/~/copied/")
    deleted = str(tc.submit_delete(removal)["task_id"])
    finished(tc, deleted, "SUCCEEDED")
    assert "Delete task removal" in inbox.wait_for(deleted)["Subject"]

    assert inbox.about(quiet) == [] and inbox.about(quiet_failure) == []


def test_a_paused_task_mails_its_owner(site: Site, inbox: Inbox) -> None:
    bob = _new_user(site.server, "bob")
    tc = app_transfer_client(site, bob, site.collection_id)  # type: ignore[arg-type]
    tc.operation_ls(site.collection_id)
    (site.home(bob) / "src").mkdir()
    (site.home(bob) / "src" / "data.txt").write_text("data\n")
    manager = transfer_client(site, site.owner)  # type: ignore[arg-type]
    rule = manager.endpoint_manager_create_pause_rule({
        "DATA_TYPE": "pause_rule", "message": "disk maintenance",
        "endpoint_id": site.collection_id, "identity_id": bob.id, "start_time": None})
    data = TransferData(site.collection_id, site.collection_id, label="held")
    data.add_item("/~/src/", "/~/held/", recursive=True)
    task_id = str(tc.submit_transfer(data)["task_id"])
    mail = inbox.wait_for(task_id)
    assert "INACTIVE" in mail["Subject"]
    assert "Details: PAUSED_BY_ADMIN" in mail.get_content()

    manager.endpoint_manager_delete_pause_rule(rule["id"])
    finished(tc, task_id, "SUCCEEDED")
    started = time.monotonic()
    while len(inbox.about(task_id)) < 2:
        assert time.monotonic() - started < 30, "no mail about the task's end"
        time.sleep(0.2)
    assert "SUCCEEDED" in inbox.about(task_id)[1]["Subject"]
