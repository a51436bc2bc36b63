"""Transfer's tables for asynchronous tasks: the task, its items (one row per file, directory
or path to delete, each with its own state so a restarted worker never redoes finished work),
its events, and the data_access grants its worker acts with (sealed)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from isthmus.core.db import Base, UTCDateTime, utcnow

# Item states.
PENDING = "pending"
DONE = "done"  # copied (or created, or deleted)
SKIPPED = "skipped"  # nothing to do: the sync level found the destination current
SKIPPED_ERROR = "skipped_error"  # a source error passed over (skip_source_errors, ignore_missing)
FAILED = "failed"

# Item kinds.
FILE = "file"  # copy source_path to destination_path
TREE = "tree"  # a directory to expand: its children become items
SYMLINK = "symlink"  # 3.65's transfer_symlink_item: copy the link itself
DELETE = "delete"  # delete task: remove source_path (a glob when the task interprets them)
DELETE_EXTRA = "delete_extra"  # delete_destination_extra: remove destination_path


class Task(Base):
    """A transfer or delete task, as `get_task` shows it, plus what its runner needs."""

    __tablename__ = "transfer_tasks"
    __table_args__ = (
        # A resubmitted submission id names the task it created (never a second one).
        UniqueConstraint("owner_id", "submission_id", name="uq_transfer_tasks_submission"),
        Index("ix_transfer_tasks_owner_request", "owner_id", "request_time"),
        # What the runner looks for: runnable tasks, least recently served first.
        Index("ix_transfer_tasks_runnable", "status", "admitted", "last_served"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    submission_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    type: Mapped[str] = mapped_column(String(16))  # TRANSFER | DELETE
    # ACTIVE | INACTIVE | SUCCEEDED | FAILED (a canceled task ends FAILED)
    status: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(256))
    request_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completion_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    source_endpoint_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    source_display_name: Mapped[str | None] = mapped_column(String(256))
    destination_endpoint_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    destination_display_name: Mapped[str | None] = mapped_column(String(256))
    # The submitted options, in the task document's field names (sync_level, filter_rules...).
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Counters, as the task document names them.
    files: Mapped[int] = mapped_column(Integer, default=0)
    directories: Mapped[int] = mapped_column(Integer, default=0)
    symlinks: Mapped[int] = mapped_column(Integer, default=0)
    files_transferred: Mapped[int] = mapped_column(Integer, default=0)
    files_skipped: Mapped[int] = mapped_column(Integer, default=0)
    bytes_transferred: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_checksummed: Mapped[int] = mapped_column(BigInteger, default=0)
    faults: Mapped[int] = mapped_column(Integer, default=0)
    subtasks_total: Mapped[int] = mapped_column(Integer, default=0)
    subtasks_succeeded: Mapped[int] = mapped_column(Integer, default=0)
    subtasks_failed: Mapped[int] = mapped_column(Integer, default=0)
    subtasks_canceled: Mapped[int] = mapped_column(Integer, default=0)
    subtasks_expired: Mapped[int] = mapped_column(Integer, default=0)
    subtasks_skipped_errors: Mapped[int] = mapped_column(Integer, default=0)
    subtasks_retrying: Mapped[int] = mapped_column(Integer, default=0)
    # While ACTIVE: "Queued", "OK", or the name of the error being retried.
    nice_status: Mapped[str | None] = mapped_column(String(64))
    fatal_error_code: Mapped[str | None] = mapped_column(String(64))
    fatal_error_description: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Past the owner's share of active tasks a task waits, not admitted (nice_status Queued).
    admitted: Mapped[bool] = mapped_column(Boolean, default=False)
    # The runner holding the task, until when; tasks are served least recently served first.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_served: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An endpoint manager's pause of this very task (admin_pause), until admin_resume.
    admin_pause_message: Mapped[str | None] = mapped_column(Text)
    # Who canceled it as an endpoint manager: SOURCE | DESTINATION | BOTH, and why.
    canceled_by_admin: Mapped[str | None] = mapped_column(String(16))
    canceled_by_admin_message: Mapped[str | None] = mapped_column(Text)


class TaskItem(Base):
    """One unit of a task's work: a file to copy, a directory to expand, a path to delete."""

    __tablename__ = "transfer_task_items"
    __table_args__ = (Index("ix_transfer_task_items_task_state", "task_id", "state", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transfer_tasks.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    source_path: Mapped[str] = mapped_column(Text)
    destination_path: Mapped[str | None] = mapped_column(Text)
    # Named in the submission (not found by expanding a directory).
    submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(160))
    checksum_algorithm: Mapped[str | None] = mapped_column(String(16))
    external_checksum: Mapped[str | None] = mapped_column(String(160))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_details: Mapped[str | None] = mapped_column(Text)
    error_time: Mapped[datetime | None] = mapped_column(UTCDateTime)


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A pending `TaskItem` as the engine works on it: read in one query with the columns
    below (thousands a second: an ORM object each would cost more than copying a small
    file), and never written back through (what was done goes into a batch)."""

    id: int
    kind: str
    source_path: str
    destination_path: str | None
    submitted: bool
    size: int | None
    checksum_algorithm: str | None
    external_checksum: str | None


WORK_ITEM_COLUMNS = (TaskItem.id, TaskItem.kind, TaskItem.source_path,
                     TaskItem.destination_path, TaskItem.submitted, TaskItem.size,
                     TaskItem.checksum_algorithm, TaskItem.external_checksum)


class TaskEvent(Base):
    """One line of a task's event list."""

    __tablename__ = "transfer_task_events"
    __table_args__ = (Index("ix_transfer_task_events_task", "task_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transfer_tasks.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(256))
    details: Mapped[str] = mapped_column(Text, default="")
    is_error: Mapped[bool] = mapped_column(Boolean, default=False)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TaskCredential(Base):
    """What a task's worker reaches one collection with, sealed (`transfer.credentials`):
    an access token, when it expires, and the refresh token that renews it."""

    __tablename__ = "transfer_task_credentials"

    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transfer_tasks.id", ondelete="CASCADE"), primary_key=True)
    collection_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    sealed_token: Mapped[str] = mapped_column(Text)


class PauseRule(Base):
    """An endpoint manager's rule pausing the tasks that use an endpoint (or one collection),
    of everyone or of one identity, from ``start_time`` on."""

    __tablename__ = "transfer_pause_rules"
    __table_args__ = (Index("ix_transfer_pause_rules_endpoint", "endpoint_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    identity_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    message: Mapped[str] = mapped_column(Text)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    modified_by_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    pause_task_transfer_read: Mapped[bool] = mapped_column(Boolean)
    pause_task_transfer_write: Mapped[bool] = mapped_column(Boolean)
    pause_task_delete: Mapped[bool] = mapped_column(Boolean)


class AdminCancel(Base):
    """An endpoint manager's cancel of a list of tasks, for `endpoint_manager_cancel_status`."""

    __tablename__ = "transfer_admin_cancels"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    message: Mapped[str] = mapped_column(Text)
    task_ids: Mapped[list[str]] = mapped_column(JSON)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Checkpoint(Base):
    """How far a large file's copy is known durable at its destination: the temporary file
    (named after the task and item) keeps those bytes across a crash, and the copy resumes
    there while the source is still the one described here."""

    __tablename__ = "transfer_checkpoints"
    __table_args__ = (Index("ix_transfer_checkpoints_task", "task_id"),)

    item_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("transfer_task_items.id", ondelete="CASCADE"), primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transfer_tasks.id", ondelete="CASCADE"))
    destination_path: Mapped[str] = mapped_column(Text)
    offset: Mapped[int] = mapped_column(BigInteger)
    source_size: Mapped[int] = mapped_column(BigInteger)
    source_mtime: Mapped[float] = mapped_column(Float)
