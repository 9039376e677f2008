"""Thread pools that stop when the run stops.

A plain `with ThreadPoolExecutor()` runs every queued job before it lets an
exception (Ctrl-C among them) out; with dozens of resolutions or downloads
queued that is minutes. This pool drops the jobs that have not started.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager


@contextmanager
def stoppable_pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
