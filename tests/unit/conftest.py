"""Domain tests run against a fresh deployment: SQLite, or PostgreSQL with -m postgres."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.auth.service import AuthService
from isthmus.core.config import Settings
from isthmus.deployment import Deployment, open_deployment, open_services
from tests.database import fresh_database_url


@pytest.fixture
def auth(tmp_path: Path) -> Iterator[AuthService]:
    with fresh_database_url(tmp_path) as url:
        service = open_deployment(Settings.load(tmp_path / "data", database_url=url))
        yield service
        service.engine.dispose()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Deployment]:
    """A fresh deployment with Transfer and Connect wired as `isthmus serve` has them."""
    with fresh_database_url(tmp_path) as url:
        deployment = open_services(Settings.load(tmp_path / "data", database_url=url),
                                   serving=True)
        yield deployment
        deployment.auth.engine.dispose()
