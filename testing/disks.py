"""A disk of a test's own (a tmpfs), so that a test can fill it at a chosen moment; mounting one needs root, as CI has."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """An 8 MB tmpfs mounted under tmp_path; `resize` leaves it as much room as a test wants."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def resize(disk: Path, room_kb: int) -> None:
    used = int(subprocess.run(["du", "-sk", str(disk)], capture_output=True, text=True, check=True).stdout.split()[0])
    subprocess.run(["mount", "-o", f"remount,size={used + room_kb}k", str(disk)], check=True)
