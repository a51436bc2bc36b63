"""Where a large file's interrupted copy can go on from: its temporary file at the destination
is named after the task and item (`part_key`), and its durable length is written down here as
the copy goes. A copy that a crash cut short resumes from the last offset written down, as
long as the source still has the size and modification time it had."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.db import reading, transaction
from isthmus.storage.connector import Entry
from isthmus.transfer.task_models import Checkpoint

# How much of a large file is written between two checkpoints (what a crash can cost): a
# share of the file, within these bounds. Each checkpoint is an fdatasync (a journal commit
# and a flush of the disk's cache, several milliseconds whatever its size) and a database
# write: too many and the copy waits on them; too few and a crash costs more.
MIN_STEP = 16 * 1024 * 1024
MAX_STEP = 256 * 1024 * 1024
STEPS = 16


def step_for(size: int) -> int:
    """How many bytes a file of ``size`` is written between two checkpoints."""
    return min(MAX_STEP, max(MIN_STEP, size // STEPS))


def part_key(task_id: uuid.UUID, item_id: int) -> str:
    """The temporary file's stable name for one item of one task (`WriteOptions.resume_key`)."""
    return hashlib.sha256(f"{task_id}:{item_id}".encode()).hexdigest()[:32]


def find(sessions: sessionmaker[Session], item_id: int, source: Entry) -> int:
    """The offset the item's copy may resume from (0 when none, or the source changed)."""
    with reading(sessions) as session:
        found = session.get(Checkpoint, item_id)
        if found is None or found.source_size != source.size or (
                found.source_mtime != source.mtime):
            return 0
        return found.offset


def save(sessions: sessionmaker[Session], task_id: uuid.UUID, item_id: int,
         destination_path: str, offset: int, source: Entry) -> None:
    with transaction(sessions) as session:
        session.merge(Checkpoint(item_id=item_id, task_id=task_id,
                                 destination_path=destination_path, offset=offset,
                                 source_size=source.size, source_mtime=source.mtime))


def forget(sessions: sessionmaker[Session], item_ids: Sequence[int]) -> None:
    with transaction(sessions) as session:
        session.execute(delete(Checkpoint).where(Checkpoint.item_id.in_(item_ids)))


def of_task(sessions: sessionmaker[Session], task_id: uuid.UUID) -> list[tuple[int, str]]:
    """(item id, destination path) of each checkpoint the task still has."""
    with reading(sessions) as session:
        return [(row.item_id, row.destination_path) for row in session.execute(
            select(Checkpoint.item_id, Checkpoint.destination_path)
            .where(Checkpoint.task_id == task_id))]


def any_for(session: Session, task_id: uuid.UUID) -> bool:
    return session.scalar(select(Checkpoint.item_id).where(
        Checkpoint.task_id == task_id).limit(1)) is not None
