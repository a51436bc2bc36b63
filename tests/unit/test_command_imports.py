"""Commands that serve no HTTP never load the web stack: it is most of a command's start-up.

Each check runs in a fresh interpreter, as the console scripts do, and looks at what it
imported. The last one shows the check sees the web stack where an app is built.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

WEB_STACK = ("fastapi", "starlette", "uvicorn", "jinja2")

REPORT = f"""
import sys
loaded = sorted({{name.partition(".")[0] for name in sys.modules}} & set({WEB_STACK!r}))
print(",".join(loaded))
"""


def web_modules_after(code: str, *, stdin: str = "") -> list[str]:
    finished = subprocess.run([sys.executable, "-c", code + REPORT], input=stdin,
                              capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stderr
    return [name for name in finished.stdout.splitlines()[-1].split(",") if name]


@pytest.mark.parametrize("module", [
    "isthmus.cli.main",  # the `isthmus` console script
    "isthmus.gcs_cli.main",  # `globus-connect-server`
    "isthmus.deployment",  # what every command that touches the database opens
    "isthmus.provisioning",  # `endpoint setup|cleanup`, `node setup|cleanup`
])
def test_command_modules_import_no_web_stack(module: str) -> None:
    assert web_modules_after(f"import {module}") == []


def test_a_database_command_runs_without_the_web_stack(tmp_path: Path) -> None:
    """`user create` then `idp list` and `client list` on a fresh data dir: the deployment
    is opened (migrated, built-ins, default endpoint) as any administrative command does."""
    data_dir = str(tmp_path / "data")
    code = f"""
from isthmus.cli.main import main
for arguments in (["user", "create", "ann", "--password-stdin"], ["idp", "list"],
                  ["client", "list"]):
    main([*arguments, "--data-dir", {data_dir!r}], standalone_mode=False)
"""
    assert web_modules_after(code, stdin="secret\n") == []
    assert (tmp_path / "data").is_dir()


def test_building_an_app_loads_the_web_stack() -> None:
    assert set(web_modules_after("import isthmus.server")) >= {"fastapi", "starlette"}
