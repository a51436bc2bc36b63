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
    root = tmp_path_factory.mktemp("isthmus")
    live = start_server(root / "data", "--access-log", str(root / "access.log"))
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


@pytest.fixture
def isthmus_env(server: LiveServer, tmp_path: Path) -> dict[str, str]:
    """A shell's environment after `eval "$(isthmus env)"`, with a fresh HOME.

    The CLI keeps its tokens under ~/.globus: a HOME of its own keeps the real one out of reach.
    """
    import os
    import subprocess

    from tests.live import ISTHMUS

    home = tmp_path / "home"
    home.mkdir()
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("GLOBUS_", "ISTHMUS_"))}
    clean["HOME"] = str(home)
    # Evaluated as a user's shell does, so the `export` and `unset` lines mean what they say.
    dumped = subprocess.run(
        ["bash", "-c", 'eval "$("$0" env --data-dir "$1")" && env -0', ISTHMUS,
         str(server.data_dir)],
        capture_output=True, env=clean, check=True, timeout=60,
    ).stdout.decode()
    env = dict(item.split("=", 1) for item in dumped.split("\0") if "=" in item)
    assert env["GLOBUS_SDK_SERVICE_URL_AUTH"] == server.base_url
    assert env["GLOBUS_SDK_VERIFY_SSL"] == server.ca_file
    assert "GLOBUS_SDK_ENVIRONMENT" not in env
    return env


@pytest.fixture
def answer_login_prompt(server: LiveServer):  # -> Callable[[Popen[str], User], str]
    """A function playing the user at a terminal: it reads the authorize URL a program
    prints, logs in and consents in a browser, and types the code the server shows into
    the program's stdin. It returns what the program printed up to the URL."""
    import re
    import subprocess

    def answer(process: subprocess.Popen[str], user: User) -> str:
        assert process.stdout is not None and process.stdin is not None
        printed: list[str] = []
        for line in process.stdout:
            printed.append(line)
            found = re.search(r"https?://\S+/v2/oauth2/authorize\?\S+", line)
            if found:
                break
        else:
            _, errors = process.communicate(timeout=60)
            raise AssertionError(f"no authorize URL was printed:\n{''.join(printed)}\n{errors}")
        browser = Browser(server.ca_file)
        location = browser.authorize(found.group(0), user.username, user.password)
        assert location.startswith(server.base_url + "v2/web/auth-code?"), location
        process.stdin.write(browser.code_from_page(location) + "\n")
        process.stdin.flush()
        return "".join(printed)

    return answer
