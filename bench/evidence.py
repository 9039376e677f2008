"""Benchmark what the evidence pack adds to `inv download` + `inv bundle --full`.

    .venv/bin/python -m bench.evidence [--inventory inventory.yaml] [--baseline-rev feccb54] [--rounds 3]

The baseline is this tool as it was before the evidence pack (`--baseline-rev`,
by default the last commit without it), checked out into a git worktree and run
with the same Python. The contender is the working tree, with the inventory's
license policy plus `policy.advisories` answered by a loopback fake OSV (the
real one is out of reach here) that holds an advisory for every tenth locked
project, below the blocking threshold so that the run completes.

One run measures, in this order:
1. cold: a fresh project, wheelhouse and uv cache, `inv download` then
   `inv bundle --full`, once for the baseline and once for the contender: the
   user's real first run, network included.
2. warm, `--rounds` times, alternating: the same two commands again on each
   project (nothing new to fetch, so no network noise but the index's pages):
   the worst case for the ratio, since evidence is the larger share of a short run.
Reported: medians, the extra seconds, and the ratio contender / baseline.
Goal (issue 10): at most 10% extra. Results go to bench/results/evidence.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from bench.download import clean_env
from bench.results import default_path, write_results
from testing.fakeosv import record, serve_osv
from testing.tasks import REPO

DEFAULT_BASELINE = "feccb54"  # the last commit before the evidence pack (issue 10)


def env(project: Path) -> dict:
    return clean_env(UV_CACHE_DIR=str(project / "uv-cache"))


def run(tool: Path, project: Path, *args: str) -> float:
    """One task with `tool`'s own code first on the path; returns its wall time.

    `-S` keeps site's .pth files out, among them the editable install's finder,
    which would import this working tree's devpi_airgap whatever PYTHONPATH says.
    """
    command = [
        sys.executable,
        "-m",
        "invoke",
        "--search-root",
        str(tool),
        *args,
        "--inventory",
        str(project / "inventory.yaml"),
    ]
    start = time.perf_counter()
    path = f"{tool}{os.pathsep}{sysconfig.get_paths()['purelib']}"
    # cwd is the project: `python -m` puts the cwd first on the path, and a checkout there would win.
    result = subprocess.run(
        command, env={**env(project), "PYTHONPATH": path}, cwd=project, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return time.perf_counter() - start


def project(root: Path, inventory: Path, policy: str) -> Path:
    root.mkdir(parents=True)
    text = inventory.read_text()
    text = text[: text.index("\npolicy:")] if "\npolicy:" in text else text
    (root / "inventory.yaml").write_text(text + "\n" + policy)
    shutil.copytree(inventory.parent / "requirements", root / "requirements")
    return root


def download_and_bundle(tool: Path, root: Path) -> float:
    return run(tool, root, "download") + run(tool, root, "bundle", "--full")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path, default=REPO / "inventory.yaml")
    parser.add_argument("--baseline-rev", default=DEFAULT_BASELINE)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=default_path("evidence"))
    args = parser.parse_args()
    inventory = args.inventory.resolve()
    text = inventory.read_text()
    licenses = text[text.index("\npolicy:") + 1 :] if "\npolicy:" in text else "policy:\n"
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as tmp:
        tmp = Path(tmp)
        baseline_tool = tmp / "baseline"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline_tool), args.baseline_rev],
            check=True,
            capture_output=True,
        )
        try:
            baseline = project(tmp / "a", inventory, "")
            cold_a = download_and_bundle(baseline_tool, baseline)
            locked = sorted(
                {
                    p.name.split("-")[0].lower().replace("_", "-")
                    for p in (baseline / "wheelhouse" / ".pool").glob("*.whl")
                }
            )
            records = [record(f"BENCH-{i}", name, [], label="LOW") for i, name in enumerate(locked[::10])]
            with serve_osv(records) as osv:
                contender = project(
                    tmp / "b", inventory, licenses + f"  advisories: {{osv_url: '{osv.url}', block: high}}\n"
                )
                cold_b = download_and_bundle(REPO, contender)
                warm_a, warm_b = [], []
                for _ in range(args.rounds):
                    warm_a.append(download_and_bundle(baseline_tool, baseline))
                    warm_b.append(download_and_bundle(REPO, contender))
                queries = sum(r.startswith("POST") for r in osv.requests)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline_tool)], check=False)
    rows = [
        ("cold: download + bundle --full", cold_a, cold_b),
        ("warm: download + bundle --full (median)", statistics.median(warm_a), statistics.median(warm_b)),
    ]
    print(f"{len(locked)} projects locked; fake OSV: {len(records)} advisories, {queries} querybatch calls")
    print(f"{'scenario':42} {'baseline s':>10} {'evidence s':>10} {'extra s':>8} {'ratio':>7}")
    for name, a, b in rows:
        print(f"{name:42} {a:10.1f} {b:10.1f} {b - a:8.1f} {b / a:6.2f}x")
    print("goal: ratio <= 1.10x")
    data = {
        "baseline_rev": args.baseline_rev,
        "projects": len(locked),
        "rows": [{"scenario": n, "baseline_s": a, "evidence_s": b, "ratio": b / a} for n, a, b in rows],
        "warm_rounds": {"baseline_s": warm_a, "evidence_s": warm_b},
    }
    print(f"results: {write_results(args.json, data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
