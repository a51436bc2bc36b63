"""What a task's worker acts with on each of its collections, long after the submission.

A task outlives the tokens its owner submitted it with, as on Globus: at submission Transfer
takes, for each mapped collection, a dependent token for its ``data_access`` scope with a
refresh token (``access_type=offline``), and the worker renews the access token whenever it
nears its end. Until the owner revokes that consent the task runs; after, Auth refuses the
refresh and the task fails with ``PERMISSION_DENIED``. Guest and high-assurance collections
are reached with the owner's Transfer token itself (no refresh token: the task reaches them
while it lives).

At rest the grant is sealed (`core.encryption`), bound to its task and collection; it is
never logged, and it is deleted when the task ends (`progress.finish`).
"""

from __future__ import annotations

import json
import math
import time
import uuid

from sqlalchemy import delete
from sqlalchemy.orm import Session

from isthmus.core.encryption import SealedValueError, SecretBox
from isthmus.core.tokens import DependentToken
from isthmus.transfer.task_models import TaskCredential

# An access token is renewed this long before it expires: a slice opens its collections
# with it, and the checks happen at that opening.
RENEW_MARGIN_SECONDS = 60.0


def purpose(task_id: uuid.UUID, collection_id: uuid.UUID) -> str:
    return f"transfer-task:{task_id}:{collection_id}"


def lasting(token: str) -> DependentToken:
    """A token the worker uses as it is (the owner's Transfer token): never renewed."""
    return DependentToken(token, math.inf)


def seal(box: SecretBox, task_id: uuid.UUID, collection_id: uuid.UUID,
         grant: DependentToken) -> str:
    document = {"access_token": grant.access_token, "expires_at": grant.expires_at,
                "refresh_token": grant.refresh_token}
    return box.seal(json.dumps(document), purpose(task_id, collection_id))


def unseal(box: SecretBox, credential: TaskCredential) -> DependentToken:
    """The grant sealed in ``credential``; `SealedValueError` when it does not open."""
    opened = box.open(credential.sealed_token,
                      purpose(credential.task_id, credential.collection_id))
    if not opened.startswith("{"):
        return lasting(opened)  # sealed before grants were kept: a bare access token
    try:
        document = json.loads(opened)
        return DependentToken(str(document["access_token"]), float(document["expires_at"]),
                              document.get("refresh_token"))
    except (ValueError, KeyError, TypeError):
        raise SealedValueError("the sealed grant is not a grant") from None


def due(grant: DependentToken, now: float | None = None) -> bool:
    """Whether the grant's access token must be renewed before it is used."""
    now = time.time() if now is None else now
    return grant.refresh_token is not None and grant.expires_at - RENEW_MARGIN_SECONDS <= now


def store(session: Session, box: SecretBox, task_id: uuid.UUID, collection_id: uuid.UUID,
          grant: DependentToken) -> None:
    """Keep (or replace) the grant the task's worker acts with on the collection."""
    sealed = seal(box, task_id, collection_id, grant)
    found = session.get(TaskCredential, (task_id, collection_id))
    if found is None:
        session.add(TaskCredential(task_id=task_id, collection_id=collection_id,
                                   sealed_token=sealed))
    else:
        found.sealed_token = sealed


def forget(session: Session, task_id: uuid.UUID) -> None:
    """Delete the task's grants: it has ended, nothing acts for its owner any more."""
    session.execute(delete(TaskCredential).where(TaskCredential.task_id == task_id))
