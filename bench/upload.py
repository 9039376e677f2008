"""Benchmark: devpi_airgap.devpi_api.upload_missing vs ``devpi upload`` (devpi-client).

    .venv/bin/python -m bench.upload [--wheels DIR] [--workers N] [--json bench/results/upload.json]

Each contender gets its own fresh devpi-server on loopback.  Measured per
contender: (1) upload of all wheels into a fresh index, (2) the same call again
with everything already on the index (no-op resync).  Goals: upload <= 0.5x,
no-op resync <= 0.1x of devpi-client.  Timings are reported, never asserted.

Without --wheels it uses ``wheelhouse/server/`` if present, else downloads a
set of real wheels (~140 files, ~140 MB) into a cache dir with pip (run with
PIP_CONFIG_FILE=/dev/null and without PIP_* variables).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from bench.results import default_path, write_results
from devpi_airgap.offline.devpi_api import DevpiClient, upload_missing
from testing.devpi_server import ROOT_PASSWORD, start_devpi_server

REPO = Path(__file__).resolve().parent.parent

DOWNLOAD = [
    "devpi-server",
    "devpi-web",
    "devpi-client",
    "pandas",
    "numpy",
    "matplotlib",
    "ipython",
    "ipykernel",
    "scipy",
    "jupyterlab",
    "sqlalchemy",
]
USER, INDEX = "bench", "wheels"
PASSWORD = "bench-" + secrets.token_hex(8)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def wheel_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if (REPO / "wheelhouse" / "server").is_dir():
        return REPO / "wheelhouse" / "server"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    target = cache / "devpi-airgap-bench" / "wheels"
    if len(list(target.glob("*.whl"))) < 100:
        print(f"downloading benchmark wheels into {target} ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "-d",
                str(target),
                *DOWNLOAD,
            ],
            env=clean_env(),
            check=True,
        )
    return target


def setup_server(tmp: Path) -> tuple[str, Callable[[], None]]:
    url, stop = start_devpi_server(tmp)
    with DevpiClient(url) as c:
        c.login("root", ROOT_PASSWORD)
        c.ensure_user(USER, PASSWORD)
        c.login(USER, PASSWORD)
        c.ensure_index(USER, INDEX)
    return url, stop


def check(url: str, expected: dict[str, str]) -> None:
    with DevpiClient(url) as c:
        got = c.index_files(USER, INDEX)
    if got != expected:
        missing = sorted(set(expected) - set(got))
        raise SystemExit(f"index content mismatch at {url}: missing {missing[:5]} ...")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_devpi_client(url: str, wheels: list[Path], tmp: Path) -> tuple[float, float]:
    clientdir = tmp / "clientdir"
    devpi = str(Path(sys.executable).parent / "devpi")

    def run(*args: str) -> None:
        subprocess.run(
            [devpi, *args, "--clientdir", str(clientdir)],
            check=True,
            stdout=subprocess.DEVNULL,
            env=clean_env(),
        )

    run("use", f"{url}/{USER}/{INDEX}")
    # throw-away password of a throw-away loopback server: devpi login has no
    # non-interactive way other than --password
    run("login", USER, "--password", PASSWORD)
    upload = timed(lambda: run("upload", *map(str, wheels)))
    resync = timed(lambda: run("upload", *map(str, wheels)))
    return upload, resync


def bench_ours(url: str, wheels: list[Path], workers: int) -> tuple[float, float]:
    with DevpiClient(url) as c:
        c.login(USER, PASSWORD)
        results = []

        def run() -> None:
            results.append(upload_missing(c, USER, INDEX, wheels, workers=workers))

        upload = timed(run)
        resync = timed(run)
    first, second = results
    assert len(first.uploaded) == len(wheels) and not first.conflicts, first
    assert len(second.skipped) == len(wheels) and not second.uploaded, second
    return upload, resync


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", help="directory of wheels (searched recursively)")
    parser.add_argument("--workers", type=int, default=4, help="parallel uploads for ours")
    parser.add_argument("--rounds", type=int, default=1, help="repeat and report medians")
    parser.add_argument("--json", type=Path, default=default_path("upload"), help="where to write the results")
    args = parser.parse_args()

    wheels = sorted(wheel_dir(args.wheels).rglob("*.whl"))
    if not wheels:
        raise SystemExit("no wheels found")
    expected = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}
    total_mb = sum(w.stat().st_size for w in wheels) / 1e6
    print(f"{len(wheels)} wheels, {total_mb:.1f} MB, {args.rounds} round(s), workers={args.workers}")

    times: dict[str, list[tuple[float, float]]] = {"devpi": [], "ours": []}
    contenders = {
        "devpi": lambda url, tmp: bench_devpi_client(url, wheels, tmp),
        "ours": lambda url, tmp: bench_ours(url, wheels, args.workers),
    }
    with tempfile.TemporaryDirectory(prefix="devpi-bench-") as tmpdir:
        for round_no in range(args.rounds):
            # alternate who goes first, the machine may be shared and noisy
            order = ["devpi", "ours"] if round_no % 2 == 0 else ["ours", "devpi"]
            for name in order:
                tmp = Path(tmpdir) / f"{name}-{round_no}"
                url, stop = setup_server(tmp)
                try:
                    times[name].append(contenders[name](url, tmp))
                    check(url, expected)
                finally:
                    stop()
                upload, resync = times[name][-1]
                print(f"  round {round_no + 1} {name:<6} upload {upload:6.2f}s  resync {resync:6.2f}s", flush=True)

    print()
    print(f"{'scenario':<22}{'devpi upload':>14}{'ours':>10}{'ours/devpi':>12}{'goal':>8}")
    rows = []
    for i, (scenario, goal) in enumerate((("upload (fresh index)", 0.5), ("no-op resync", 0.1))):
        d = statistics.median(t[i] for t in times["devpi"])
        o = statistics.median(t[i] for t in times["ours"])
        ratio = o / d
        mark = "ok" if ratio <= goal else "missed"
        print(f"{scenario:<22}{d:>13.2f}s{o:>9.2f}s{ratio:>12.3f}{'<=' + str(goal):>8} {mark}")
        rows.append({"scenario": scenario, "devpi_upload_s": d, "ours_s": o, "ratio": ratio, "goal": goal})
    print(f"results: {write_results(args.json, {'wheels': len(wheels), 'megabytes': total_mb, 'rows': rows})}")


if __name__ == "__main__":
    main()
