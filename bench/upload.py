"""Benchmark: filling a devpi index from a wheelhouse, ours against ``devpi upload`` (devpi-client).

    .venv/bin/python -m bench.upload [--wheels DIR] [--rounds N] [--json bench/results/upload.json]

Each contender gets its own fresh devpi-server (with devpi-web) on loopback, per round:

* devpi: devpi-init, start, user and index, ``devpi upload`` of every wheel, then
  the same ``devpi upload`` again (nothing new).
* ours: what a first ``fab deploy`` does, `programs.seed_index` (devpi-import of
  the wheels with the user and index), then start; then our no-op re-sync twice
  (`upload_missing`, which reads the index and skips what it holds): first as the
  first deploy's upload step does, listing every project and recording them in an
  IndexRecord; then as a later deploy does, finding the server unchanged.
* ours-http: our HTTP upload (`upload_missing`) into a fresh index of a running
  server, the path a deploy takes on a server that already holds data.

Rows: the fill of a fresh index alone (devpi upload against the seed), the whole
way from nothing to a serving index, HTTP upload, and both no-op re-syncs.
Goals: fill <= 0.5x, re-sync <= 0.1x. Timings are reported, never asserted.

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

from bench.download import clean_env
from bench.results import default_path, write_results
from devpi_airgap.offline.devpi_api import DevpiClient, upload_missing
from devpi_airgap.offline.index_record import IndexRecord
from testing.devpi_server import (
    ROOT_PASSWORD,
    at_rest,
    indexing_state,
    seed_server_dir,
    start_devpi_server,
    user_client,
)

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


def make_user_and_index(url: str) -> None:
    with user_client(url, ROOT_PASSWORD, USER, PASSWORD) as c:
        c.ensure_index(USER, INDEX)


def check(url: str, expected: dict[str, str]) -> None:
    with DevpiClient(url) as c:
        got = c.index_files(USER, INDEX)
    if got != expected:
        missing = sorted(set(expected) - set(got))
        raise SystemExit(f"index content mismatch at {url}: missing {missing[:5]} ...")


def settle(url: str, limit: float = 300) -> float:
    """Wait until the server has caught up with itself; return how long that took.

    A re-sync happens at a later deploy, on a server at rest. Right after devpi-import the
    server is not: it runs the hooks of every imported serial and devpi-web indexes every
    project, both in the background (19 s for the bench's wheels here), and a listing of the
    index then took 0.28-0.61 s, against 0.21-0.25 s at rest. So both contenders' re-syncs
    start from a server whose event serial has reached its serial and whose search index
    queues are empty.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < limit and not at_rest(indexing_state(url)):
        time.sleep(0.2)
    return time.perf_counter() - start


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def resync(url: str, wheels: list[Path], record: Path) -> float:
    """Our no-op re-sync: what a deploy's upload step does when the index holds every file.

    It reads the index through the deploying machine's IndexRecord, as a deploy does: the first
    re-sync after the seed lists every project and records them, a later one finds the server unchanged.
    """
    with DevpiClient(url) as c:
        c.login(USER, PASSWORD)
        results = []
        listing = IndexRecord(record).files
        seconds = timed(lambda: results.append(upload_missing(c, USER, INDEX, wheels, listing=listing)))
    assert len(results[0].skipped) == len(wheels) and not results[0].uploaded, results[0]
    return seconds


def bench_devpi_client(wheels: list[Path], tmp: Path, expected: dict[str, str]) -> dict[str, float]:
    clientdir = tmp / "clientdir"
    devpi = str(Path(sys.executable).parent / "devpi")

    def run(*args: str) -> None:
        subprocess.run(
            [devpi, *args, "--clientdir", str(clientdir)],
            check=True,
            stdout=subprocess.DEVNULL,
            env=clean_env(),
        )

    start = time.perf_counter()
    url, stop = start_devpi_server(tmp / "server")
    try:
        make_user_and_index(url)
        run("use", f"{url}/{USER}/{INDEX}")
        # throw-away password of a throw-away loopback server: devpi login has no
        # non-interactive way other than --password
        run("login", USER, "--password", PASSWORD)
        fill = timed(lambda: run("upload", *map(str, wheels)))
        whole = time.perf_counter() - start
        settle(url)
        again = timed(lambda: run("upload", *map(str, wheels)))
        check(url, expected)
    finally:
        stop()
    return {"fill": fill, "whole": whole, "resync": again}


def bench_seed(wheels: list[Path], tmp: Path, expected: dict[str, str]) -> dict[str, float]:
    seconds = {}

    def seed(serverdir: Path) -> None:
        start = time.perf_counter()
        done = seed_server_dir(serverdir, wheels, USER, INDEX, PASSWORD)
        if done.returncode:
            raise SystemExit(f"seed failed: {done.stderr}")
        seconds["fill"] = time.perf_counter() - start

    start = time.perf_counter()
    url, stop = start_devpi_server(tmp / "server", seed=seed)
    try:
        seconds["whole"] = time.perf_counter() - start
        settle(url)
        seconds["resync-first"] = resync(url, wheels, tmp / "index-record.json")
        seconds["resync"] = resync(url, wheels, tmp / "index-record.json")
        check(url, expected)
    finally:
        stop()
    return seconds


def bench_http(wheels: list[Path], tmp: Path, expected: dict[str, str]) -> dict[str, float]:
    url, stop = start_devpi_server(tmp / "server")
    try:
        make_user_and_index(url)
        with DevpiClient(url) as c:
            c.login(USER, PASSWORD)
            fill = timed(lambda: upload_missing(c, USER, INDEX, wheels))
        check(url, expected)
    finally:
        stop()
    return {"fill": fill}


ROWS = (
    # (scenario, contender, its key, devpi's key, goal)
    ("fill a fresh index", "ours", "fill", "fill", 0.5),
    ("nothing to a serving index", "ours", "whole", "whole", None),
    ("HTTP upload, fresh index", "ours-http", "fill", "fill", None),
    ("re-sync, first after the seed", "ours", "resync-first", "resync", None),
    ("no-op re-sync", "ours", "resync", "resync", 0.1),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", help="directory of wheels (searched recursively)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat and report medians")
    parser.add_argument("--json", type=Path, default=default_path("upload"), help="where to write the results")
    args = parser.parse_args()

    wheels = sorted(wheel_dir(args.wheels).rglob("*.whl"))
    if not wheels:
        raise SystemExit("no wheels found")
    expected = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}
    total_mb = sum(w.stat().st_size for w in wheels) / 1e6
    print(f"{len(wheels)} wheels, {total_mb:.1f} MB, {args.rounds} round(s)")

    contenders = {"devpi": bench_devpi_client, "ours": bench_seed, "ours-http": bench_http}
    times: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory(prefix="devpi-bench-") as tmpdir:
        for round_no in range(args.rounds):
            # rotate who goes first, the machine may be shared and noisy
            names = list(contenders)
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            for name in order:
                seconds = contenders[name](wheels, Path(tmpdir) / f"{name}-{round_no}", expected)
                times[name].append(seconds)
                shown = "  ".join(f"{k} {v:6.2f}s" for k, v in seconds.items())
                print(f"  round {round_no + 1} {name:<9} {shown}", flush=True)

    print()
    print(f"{'scenario':<32}{'devpi':>9}{'ours':>9}{'ratio':>8}{'goal':>8}")
    rows = []
    for scenario, name, key, devpi_key, goal in ROWS:
        d = statistics.median(t[devpi_key] for t in times["devpi"])
        o = statistics.median(t[key] for t in times[name])
        ratio = o / d
        mark = "" if goal is None else ("ok" if ratio <= goal else "missed")
        shown_goal = "" if goal is None else f"<={goal}"
        print(f"{scenario:<32}{d:>8.2f}s{o:>8.2f}s{ratio:>8.3f}{shown_goal:>8} {mark}")
        rows.append({"scenario": scenario, "devpi_s": d, "ours_s": o, "ratio": ratio, "goal": goal})
    record = {"wheels": len(wheels), "megabytes": total_mb, "rounds": args.rounds, "rows": rows, "raw": times}
    print(f"results: {write_results(args.json, record)}")


if __name__ == "__main__":
    main()
