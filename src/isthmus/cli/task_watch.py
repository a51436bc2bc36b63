"""`isthmus task watch`: a task's progress, read from the deployment's database as its
administrator sees it, drawn with rich until the task finishes."""

from __future__ import annotations

import time
import uuid
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.db import reading
from isthmus.transfer.task_models import Task
from isthmus.transfer.tasks import FINISHED, task_document


def read_task(sessions: sessionmaker[Session], task_id: uuid.UUID) -> dict[str, Any] | None:
    with reading(sessions) as session:
        task = session.get(Task, task_id)
        return task_document(task) if task is not None else None


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def _fields(document: dict[str, Any]) -> dict[str, Any]:
    status = document["status"]
    if document.get("nice_status") and document["nice_status"] != "OK":
        status = f"{status} ({document['nice_status']})"
    done = document["subtasks_total"] - document["subtasks_pending"]
    return {"completed": done, "total": max(document["subtasks_total"], 1),
            "status": status,
            "files": f"{document['files_transferred']}/{document['files']} files",
            "bytes": _size(document["bytes_transferred"]),
            "speed": f"{_size(document['effective_bytes_per_second'])}/s"}


def final_line(document: dict[str, Any]) -> str:
    line = (f"Task {document['task_id']} {document['status']}: "
            f"{document['files_transferred']} files, {document['bytes_transferred']} bytes "
            f"transferred")
    if document.get("fatal_error"):
        line += f" ({document['fatal_error']['code']}: {document['fatal_error']['description']})"
    return line


def watch(sessions: sessionmaker[Session], task_id: uuid.UUID, first: dict[str, Any],
          interval: float, console: Console) -> dict[str, Any]:
    """Redraw the task's progress every ``interval`` seconds until it has finished; its
    last document."""
    document = first
    columns = (TextColumn("[bold]{task.fields[status]}"), BarColumn(),
               TextColumn("{task.fields[files]}"), TextColumn("{task.fields[bytes]}"),
               TextColumn("{task.fields[speed]}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(document["label"] or str(task_id), **_fields(document))
        while document["status"] not in FINISHED:
            time.sleep(interval)
            # A task's rows are never deleted: it is still there.
            document = read_task(sessions, task_id) or document
            progress.update(bar, **_fields(document))
    return document
