"""Submitting tasks: the TransferData and DeleteData documents checked field by field (a 400
names the field), and the task they create; a resubmitted submission id answers with the task
it created the first time (spec §5)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from isthmus.core.encryption import SecretBox
from isthmus.core.errors import APIError
from isthmus.core.tokens import DependentToken
from isthmus.storage.digests import canonical_algorithm, digest_from_hex
from isthmus.storage.errors import InvalidArgument, UnsupportedAlgorithm
from isthmus.transfer import credentials, registry
from isthmus.transfer.filters import bad_request, parse_datetime
from isthmus.transfer.registry import Caller
from isthmus.transfer.task_models import (
    DELETE,
    FILE,
    SYMLINK,
    TREE,
    Task,
    TaskItem,
)

TRANSFER = "TRANSFER"
DELETE_TASK = "DELETE"
DEFAULT_DEADLINE = timedelta(hours=24)
MAX_ITEMS = 100_000
MAX_PATH = 4096
SYNC_LEVELS = {"exists": 0, "size": 1, "mtime": 2, "checksum": 3}
TRANSFER_FLAGS = ("verify_checksum", "preserve_timestamp", "encrypt_data", "skip_source_errors",
                  "fail_on_quota_errors", "delete_destination_extra")
# Defaults where a field is absent (3.x sends every one; 4.x only those set).
FLAG_DEFAULTS = {"verify_checksum": False, "preserve_timestamp": False, "encrypt_data": False,
                 "skip_source_errors": False, "fail_on_quota_errors": False,
                 "delete_destination_extra": False, "notify_on_succeeded": True,
                 "notify_on_failed": True, "notify_on_inactive": True, "recursive": False,
                 "ignore_missing": False, "interpret_globs": False}
NOTIFY_FLAGS = ("notify_on_succeeded", "notify_on_failed", "notify_on_inactive")


@dataclass
class NewItem:
    kind: str
    source_path: str
    destination_path: str | None = None
    checksum_algorithm: str | None = None
    external_checksum: str | None = None


@dataclass
class NewTask:
    """A checked submission, before it is a task."""

    type: str
    submission_id: uuid.UUID
    source: str
    destination: str | None
    label: str | None
    deadline: datetime | None
    options: dict[str, Any]
    items: list[NewItem] = field(default_factory=list)

    @property
    def collections(self) -> list[str]:
        return [self.source] if self.destination is None else [self.source, self.destination]


# --- reading the documents --------------------------------------------------------------


def _string(document: Mapping[str, Any], name: str, *, required: bool = False,
            where: str = "") -> str | None:
    value = document.get(name)
    if value is None:
        if required:
            raise bad_request(f"Missing required field '{where}{name}'")
        return None
    if not isinstance(value, str):
        raise bad_request(f"Invalid '{where}{name}': expected a string")
    return value


def _path(document: Mapping[str, Any], name: str, where: str) -> str:
    value = _string(document, name, required=True, where=where)
    assert value is not None
    if not value or len(value) > MAX_PATH or "\n" in value or "\r" in value:
        raise bad_request(f"Invalid '{where}{name}': a path of 1 to {MAX_PATH} characters "
                          "without line breaks")
    return value


def _flag(document: Mapping[str, Any], name: str) -> bool:
    value = document.get(name)
    if value is None:
        return FLAG_DEFAULTS[name]
    if not isinstance(value, bool):
        raise bad_request(f"Invalid '{name}': expected true or false")
    return value


def _data_type(document: Mapping[str, Any], expected: tuple[str, ...], where: str) -> str:
    value = document.get("DATA_TYPE", expected[0])
    if value not in expected:
        raise bad_request(f"Invalid '{where}DATA_TYPE' {value!r}: expected "
                          + " or ".join(repr(name) for name in expected))
    return str(value)


def _common(document: Mapping[str, Any]) -> tuple[uuid.UUID, str | None, datetime | None]:
    raw = _string(document, "submission_id", required=True)
    assert raw is not None
    try:
        submission_id = uuid.UUID(raw)
    except ValueError:
        raise bad_request(f"Invalid 'submission_id' '{raw}': expected a UUID "
                          "(GET /submission_id gives one)") from None
    label = _string(document, "label")
    if label is not None and (len(label) > 128 or any(c in label for c in "\r\n")):
        raise bad_request("Invalid 'label': at most 128 characters without line breaks")
    deadline_text = _string(document, "deadline")
    deadline = parse_datetime(deadline_text, "deadline") if deadline_text else None
    return submission_id, label, deadline


def _items(document: Mapping[str, Any]) -> list[Any]:
    items = document.get("DATA")
    if items is None or items == []:
        raise APIError(400, "ClientError.BadRequest.NoTransferItems",
                       "A transfer requires at least one item")
    if not isinstance(items, list):
        raise bad_request("Invalid 'DATA': expected a list of items")
    if len(items) > MAX_ITEMS:
        raise bad_request(f"Invalid 'DATA': at most {MAX_ITEMS} items")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_request(f"Invalid 'DATA[{index}]': expected an object")
    return items


def _checksum(item: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    algorithm = _string(item, "checksum_algorithm", where=where)
    external = _string(item, "external_checksum", where=where)
    if algorithm is not None:
        try:
            canonical_algorithm(algorithm)
        except UnsupportedAlgorithm as error:
            raise bad_request(f"Invalid '{where}checksum_algorithm': {error.message}") from None
    if external is not None:
        try:
            digest_from_hex(algorithm or "MD5", external)
        except InvalidArgument as error:
            raise bad_request(f"Invalid '{where}external_checksum': {error.message}") from None
    return (algorithm.upper() if algorithm else None), external


def _sync_level(document: Mapping[str, Any]) -> int | None:
    value = document.get("sync_level")
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in SYNC_LEVELS:
        return SYNC_LEVELS[value.lower()]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
        raise bad_request(f"Invalid 'sync_level' {value!r}: expected 0, 1, 2 or 3")
    return value


def _filter_rules(document: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    rules = document.get("filter_rules")
    if rules is None:
        return None
    if not isinstance(rules, list):
        raise bad_request("Invalid 'filter_rules': expected a list")
    checked = []
    for index, rule in enumerate(rules):
        where = f"filter_rules[{index}]."
        if not isinstance(rule, dict):
            raise bad_request(f"Invalid 'filter_rules[{index}]': expected an object")
        _data_type(rule, ("filter_rule",), where)
        method = _string(rule, "method", where=where) or "exclude"
        if method not in ("include", "exclude"):
            raise bad_request(f"Invalid '{where}method' {method!r}: include or exclude")
        name = _string(rule, "name", required=True, where=where)
        kind = _string(rule, "type", where=where)
        if kind not in (None, "file", "dir"):
            raise bad_request(f"Invalid '{where}type' {kind!r}: file or dir")
        checked.append({"DATA_TYPE": "filter_rule", "method": method, "name": name,
                        "type": kind})
    return checked


def parse_transfer(document: Mapping[str, Any]) -> NewTask:
    _data_type(document, ("transfer",), "")
    submission_id, label, deadline = _common(document)
    source = _string(document, "source_endpoint", required=True)
    destination = _string(document, "destination_endpoint", required=True)
    assert source is not None and destination is not None
    items = []
    for index, raw in enumerate(_items(document)):
        where = f"DATA[{index}]."
        data_type = _data_type(raw, ("transfer_item", "transfer_symlink_item"), where)
        source_path = _path(raw, "source_path", where)
        destination_path = _path(raw, "destination_path", where)
        if data_type == "transfer_symlink_item":
            items.append(NewItem(SYMLINK, source_path, destination_path))
            continue
        recursive = raw.get("recursive")
        if recursive is not None and not isinstance(recursive, bool):
            raise bad_request(f"Invalid '{where}recursive': expected true or false")
        algorithm, external = _checksum(raw, where)
        if recursive and external is not None:
            raise bad_request(f"Invalid '{where}external_checksum': only file items have one")
        items.append(NewItem(TREE if recursive else FILE, source_path, destination_path,
                             algorithm, external))
    options: dict[str, Any] = {name: _flag(document, name) for name in TRANSFER_FLAGS}
    options.update({name: _flag(document, name) for name in NOTIFY_FLAGS})
    options["sync_level"] = _sync_level(document)
    options["filter_rules"] = _filter_rules(document)
    symlinks = _string(document, "recursive_symlinks") or "ignore"
    if symlinks not in ("ignore", "keep", "copy"):
        raise bad_request(f"Invalid 'recursive_symlinks' {symlinks!r}: ignore, keep or copy")
    options["recursive_symlinks"] = symlinks
    for name in ("source_local_user", "destination_local_user"):
        options[name] = _string(document, name)
    return NewTask(TRANSFER, submission_id, source, destination, label, deadline, options,
                   items)


def parse_delete(document: Mapping[str, Any]) -> NewTask:
    _data_type(document, ("delete",), "")
    submission_id, label, deadline = _common(document)
    endpoint = _string(document, "endpoint", required=True)
    assert endpoint is not None
    items = []
    for index, raw in enumerate(_items(document)):
        where = f"DATA[{index}]."
        _data_type(raw, ("delete_item",), where)
        items.append(NewItem(DELETE, _path(raw, "path", where)))
    options: dict[str, Any] = {name: _flag(document, name)
                               for name in ("recursive", "ignore_missing", "interpret_globs",
                                            *NOTIFY_FLAGS)}
    options["local_user"] = _string(document, "local_user")
    return NewTask(DELETE_TASK, submission_id, endpoint, None, label, deadline, options, items)


# --- creating the task -----------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    task_id: uuid.UUID
    submission_id: uuid.UUID
    duplicate: bool


def check_collections(session: Session, caller: Caller,
                      new: NewTask) -> dict[str, registry.CollectionTarget]:
    """The task's collections, each one the caller may see (404 otherwise) and a collection
    rather than an endpoint (400)."""
    return {entity_id: registry.collection_target(session, caller, entity_id)
            for entity_id in new.collections}


def find_submitted(session: Session, caller: Caller, submission_id: uuid.UUID) -> Task | None:
    return session.scalar(select(Task).where(Task.owner_id == caller.identity_id,
                                             Task.submission_id == submission_id))


def create(session: Session, caller: Caller, new: NewTask,
           grants: Mapping[str, DependentToken], box: SecretBox, *, now: datetime,
           active_limit: int) -> Submitted:
    """The task for a checked submission (or, for a submission id seen before, the task it
    made then). ``grants``: what the worker reaches each collection with (`credentials`)."""
    found = find_submitted(session, caller, new.submission_id)
    if found is not None:
        return Submitted(found.id, found.submission_id, duplicate=True)
    names = {entity_id: registry.require_visible(session, caller, entity_id).display_name
             for entity_id in new.collections}
    running = session.scalar(select(func.count()).select_from(Task).where(
        Task.owner_id == caller.identity_id, Task.type == new.type, Task.status == "ACTIVE",
        Task.admitted.is_(True))) or 0
    task = Task(
        id=uuid.uuid4(), owner_id=caller.identity_id, submission_id=new.submission_id,
        type=new.type, status="ACTIVE", label=new.label, request_time=now,
        deadline=new.deadline or now + DEFAULT_DEADLINE,
        source_endpoint_id=uuid.UUID(new.source), source_display_name=names[new.source],
        destination_endpoint_id=uuid.UUID(new.destination) if new.destination else None,
        destination_display_name=names[new.destination] if new.destination else None,
        options=new.options, nice_status="Queued", admitted=running < active_limit,
        subtasks_total=len(new.items),
    )
    session.add(task)
    session.flush()
    session.add_all(TaskItem(task_id=task.id, kind=item.kind, source_path=item.source_path,
                             destination_path=item.destination_path, submitted=True,
                             checksum_algorithm=item.checksum_algorithm,
                             external_checksum=item.external_checksum)
                    for item in new.items)
    for collection, grant in grants.items():
        credentials.store(session, box, task.id, uuid.UUID(collection), grant)
    registry.record_use(session, caller.identity_id,
                        [uuid.UUID(entity) for entity in new.collections], now=now)
    return Submitted(task.id, task.submission_id, duplicate=False)


def result_document(kind: str, submitted: Submitted, request_id: str) -> dict[str, Any]:
    """The answer to ``POST /transfer`` or ``POST /delete`` (``kind``: transfer | delete)."""
    if submitted.duplicate:
        code, message = "Duplicate", (f"A {kind} request with submission id "
                                      f"'{submitted.submission_id}' was already accepted")
    else:
        code, message = "Accepted", (f"The {kind} has been accepted and a task has been "
                                     "created and queued for execution")
    return {"DATA_TYPE": f"{kind}_result", "code": code, "message": message,
            "request_id": request_id, "resource": f"/{kind}",
            "submission_id": str(submitted.submission_id), "task_id": str(submitted.task_id),
            "task_link": {"DATA_TYPE": "link", "href": f"task/{submitted.task_id}?format=json",
                          "rel": "related", "resource": "task", "title": "related task"}}
