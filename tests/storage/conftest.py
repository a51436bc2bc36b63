"""Fixtures for storage tests: a real local account to map to (when running as root), and
directories every account can reach."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
import warnings
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
    account = LocalAccount.lookup(name)
    try:
        yield account
    finally:
        # A test that failed half-way may leave one of its storage workers running as the
        # account, and userdel refuses to remove an account in use: stop ours first.
        for pid in _our_children_running_as(account.uid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        done = subprocess.run(["userdel", name], check=False, capture_output=True, text=True)
        if done.returncode != 0:
            warnings.warn(f"could not remove the test account {name}: {done.stderr}", stacklevel=1)


def _our_children_running_as(uid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if int(fields["PPid"]) == os.getpid() and int(fields["Uid"].split()[0]) == uid:
            found.append(int(status.parent.name))
    return found


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A temporary directory any account can reach (pytest's own are root-only)."""
    base = Path(tempfile.mkdtemp(prefix="isthmus-storage-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)
