"""The schema revision the code expects is the newest migration, and models match it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Uuid, inspect, text
from sqlalchemy.orm import Session

import isthmus.auth.models
import isthmus.connect.models
import isthmus.transfer.models
import isthmus.transfer.task_models  # noqa: F401
from isthmus.core.db import (
    SCHEMA_REVISION,
    Base,
    UTCDateTime,
    alembic_config,
    make_engine,
    migrate,
    utcnow,
)
from isthmus.transfer.models import RegistryEntity
from tests.database import fresh_database_url


def test_schema_revision_is_the_alembic_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_REVISION


def test_migrations_produce_exactly_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def _to_revision(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _usage_columns(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return {column["name"] for column in
                inspect(connection).get_columns("transfer_registry_usage")}


@pytest.mark.postgres
def test_0016_drops_the_unused_active_tasks_and_keeps_the_usage_rows(tmp_path: Path) -> None:
    """On SQLite (batch mode copies the table) and on PostgreSQL with -m postgres."""
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url)
        try:
            _to_revision(engine, "0015")
            assert "active_tasks" in _usage_columns(engine)
            entity, identity = uuid.uuid4(), uuid.uuid4()
            with Session(engine) as session, session.begin():  # this table is as in 0015
                session.add(RegistryEntity(id=entity, entity_type="GCSv5_endpoint",
                                           endpoint_id=entity, display_name="e",
                                           owner_string="o"))
            usage_at_0015 = Table("transfer_registry_usage", MetaData(),
                                  Column("identity_id", Uuid), Column("entity_id", Uuid),
                                  Column("last_used", UTCDateTime), Column("active_tasks", Integer))
            with engine.begin() as connection:
                connection.execute(usage_at_0015.insert().values(
                    identity_id=identity, entity_id=entity, last_used=utcnow(), active_tasks=2))
            _to_revision(engine, "0016")
            assert "active_tasks" not in _usage_columns(engine)
            with engine.connect() as connection:
                kept = connection.execute(text(
                    "SELECT count(*) FROM transfer_registry_usage")).scalar_one()
            assert kept == 1
            _to_revision(engine, "0015", down=True)
            assert "active_tasks" in _usage_columns(engine)
        finally:
            engine.dispose()
