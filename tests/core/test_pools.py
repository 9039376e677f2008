"""Pools that stop when the run stops: Ctrl-C drops the queued jobs instead of running them all first."""

from __future__ import annotations

import ast
import threading
import time

import pytest

from devpi_airgap.core.pools import stoppable_pool
from testing.tasks import REPO


def test_an_exception_drops_the_jobs_not_started():
    started: list[int] = []
    release = threading.Event()

    def job(n: int) -> None:
        started.append(n)
        release.wait(5)

    with pytest.raises(KeyboardInterrupt), stoppable_pool(2) as pool:
        for n in range(50):
            pool.submit(job, n)
        while len(started) < 2:
            time.sleep(0.01)
        release.set()
        raise KeyboardInterrupt
    assert len(started) < 50  # a plain ThreadPoolExecutor runs all fifty before letting Ctrl-C out


def test_the_tool_makes_no_plain_thread_pool_that_would_hold_up_a_stop():
    plain = []
    for path in (REPO / "devpi_airgap").rglob("*.py"):
        if path == REPO / "devpi_airgap" / "core" / "pools.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == (
                "ThreadPoolExecutor"
            ):
                plain.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert plain == []
