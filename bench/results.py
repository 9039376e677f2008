"""Where every benchmark writes what it measured: bench/results/NAME.json, with the machine it ran on.

Results live in these files, written by the benchmarks themselves, never in docstrings.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def default_path(name: str) -> Path:
    return RESULTS / f"{name}.json"


def write_results(path: Path, data: dict) -> Path:
    record = {
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        **data,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path
