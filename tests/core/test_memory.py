"""give_back_large_blocks: freed large blocks leave the process, as freed pages of a run do."""

from __future__ import annotations

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
