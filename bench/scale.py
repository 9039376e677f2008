"""Benchmark at real scale: the 200 most downloaded projects for three targets, from download to deploy.

    .venv/bin/python -m bench.scale [--sizes 50,100,200] [--no-deploy] [--json bench/results/scale.json]

Uses bench/scale/inventory.yaml (Windows 3.13, Linux 3.11, macOS arm64 3.12)
and bench/scale/requirements/top200.txt. One run measures, each from fresh
caches and a fresh project:
1. cold `inv download` (resolve, fetch, verify, audit) of the first 50, 100 and
   200 projects for all three targets: wall time, peak RSS of the inv process
   itself (not of uv or pip under it), and bytes downloaded;
2. `pip download` of the same 200 for one target (win313), the tool a user
   would otherwise run, with its own fresh cache (minus uvloop: pip evaluates
   its `sys_platform != "win32"` marker for this machine and would fail);
3. the no-op re-run of `inv download` (200);
4. `inv bundle --full` (200): time, peak RSS, bundle bytes;
5. unless --no-deploy (it needs root for the offline test host): a first
   `fab deploy --bundle` of that bundle onto a freshly booted offline test host.
It prints the ratio table and writes bench/results/scale.json. Goals (issue 11):
three targets <= 1.0x pip's one; peak RSS flat in the number of projects.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.download import clean_env, wait_for_detached_removals
from bench.results import default_path, write_results
from testing.environment import secrets_env
from testing.tasks import REPO

SCALE = Path(__file__).resolve().parent / "scale"
LIST = SCALE / "requirements" / "top200.txt"


def isolated(workdir: Path) -> dict[str, str]:
    return clean_env(UV_CACHE_DIR=str(workdir / "uv-cache"), PIP_CACHE_DIR=str(workdir / "pip-cache"))


def measured(label: str, command: list[str], env: dict, log: Path) -> dict:
    """Run once; the peak RSS is the process's own high-water mark (VmHWM), read until it exits."""
    wait_for_detached_removals()
    start = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        peak_kb = 0
        while process.poll() is None:
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
                peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
            except (OSError, IndexError, ValueError):
                pass
            time.sleep(0.05)
    seconds = time.perf_counter() - start
    print(f"  {label:<34} {seconds:8.1f} s  {'ok' if process.returncode == 0 else f'FAILED, see {log}'}", flush=True)
    return {
        "label": label,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "rc": process.returncode,
    }


def project(root: Path, size: int) -> Path:
    root.mkdir(parents=True)
    shutil.copy(SCALE / "inventory.yaml", root / "inventory.yaml")
    lines = [line for line in LIST.read_text().splitlines() if line and not line.startswith("#")][:size]
    (root / "requirements").mkdir()
    (root / "requirements" / "top200.txt").write_text("\n".join(lines) + "\n")
    return root


def inv(root: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "invoke",
        "--search-root",
        str(REPO),
        *args,
        "--inventory",
        str(root / "inventory.yaml"),
    ]


def pool_bytes(root: Path) -> int:
    return sum(
        p.stat().st_size
        for p in (root / "wheelhouse" / ".pool").rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100,200")
    parser.add_argument("--no-deploy", action="store_true")
    parser.add_argument("--json", type=Path, default=default_path("scale"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp = Path(tmp)
        for size in sizes:
            root = project(tmp / f"n{size}", size)
            result = measured(
                f"inv download, {size} projects", inv(root, "download"), isolated(root), root / "download.log"
            )
            runs.append({**result, "projects": size, "bytes": pool_bytes(root)})
        biggest = tmp / f"n{max(sizes)}"
        pip_dir = tmp / "pip"
        pip_cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--platform",
            "win_amd64",
            "--python-version",
            "313",
        ]
        pip_cmd += ["--implementation", "cp", "--abi", "cp313", "--only-binary=:all:", "-d", str(pip_dir)]
        # pip evaluates markers for this machine, not the target: it would ask for uvloop on Windows, which
        # has no wheel there, and fail. It gets the list without the projects marked off Windows.
        lines = (biggest / "requirements" / "top200.txt").read_text().splitlines()
        (tmp / "pip-requirements.txt").write_text(
            "\n".join(x for x in lines if 'sys_platform != "win32"' not in x) + "\n"
        )
        pip_cmd += ["-r", str(tmp / "pip-requirements.txt")]
        pip = measured(f"pip download, {max(sizes)}, one target", pip_cmd, isolated(tmp / "pipwork"), tmp / "pip.log")
        pip["bytes"] = sum(p.stat().st_size for p in pip_dir.glob("*")) if pip_dir.is_dir() else 0
        rerun = measured(
            "inv download re-run (no-op)", inv(biggest, "download"), isolated(biggest), biggest / "rerun.log"
        )
        bundled = measured(
            "inv bundle --full", inv(biggest, "bundle", "--full"), isolated(biggest), biggest / "bundle.log"
        )
        bundle = next((biggest / "bundles").glob("*.tar"), None)
        bundled["bytes"] = bundle.stat().st_size if bundle else 0
        deploy = None
        if not args.no_deploy and bundle:
            from testing.offline_host import OfflineHost

            with OfflineHost() as host:
                command = [sys.executable, "-m", "fabric", "--search-root", str(REPO), "-S", str(host.ssh_config_path)]
                command += [
                    "-H",
                    "devpi-host",
                    "deploy",
                    "--bundle",
                    str(bundle),
                    "--inventory",
                    str(biggest / "inventory.yaml"),
                ]
                deploy = measured("first fab deploy --bundle", command, secrets_env(biggest), biggest / "deploy.log")
                deploy["bytes"] = bundled["bytes"]
    big = runs[-1]
    rows = [
        ("cold download + verify, 3 targets vs pip, 1 target", big["seconds"], pip["seconds"]),
        ("no-op re-run vs pip cold, 1 target", rerun["seconds"], pip["seconds"]),
    ]
    print(f"\n{'scenario':52} {'ours s':>8} {'pip s':>8} {'ratio':>7}")
    for name, ours, theirs in rows:
        print(f"{name:52} {ours:8.1f} {theirs:8.1f} {ours / theirs:6.2f}x")
    print("goal: 3 targets <= 1.0x pip's one target")
    print(f"\n{'run':36} {'seconds':>8} {'peak RSS MB':>12} {'MB moved':>9}")
    for r in [*runs, pip, rerun, bundled, *([deploy] if deploy else [])]:
        print(f"{r['label']:36} {r['seconds']:8.1f} {r['peak_rss_mb']:12.1f} {r.get('bytes', 0) / 1e6:9.1f}")
    print("goal: peak RSS flat from 50 to 200 projects")
    data = {
        "rows": [{"scenario": n, "ours_s": a, "pip_s": b, "ratio": a / b} for n, a, b in rows],
        "runs": [*runs, pip, rerun, bundled, *([deploy] if deploy else [])],
    }
    print(f"results: {write_results(args.json, data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
