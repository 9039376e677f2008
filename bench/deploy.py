"""Benchmark: `fab deploy` onto a booted offline host, against the by-hand recipe of the field report.

    sudo .venv/bin/python -m bench.deploy [--json bench/results/deploy.json]

Needs root (it boots offline test hosts) and the network (one `inv download`
of the `server` target: devpi itself and `packaging`). Each first deploy gets a
freshly booted host of its own, so none profits from another's work.

* by hand: scp of the wheel directory; a venv with pip from the wheels;
  devpi-init; devpi-server started; devpi use, login, user, index; devpi upload.
  All of it over ssh, as the field report does it on the server.
* fab deploy, first and again (no changes).
* inv bundle --full, then fab deploy --bundle onto a fresh host, and again
  (the bundle already imported).

Each is run RUNS times, taking turns, and the medians are compared.

Goals: first deploy <= 1.5x by hand; first deploy from a full bundle <= 1.5x a
first plain deploy; deploy --bundle of an imported bundle < 10 s.
Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results import default_path, write_results
from testing.deploy_host import fab, server_project
from testing.environment import ROOT_PASSWORD, USER_PASSWORD, clean_env
from testing.offline_host import OfflineHost
from testing.tasks import run_task

INVENTORY = """
targets:
  server: {platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: "3.11", requirements: [server.txt]}
servers:
  devpi-host: {target: server, port: 3141, user: myuser, index: myindex}
"""


# A first deploy is mostly pip building devpi's venv, which took 9.5-12 s from one fresh host to the next, and the
# by-hand recipe's 15.9-19.4 s: a single run of each put the ratio anywhere from 1.04x to 1.59x for the same code.
RUNS = 3
SCENARIOS = ("by hand", "first deploy", "deploy again", "first deploy --bundle", "deploy --bundle again")


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<44}{seconds:8.1f}s", flush=True)
    return seconds


def checked(result: subprocess.CompletedProcess) -> None:
    if result.returncode:
        raise SystemExit(f"failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def by_hand(host: OfflineHost, wheels: Path, parts: dict[str, float]) -> None:
    """The field report's recipe, typed on the server (passwords as devpi-client takes them)."""
    parts["scp"] = timed("  scp of the wheels", lambda: host.put(wheels, "/root/wheels"))
    devpi = "/root/venv/bin/devpi"
    steps = [
        "python3 -m venv /root/venv && PIP_CONFIG_FILE=/dev/null /root/venv/bin/pip install -q --no-index "
        "--find-links /root/wheels devpi-server devpi-web devpi-client",
        f"DEVPISERVER_ROOT_PASSWD={shlex.quote(ROOT_PASSWORD)} /root/venv/bin/devpi-init "
        "--serverdir /root/data --no-root-pypi",
        "nohup /root/venv/bin/devpi-server --serverdir /root/data --host 0.0.0.0 --port 3141 "
        ">/root/devpi.log 2>&1 </dev/null & "
        # the host has no curl: poll with python, as fast as a watching user could at best
        "python3 -c 'import time, urllib.request\nfor _ in range(1200):\n    try:\n"
        '        urllib.request.urlopen("http://127.0.0.1:3141/+api"); break\n'
        '    except OSError: time.sleep(0.1)\nelse: raise SystemExit("devpi-server did not start")\'',
        f"{devpi} use http://127.0.0.1:3141 && {devpi} login root --password {shlex.quote(ROOT_PASSWORD)} && "
        f"{devpi} user -c myuser password={shlex.quote(USER_PASSWORD)} && "
        f"{devpi} login myuser --password {shlex.quote(USER_PASSWORD)} && "
        f"{devpi} index -c myindex bases= volatile=False && {devpi} use myuser/myindex",
        f"{devpi} upload /root/wheels/*.whl",
    ]
    for what, step in zip(("venv", "devpi-init", "start", "user and index", "devpi upload"), steps, strict=True):
        parts[what] = timed(f"  {what}", lambda step=step: checked(host.run(step, timeout=900)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=default_path("deploy"))
    args = parser.parse_args()
    runs: dict[str, list[float]] = {name: [] for name in SCENARIOS}
    hand_steps: list[dict[str, float]] = []  # each by-hand run's steps
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        project = server_project(Path(tmp), INVENTORY)
        wheels = project / "wheelhouse" / "server"
        files = sorted(wheels.glob("*.whl"))
        print(f"{len(files)} wheels, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB")
        checked(run_task("bundle", "--full", "--inventory", str(project / "inventory.yaml"), env=clean_env(project)))
        bundle = next((project / "bundles").glob("*.tar"))
        for turn in range(1, RUNS + 1):
            print(f"turn {turn} of {RUNS}", flush=True)
            hand_steps.append({})
            with OfflineHost() as host:
                runs["by hand"].append(
                    timed("by hand (scp, venv, init, start, upload)", lambda: by_hand(host, wheels, hand_steps[-1]))
                )
            with OfflineHost() as host:
                runs["first deploy"].append(timed("fab deploy, first", lambda: checked(fab(project, host, "deploy"))))
                runs["deploy again"].append(
                    timed("fab deploy, no changes", lambda: checked(fab(project, host, "deploy")))
                )
            with OfflineHost() as host:
                runs["first deploy --bundle"].append(
                    timed(
                        "fab deploy --bundle (full), first",
                        lambda: checked(fab(project, host, "deploy", "--bundle", str(bundle))),
                    )
                )
                runs["deploy --bundle again"].append(
                    timed(
                        "fab deploy --bundle, already imported",
                        lambda: checked(fab(project, host, "deploy", "--bundle", str(bundle))),
                    )
                )
    seconds = {name: statistics.median(values) for name, values in runs.items()}
    rows = [
        ("first deploy vs by hand", seconds["first deploy"], seconds["by hand"], 1.5),
        ("first deploy --bundle vs first deploy", seconds["first deploy --bundle"], seconds["first deploy"], 1.5),
    ]
    print(f"\n{'scenario':<42}{'ours':>8}{'against':>9}{'ratio':>8}{'goal':>7}")
    for name, ours, against, goal in rows:
        mark = "ok" if ours / against <= goal else "missed"
        print(f"{name:<42}{ours:7.1f}s{against:8.1f}s{ours / against:8.2f}{'<=' + str(goal):>7} {mark}")
    again = seconds["deploy --bundle again"]
    print(
        f"{'deploy --bundle, already imported':<42}{again:7.1f}s{'':>9}{'':>8}{'<10s':>7} {'ok' if again < 10 else 'missed'}"
    )
    for name, values in runs.items():
        print(f"  {name}: median of {', '.join(f'{v:.1f}' for v in values)} s")
    data = {
        "wheels": len(files),
        "runs": RUNS,
        "seconds": seconds,  # medians
        "seconds_each_run": runs,
        "by_hand_steps": hand_steps,
        "rows": [{"scenario": n, "ours_s": o, "against_s": a, "ratio": o / a, "goal": g} for n, o, a, g in rows],
    }
    print(f"results: {write_results(args.json, data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
