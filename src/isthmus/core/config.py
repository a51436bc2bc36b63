"""Settings for one Isthmus deployment: where its data lives and how it is reached."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DATA_DIR = "~/.isthmus"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _absolute(path: str | Path | None) -> Path | None:
    # Absolute, so worker processes started elsewhere write to the same file.
    return Path(path).expanduser().resolve() if path else None


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to know about the deployment it belongs to.

    Values come from command-line options first, then ``ISTHMUS_*`` variables,
    then defaults. The public URL is what every advertised address (issuer,
    ``jwks_uri``, authorize page links) is built from; it always ends in ``/``.
    """

    data_dir: Path
    database_url: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tls: bool = True
    tls_cert: Path | None = None
    tls_key: Path | None = None
    public_url_override: str | None = None
    access_token_lifetime: int = 48 * 3600
    authorization_code_lifetime: int = 600
    browser_session_lifetime: int = 7 * 24 * 3600
    introspection_cache_seconds: float = 1.0
    local_idp_domain: str = field(default="")
    # Where `isthmus serve` appends one line per request (None: no access log).
    access_log: Path | None = None
    # Fair sharing: how many transfer and delete tasks of one user run at once (the rest
    # wait, queued), and how many tasks one runner process works on at once.
    transfer_active_tasks: int = 3
    delete_active_tasks: int = 3
    task_workers: int = 4
    # How long a runner's claim on a task lasts without being renewed: after a crash, another
    # runner (or the restarted one) takes the task over once it lapses.
    task_lease_seconds: int = 30
    # Where task notifications are mailed through (``smtp://[user:password@]host[:port]``,
    # ``smtps://`` for TLS); None: no mail. Holds a password: never printed.
    smtp_url: str | None = field(default=None, repr=False)
    # The From of those mails (default: isthmus@ the public host).
    mail_from: str | None = None

    @classmethod
    def load(
        cls,
        data_dir: str | Path | None = None,
        *,
        database_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        tls: bool | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        public_url: str | None = None,
        access_log: str | Path | None = None,
    ) -> Settings:
        root = Path(
            data_dir or os.environ.get("ISTHMUS_DATA_DIR") or DEFAULT_DATA_DIR
        ).expanduser().resolve()
        db_url = (
            database_url
            or os.environ.get("ISTHMUS_DATABASE_URL")
            or f"sqlite:///{root / 'isthmus.db'}"
        )
        return cls(
            data_dir=root,
            database_url=db_url,
            host=host or os.environ.get("ISTHMUS_HOST") or DEFAULT_HOST,
            port=port or _env_int("ISTHMUS_PORT", DEFAULT_PORT),
            tls=tls if tls is not None else os.environ.get("ISTHMUS_HTTP", "") == "",
            tls_cert=Path(tls_cert) if tls_cert else None,
            tls_key=Path(tls_key) if tls_key else None,
            public_url_override=public_url or os.environ.get("ISTHMUS_PUBLIC_URL") or None,
            access_token_lifetime=_env_int("ISTHMUS_ACCESS_TOKEN_LIFETIME", 48 * 3600),
            authorization_code_lifetime=_env_int("ISTHMUS_AUTHORIZATION_CODE_LIFETIME", 600),
            local_idp_domain=os.environ.get("ISTHMUS_LOCAL_IDP_DOMAIN", ""),
            access_log=_absolute(access_log or os.environ.get("ISTHMUS_ACCESS_LOG")),
            transfer_active_tasks=_env_int("ISTHMUS_TRANSFER_ACTIVE_TASKS", 3),
            delete_active_tasks=_env_int("ISTHMUS_DELETE_ACTIVE_TASKS", 3),
            task_workers=_env_int("ISTHMUS_TASK_WORKERS", 4),
            task_lease_seconds=_env_int("ISTHMUS_TASK_LEASE_SECONDS", 30),
            smtp_url=os.environ.get("ISTHMUS_SMTP_URL") or None,
            mail_from=os.environ.get("ISTHMUS_MAIL_FROM") or None,
        )

    @property
    def public_url(self) -> str:
        """The base URL clients use, with a trailing slash (the SDK needs it)."""
        if self.public_url_override:
            url = self.public_url_override
        else:
            scheme = "https" if self.tls else "http"
            host = "localhost" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
            url = f"{scheme}://{host}:{self.port}"
        return url if url.endswith("/") else url + "/"

    @property
    def site_path(self) -> str:
        """The path every page of the deployment starts with (``/`` unless behind a prefix)."""
        return urlsplit(self.public_url).path or "/"

    @property
    def issuer(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"
