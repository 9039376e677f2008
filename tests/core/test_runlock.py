"""The portable run lock: re-entrant within a run, refused across runs."""

from __future__ import annotations

import subprocess
import sys

from devpi_airgap.core.runlock import exclusive


def test_the_same_run_may_take_its_lock_again(tmp_path):
    lock = tmp_path / "x.lock"
    with exclusive(lock, "busy"), exclusive(lock, "busy"):  # refresh holding it while download takes it too
        pass


def test_another_process_is_refused_while_the_lock_is_held(tmp_path):
    lock = tmp_path / "x.lock"
    probe = (
        "import sys; from devpi_airgap.core.runlock import exclusive; from devpi_airgap.core.errors import BusyError\n"
        f"try:\n    with exclusive(__import__('pathlib').Path({str(lock)!r}), 'busy'): sys.exit(0)\n"
        "except BusyError: sys.exit(8)"
    )
    with exclusive(lock, "busy"):
        assert subprocess.run([sys.executable, "-c", probe]).returncode == 8
    assert subprocess.run([sys.executable, "-c", probe]).returncode == 0
