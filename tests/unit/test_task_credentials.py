"""What a task's worker acts with: grants sealed for one task and collection, renewed only
when they carry a refresh token and near their end, and the SMTP setting task mail uses."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from isthmus.core.encryption import SealedValueError, SecretBox
from isthmus.core.tokens import DependentToken
from isthmus.transfer import credentials
from isthmus.transfer.notifications import SMTPServer
from isthmus.transfer.task_models import TaskCredential

TASK, COLLECTION = uuid.uuid4(), uuid.uuid4()


def sealed_row(box: SecretBox, grant: DependentToken, task: uuid.UUID = TASK,
               collection: uuid.UUID = COLLECTION) -> TaskCredential:
    return TaskCredential(task_id=task, collection_id=collection,
                          sealed_token=credentials.seal(box, TASK, COLLECTION, grant))


def test_a_grant_opens_only_for_its_task_and_collection(tmp_path: Path) -> None:
    box = SecretBox.load_or_create(tmp_path)
    grant = DependentToken("access-secret", 1_900_000_000.0, "refresh-secret")
    row = sealed_row(box, grant)
    assert "access-secret" not in row.sealed_token and "refresh" not in row.sealed_token
    assert credentials.unseal(box, row) == grant
    for moved in (sealed_row(box, grant, task=uuid.uuid4()),
                  sealed_row(box, grant, collection=uuid.uuid4())):
        with pytest.raises(SealedValueError):
            credentials.unseal(box, moved)
    # A token sealed before grants were kept is used as it is, never renewed.
    legacy = TaskCredential(task_id=TASK, collection_id=COLLECTION, sealed_token=box.seal(
        "bare-token", credentials.purpose(TASK, COLLECTION)))
    assert credentials.unseal(box, legacy) == credentials.lasting("bare-token")
    assert not credentials.due(credentials.unseal(box, legacy))


def test_only_refreshable_grants_near_their_end_are_due() -> None:
    now = time.time()
    assert credentials.due(DependentToken("a", now + 30, "r"), now)
    assert not credentials.due(DependentToken("a", now + 3600, "r"), now)
    assert not credentials.due(DependentToken("a", now - 10), now)  # nothing to renew with


def test_smtp_urls() -> None:
    assert SMTPServer.from_url("smtp://mail.example.org") == SMTPServer(
        "mail.example.org", 25, tls=False)
    secure = SMTPServer.from_url("smtps://robot:p%40ss@mail.example.org:2465")
    assert (secure.host, secure.port, secure.tls, secure.username, secure.password) == (
        "mail.example.org", 2465, True, "robot", "p@ss")
    assert "p@ss" not in repr(secure)
    for wrong in ("http://mail.example.org", "smtp://", "mail.example.org"):
        with pytest.raises(ValueError, match="SMTP URL"):
            SMTPServer.from_url(wrong)
