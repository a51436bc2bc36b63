"""A throwaway database for domain tests: SQLite in a temp dir, or PostgreSQL on demand.

`ISTHMUS_TEST_DATABASE=postgresql` makes the fixtures create a fresh database
on 127.0.0.1:5432 (trust auth) for each test and drop it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def wants_postgres() -> bool:
    return os.environ.get("ISTHMUS_TEST_DATABASE", "sqlite") == "postgresql"


@contextmanager
def fresh_database_url(tmp_dir: Path) -> Iterator[str]:
    if not wants_postgres():
        yield f"sqlite:///{tmp_dir / 'test.db'}"
        return
    with postgres_database() as name:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def postgres_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5):
            return True
    except psycopg.Error:
        return False


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database on the test server (its name), dropped after."""
    import psycopg

    name = f"isthmus_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
