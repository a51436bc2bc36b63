"""Shared fixtures: live servers started with the real `isthmus serve`, and users on them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import Browser
from tests.live import LiveServer, start_server


@dataclass(frozen=True)
class User:
    username: str
    password: str
    id: str


def _new_user(server: LiveServer, prefix: str) -> User:
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    created = server.create_user(name, password, email=f"{name}@example.org",
                                 name=prefix.title())
    return User(created["username"], password, created["id"])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("isthmus") / "data")
    yield live
    live.stop()


@pytest.fixture(scope="session")
def short_lived_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Access tokens live 3 seconds, so tests can watch them expire and be renewed."""
    live = start_server(tmp_path_factory.mktemp("isthmus-short") / "data",
                        ISTHMUS_ACCESS_TOKEN_LIFETIME="3")
    yield live
    live.stop()


@pytest.fixture
def sdk_env(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
    """Point the official SDK, in this process, at the session's server."""
    for key, value in server.sdk_environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GLOBUS_SDK_ENVIRONMENT", raising=False)
    return server


@pytest.fixture
def user(server: LiveServer) -> User:
    return _new_user(server, "alice")


@pytest.fixture
def browser(server: LiveServer) -> Browser:
    return Browser(server.ca_file)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
