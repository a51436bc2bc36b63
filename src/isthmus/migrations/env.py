"""Alembic environment: runs on the connection Isthmus hands it, or on ISTHMUS_DATABASE_URL."""

from __future__ import annotations

from alembic import context

# Importing the models registers their tables on Base.metadata.
import isthmus.auth.models
import isthmus.connect.models
import isthmus.groups.models
import isthmus.transfer.models
import isthmus.transfer.task_models  # noqa: F401
from isthmus.core.config import Settings
from isthmus.core.db import Base, make_engine

metadata = Base.metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(Settings.load().database_url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
