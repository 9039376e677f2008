"""Run the project's tasks exactly as a user would: through `inv` and `fab` command lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_task(
    *args: str, cwd: Path | None = None, env: dict | None = None, program: str = "invoke", check: bool = False
) -> subprocess.CompletedProcess:
    """Run a task exactly as a user would, through its command line, from the repo's task file."""
    command = [sys.executable, "-m", program, "--search-root", str(REPO), *args]
    result = subprocess.run(command, cwd=cwd or REPO, env=env or dict(os.environ), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def require_or_fail(condition: bool, reason: str) -> None:
    """Skip outside CI; in CI a missing prerequisite is a failure, never a silent skip."""
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to run this test: {reason}")
        pytest.skip(reason)
