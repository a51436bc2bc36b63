"""Mail to a task's owner when the task succeeds, fails or becomes inactive, as Globus sends
it: only as the task's ``notify_on_succeeded`` / ``notify_on_failed`` / ``notify_on_inactive``
ask, and only where the deployment names an SMTP server (``ISTHMUS_SMTP_URL``).

What a transaction decides is mailed once it commits: `due` notes the task in its session,
and the `Mailer` listening to the sessions' commits hands the notice to a thread of its own,
so no worker or request waits on the mail server. A process that ends between the commit and
the sending loses that mail: notifications are best effort.
"""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.identities import IdentityDirectory
from isthmus.transfer.task_models import Task

logger = logging.getLogger("isthmus.transfer.notifications")

FLAGS = {"SUCCEEDED": "notify_on_succeeded", "FAILED": "notify_on_failed",
         "INACTIVE": "notify_on_inactive"}
_PENDING = "isthmus.transfer.notices"
SEND_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Notice:
    """What the mail about one task says."""

    task_id: uuid.UUID
    owner_id: uuid.UUID
    type: str
    status: str
    label: str | None
    source: str | None
    destination: str | None
    files_transferred: int
    bytes_transferred: int
    # Why it failed, or why it waits.
    reason: str | None


def due(session: Session, task: Task) -> None:
    """Mail the owner about the task's new status once this transaction commits, if the task
    asked for it (every notify flag defaults to true, as Globus has it)."""
    flag = FLAGS.get(task.status)
    if flag is None or not task.options.get(flag, True):
        return
    reason = (f"{task.fatal_error_code}: {task.fatal_error_description}"
              if task.fatal_error_code else task.nice_status if task.status == "INACTIVE"
              else None)
    session.info.setdefault(_PENDING, []).append(Notice(
        task.id, task.owner_id, task.type, task.status, task.label, task.source_display_name,
        task.destination_display_name, task.files_transferred, task.bytes_transferred,
        reason))


def message(notice: Notice, sender: str, recipient: str) -> EmailMessage:
    kind = "Transfer" if notice.type == "TRANSFER" else "Delete"
    name = notice.label or str(notice.task_id)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = recipient
    mail["Subject"] = f"{notice.status} - {kind} task {name}"
    lines = [f"Task ID: {notice.task_id}", f"Type: {notice.type}",
             f"Label: {notice.label or ''}", f"Status: {notice.status}"]
    if notice.reason:
        lines.append(f"Details: {notice.reason}")
    lines.append(f"Source: {notice.source or ''}")
    if notice.type == "TRANSFER":
        lines += [f"Destination: {notice.destination or ''}",
                  f"Files transferred: {notice.files_transferred}",
                  f"Bytes transferred: {notice.bytes_transferred}"]
    mail.set_content("\n".join(lines) + "\n")
    return mail


@dataclass(frozen=True)
class SMTPServer:
    host: str
    port: int
    tls: bool  # smtps: TLS from the first byte
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> SMTPServer:
        """``smtp://[user:password@]host[:port]`` (port 25) or ``smtps://`` (port 465)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("the SMTP URL must be smtp://[user:password@]host[:port] or "
                             "smtps://...")
        tls = parts.scheme == "smtps"
        return cls(parts.hostname, parts.port or (465 if tls else 25), tls,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)

    def send(self, mail: EmailMessage) -> None:
        connection: smtplib.SMTP
        if self.tls:
            connection = smtplib.SMTP_SSL(self.host, self.port, timeout=SEND_TIMEOUT_SECONDS,
                                          context=ssl.create_default_context())
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=SEND_TIMEOUT_SECONDS)
        with connection:
            if self.username is not None:
                connection.login(self.username, self.password or "")
            connection.send_message(mail)


class Mailer:
    """Sends the notices of committed transactions, one at a time, on a thread of its own."""

    def __init__(self, server: SMTPServer, sender: str, identities: IdentityDirectory) -> None:
        self.server = server
        self.sender = sender
        self.identities = identities
        self._queue: queue.Queue[Notice] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def listen(self, sessions: sessionmaker[Session]) -> None:
        event.listen(sessions, "after_commit", self._committed)

    def _committed(self, session: Session) -> None:
        notices: list[Notice] = session.info.pop(_PENDING, [])
        if not notices:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="isthmus-mailer",
                                                daemon=True)
                self._thread.start()
        for notice in notices:
            self._queue.put(notice)

    def _run(self) -> None:
        while True:
            notice = self._queue.get()
            try:
                self.send(notice)
            except (OSError, smtplib.SMTPException) as error:
                logger.warning("task %s: could not mail its owner (%s)", notice.task_id,
                               type(error).__name__)
            except Exception:
                # The owner's directory or the message failed: lose this mail, not the thread.
                logger.exception("task %s: could not mail its owner", notice.task_id)

    def send(self, notice: Notice) -> None:
        owner = self.identities.lookup_identities([notice.owner_id]).get(notice.owner_id)
        if owner is None or not owner.email:
            return  # nobody to write to (a client identity, an identity without address)
        self.server.send(message(notice, self.sender, owner.email))
