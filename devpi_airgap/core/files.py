"""Files on this machine: their sha256, the text users save, and writes that never leave half a file behind."""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def users_text(raw: bytes) -> str:
    """A text file as a user's editor or shell saved it: UTF-8 with or without a byte-order mark, or UTF-16 with one.

    Windows PowerShell's `>` writes UTF-16 (so `pip freeze > constraints.txt` does), and Notepad may add a
    UTF-8 byte-order mark; pip and uv read both. Raises UnicodeDecodeError for anything else.
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def not_users_text(path: Path, exc: UnicodeDecodeError) -> str:
    """What to tell a user whose file users_text could not read; the caller raises it as its own error."""
    return f"{path}: not UTF-8 or UTF-16 text (byte {exc.start} cannot be read); save it as UTF-8 and run again"


def tmpfs_with_room(needed: int) -> str | None:
    """/dev/shm, if this machine has it writable with more than `needed` bytes free; else None (the usual temp dir).

    For scratch that is many small files, made and thrown away within a run. On tmpfs a file costs no disk
    block and no inode search: this machine's ext4 /tmp, where runs keep removing thousands of files, took
    0.24-0.65 CPU-s to make 2,000 small files, and /dev/shm 0.02. Whatever goes there lives in memory, so
    each caller asks for room to spare.
    """
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        return None
    return str(shm) if shutil.disk_usage(shm).free > needed else None


_swept: set[tuple[Path, str]] = set()  # (parent, kind) swept in this run


def scratch_prefix(where: str | None, kind: str) -> str:
    """`kind` with this process's id, to name a scratch directory or file in `where` (None: the usual temp dir) by.

    A run killed outright (SIGKILL, the OOM killer) leaves its scratch behind, and on
    tmpfs that holds memory until the machine restarts. So the first time a run asks for
    a kind of scratch in a place, that kind's scratch whose process is gone is removed. Only on POSIX: Windows has no tmpfs, and
    there os.kill(pid, 0) would end the process it asks about.
    """
    parent = Path(where or tempfile.gettempdir())
    if (parent, kind) not in _swept:  # once a run: a run makes such scratch for every uv try, build and check
        _swept.add((parent, kind))
        _remove_orphans(parent, kind)
    return f"{kind}{os.getpid()}-"


def _remove_orphans(parent: Path, kind: str) -> None:
    if sys.platform == "win32":
        return
    named = re.compile(re.escape(kind) + r"(\d+)-")
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        found = named.match(entry.name)
        if not found:
            continue
        try:
            mine = not entry.is_symlink() and entry.stat(follow_symlinks=False).st_uid == os.getuid()
            if mine and not _alive(int(found.group(1))):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
        except OSError:
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, as another user's
    return True


def change_stamp(path: Path) -> list[int]:
    """What no write can leave as it was: size, inode and change time (ctime, unlike mtime, cannot be set back).

    A cache keyed by it can trust a file it has seen; any rewrite moves ctime on.
    """
    st = path.stat()
    return [st.st_size, st.st_ino, st.st_ctime_ns]


# How long a rename waits on Windows for whoever holds the file: pip retries for 1 s, every 0.25 s.
_HELD_FOR = 2.0
_HELD_POLL = 0.1


def replace(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """os.replace, which on Windows waits a moment for a file another program holds open.

    A virus scanner (Windows Defender among them) opens each new file to scan it, and
    while it does, renaming over or from that file fails with PermissionError (WinError
    5 or 32): a download finished and checked would fail the run. pip retries its own
    renames for the same reason. Elsewhere a rename does not wait for readers.
    """
    deadline = time.monotonic() + _HELD_FOR
    while True:
        try:
            os.replace(source, dest)
            return
        except PermissionError:
            if sys.platform != "win32" or time.monotonic() >= deadline:
                raise
            time.sleep(_HELD_POLL)


def atomic_write(path: Path, data: str | bytes, *, mode: int = 0o644) -> None:
    """Replace `path` whole: a reader sees the old file or the new one, never a mix.

    The temporary name is unique per call, so two runs writing the same file
    never write into each other's temporary file, and a failure (a full disk)
    removes it instead of leaving it behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, mode)
        replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, text: str) -> bool:
    """atomic_write, unless the file already says exactly this; True when written.

    A run that changes nothing leaves every file as it was: a re-run with nothing new rewrote
    the wheelhouse's four caches (hashes, licenses, page fingerprints, audit) byte for byte.
    """
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass  # absent or unreadable: the write below makes it, or says why it cannot
    atomic_write(path, text)
    return True


@cache
def sha256_cached(path: Path) -> str:
    """sha256_file, once per path and process: a deploy compares the same local wheels several times."""
    return sha256_file(path)


# How uv ("os error 28") and pip ("[Errno 28]") report a full disk, and the path they name.
_DISK_FULL = re.compile(r"No space left on device|os error 28|\[Errno 28\]")
_QUOTED_PATH = re.compile(r"[`'](/[^`']+)[`']")


def raise_if_disk_full(tool_output: str) -> None:
    """A child tool that failed on a full disk is the disk's fault, not the requirement's: raise it as such."""
    if _DISK_FULL.search(tool_output):
        path = _QUOTED_PATH.search(tool_output)
        raise OSError(errno.ENOSPC, "No space left on device", path.group(1) if path else None)
