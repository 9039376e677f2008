"""give_back_large_blocks: freed large blocks leave the process, as freed pages of a run do; and what
collect_only_the_run keeps from the collector."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from testing.tasks import REPO

# Frees 200 blocks of 1 MB but the last, after one larger block that raises glibc's own threshold.
CHILD = """
import sys
from devpi_airgap.core.memory import give_back_large_blocks
give_back_large_blocks()
raised = b"x" * (4 << 20)
del raised
blocks = [b"x" * (1 << 20) for _ in range(200)]
last = blocks[-1]
del blocks
print(next(int(line.split()[1]) // 1024 for line in open("/proc/self/status") if line.startswith("VmRSS")))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc, read through /proc")
def test_freed_large_blocks_leave_the_process():
    rss_mb = int(
        subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, check=True).stdout
    )
    assert rss_mb < 100  # kept by glibc, the 199 freed blocks would hold about 200 MB


# Loads a module, then makes a garbage cycle after the call and counts what a collection frees.
FROZEN = """
import gc, json
import devpi_airgap.core.inventory
from devpi_airgap.core.memory import collect_only_the_run
collect_only_the_run()
frozen = gc.get_freeze_count()
cycle = []
cycle.append(cycle)
del cycle
print(json.dumps([frozen, gc.isenabled(), gc.collect()]))
"""


def test_what_was_loaded_is_kept_from_the_collector_and_what_the_run_makes_is_not():
    out = subprocess.run([sys.executable, "-c", FROZEN], cwd=REPO, capture_output=True, text=True, check=True).stdout
    frozen, enabled, collected = json.loads(out)
    assert frozen > 10_000  # the modules' objects: pydantic and the inventory's models alone make more
    assert enabled and collected >= 1  # the cycle made after the call is still freed
