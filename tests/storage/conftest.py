"""Fixtures for storage tests: a real local account to map to (when running as root), and
directories every account can reach."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.storage.accounts import LocalAccount


@pytest.fixture(scope="session")
def mapped_account() -> Iterator[LocalAccount]:
    """A throwaway local account, made with useradd and removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("acting as another account needs the tests to run as root")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("useradd/userdel are not installed")
    name = f"isthmus-t{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        yield LocalAccount.lookup(name)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A temporary directory any account can reach (pytest's own are root-only)."""
    base = Path(tempfile.mkdtemp(prefix="isthmus-storage-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)
