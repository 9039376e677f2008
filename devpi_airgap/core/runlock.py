"""One run at a time: a portable lock file (filelock works on Windows, macOS and Linux), refused clearly when taken.

Locks are re-entrant within one process, so `inv refresh` may hold the
wheelhouse while the download and the bundle it runs take it again.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from devpi_airgap.core.errors import BusyError

WHEELHOUSE_LOCK = ".wheelhouse.lock"


@contextmanager
def exclusive(path: Path, busy: str) -> Iterator[None]:
    """Hold `path` for this run; `busy` is the message when another run holds it."""
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=0, is_singleton=True, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise BusyError(busy) from None
    try:
        yield
    finally:
        lock.release()
        # A run that failed before writing anything leaves nothing behind, not even the directory it locked.
        if created and lock.lock_counter == 0 and [p.name for p in path.parent.iterdir()] in ([], [path.name]):
            path.unlink(missing_ok=True)
            path.parent.rmdir()


def wheelhouse_lock(wheelhouse: Path) -> AbstractContextManager[None]:
    """Downloads and bundles change the pool, the locks and the shipped record: one run at a time."""
    path = wheelhouse / WHEELHOUSE_LOCK
    return exclusive(
        path,
        f"another devpi-airgap run is working on {wheelhouse} (it holds {path}); wait for it to finish, then run again",
    )
