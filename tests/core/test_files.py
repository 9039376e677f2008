"""One sha256 and one atomic write for the whole tool."""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from devpi_airgap.core import files
from devpi_airgap.core.files import (
    atomic_write,
    replace,
    scratch_prefix,
    sha256_file,
    tmpfs_with_room,
    write_if_changed,
)


def test_sha256_file_reads_in_chunks_and_matches_hashlib(tmp_path):
    path = tmp_path / "big"
    data = os.urandom(3 * (1 << 20) + 17)  # more than one chunk, and not a multiple of it
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_atomic_write_replaces_whole_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "deep" / "lock.json"
    atomic_write(path, "one")
    atomic_write(path, b"two")
    assert path.read_text() == "two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["lock.json"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_write_if_changed_leaves_a_file_that_says_the_same_untouched(tmp_path):
    path = tmp_path / "cache" / "hashes.json"
    assert write_if_changed(path, "{}") is True  # made, its directory too
    before = path.stat()
    assert write_if_changed(path, "{}") is False
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_ctime_ns,
    )
    assert write_if_changed(path, '{"a": 1}') is True
    assert path.read_text() == '{"a": 1}' and sorted(p.name for p in path.parent.iterdir()) == ["hashes.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    path = tmp_path / "lock.json"
    atomic_write(path, "old")

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["lock.json"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/dev/shm is Linux's")
def test_tmpfs_is_offered_only_with_the_room_asked_for():
    free = shutil.disk_usage("/dev/shm").free
    assert tmpfs_with_room(0) == "/dev/shm"
    assert tmpfs_with_room(free + (1 << 30)) is None  # more than it has: the usual temp dir


@pytest.mark.skipif(os.name != "posix", reason="scratch is swept on POSIX only")
def test_a_scratch_prefix_removes_the_scratch_of_its_kind_whose_process_is_gone(tmp_path):
    ended = subprocess.Popen(["true"])
    ended.wait()
    kind = "airgap-uv-cache-"
    orphan = tmp_path / f"{kind}{ended.pid}-abc"
    kept = [
        tmp_path / f"{kind}{os.getpid()}-def",  # this run's own
        tmp_path / f"{kind}1-ghi",  # a live process's
        tmp_path / f"airgap-verify-{ended.pid}-jkl",  # another kind
    ]
    for directory in [orphan, *kept]:
        (directory / "inside").mkdir(parents=True)
    orphan_file, kept_file = tmp_path / f"{kind}{ended.pid}-partial", tmp_path / f"{kind}1-partial"  # files too
    for file in (orphan_file, kept_file):
        file.write_bytes(b"half")
    assert scratch_prefix(str(tmp_path), kind) == f"{kind}{os.getpid()}-"
    assert not orphan.exists() and not orphan_file.exists()
    assert all(directory.is_dir() for directory in kept) and kept_file.is_file()


def test_every_temporary_directory_of_the_tool_is_named_for_its_run():
    """A directory named without the run's pid outlives a run killed outright: no later run knows it is free to go."""
    from testing.tasks import REPO

    unnamed = []
    for path in (REPO / "devpi_airgap").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            called = node.func if isinstance(node, ast.Call) else None
            if not isinstance(called, ast.Attribute) or called.attr not in ("TemporaryDirectory", "mkdtemp"):
                continue
            prefix = next((k.value for k in node.keywords if k.arg == "prefix"), None)
            named = isinstance(prefix, ast.Call) and getattr(prefix.func, "id", "") == "scratch_prefix"
            if not named:
                unnamed.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert unnamed == []


class HeldOpen:
    """os.replace failing as on Windows while a virus scanner holds the file open, `times` times, then working."""

    def __init__(self, times: int):
        self.times, self.calls = times, 0
        self.real = os.replace

    def __call__(self, source, dest):
        self.calls += 1
        if self.calls <= self.times:
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        self.real(source, dest)


def test_on_windows_a_rename_waits_for_a_file_held_open_a_moment(tmp_path, monkeypatch):
    held = HeldOpen(times=3)
    monkeypatch.setattr(os, "replace", held)
    monkeypatch.setattr(sys, "platform", "win32")
    atomic_write(tmp_path / "lock.json", "{}\n")  # as every write of a lock, record or cache goes
    assert (tmp_path / "lock.json").read_text() == "{}\n" and held.calls == 4
    assert [p.name for p in tmp_path.iterdir()] == ["lock.json"]


def test_a_file_held_for_good_fails_after_the_wait_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", HeldOpen(times=10**6))
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(files, "_HELD_FOR", 0.3)
    with pytest.raises(PermissionError):
        atomic_write(tmp_path / "lock.json", "{}\n")
    assert list(tmp_path.iterdir()) == []


def test_elsewhere_a_refused_rename_fails_at_once(tmp_path, monkeypatch):
    """On POSIX a reader never blocks a rename: a PermissionError there is a real one, not worth waiting for."""
    held = HeldOpen(times=1)
    monkeypatch.setattr(os, "replace", held)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(PermissionError):
        replace(tmp_path / "a", tmp_path / "b")
    assert held.calls == 1
