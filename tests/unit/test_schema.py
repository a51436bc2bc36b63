"""The schema revision the code expects is the newest migration, and models match it."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import isthmus.auth.models
import isthmus.connect.models
import isthmus.transfer.models
import isthmus.transfer.task_models  # noqa: F401
from isthmus.core.db import SCHEMA_REVISION, Base, alembic_config, make_engine, migrate


def test_schema_revision_is_the_alembic_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_REVISION


def test_migrations_produce_exactly_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
