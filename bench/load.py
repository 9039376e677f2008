"""Load benchmark: N concurrent `pip install`s of the sample target from a deployed devpi index.

    sudo .venv/bin/python -m bench.load [-n 30] [--rounds 1] [--via direct,front] [--json bench/results/load.json]
    .venv/bin/python -m bench.load --index-url http://ADDR:3141/myuser/myindex/+simple/ [--ssh-config F --host H]

By default it builds everything it measures, like the deploy tests do (root
needed): it copies the repository's inventory.yaml and requirements/ into a
temp project (or reuses --project DIR), runs `inv download --target server`,
boots an OfflineHost (Debian in its own netns, no route out) and runs
`fab deploy` to it.  Then, per path (--via) and round, N clients start at once;
each installs the server target's requirements (its requirements files, plus
devpi-server devpi-web devpi-client, which deploy adds for a server target)
exactly as a user would:

    pip --python VENV/bin/python install --no-cache-dir --index-url URL --trusted-host ADDR -r REQS

into its own fresh `python -m venv --without-pip` venv, blind to this machine's
pip configuration (no PIP_*/UV_* variables, PIP_CONFIG_FILE=/dev/null).  Each
client records its wall time, exit code and, on failure, the tail of pip's
output.  The venvs are made before the clients start and removed as each ends.

Paths: `direct` is devpi-server's own port; `front` is the nginx front of the
inventory's `servers.NAME.nginx` (port, TLS), measured by default when the
server entry has one.  https is verified off by `--trusted-host`: clients
reach the host by address, not by the certificate's server_name.

While the clients run, a sampler on the server reads /proc every 0.5 s: CPU
time (utime+stime) and RSS of the MainPID of devpi.service and nginx.service
plus its children (nginx's workers), over one ssh connection.  Reported: CPU
seconds used during the round, peak RSS.  With --index-url the server is only
sampled when --ssh-config and --host say how to reach it.  The OfflineHost
runs on this machine: clients and server share its CPUs, so on a small runner
the client side (pip unpacking and byte-compiling) dominates the times.

This is a benchmark, not a test: the goal is zero failures; timings are
reported, never asserted.  Exit status 1 if any client failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.results import default_path
from devpi_airgap.core.inventory import DEVPI_REQUIREMENTS, Inventory, Server, load_inventory
from devpi_airgap.core.isolation import isolated_env
from devpi_airgap.core.pools import stoppable_pool
from testing.environment import clean_env, secrets_env
from testing.offline_host import OfflineHost, missing_requirements
from testing.tasks import run_task

REPO = Path(__file__).resolve().parent.parent

SERVER = "devpi-host"  # the sample inventory's servers: entry
UNITS = ("devpi.service", "nginx.service")
SAMPLE_INTERVAL = 0.5
TAIL_LINES = 15
HEARTBEAT = 60  # seconds between progress lines while no client ends

# Runs on the server under its own python3: one ssh connection for the whole
# round instead of one per sample, so sampling itself barely loads the host.
# It reads /proc, not the unit's cgroup: the test host's cgroup v1 hierarchy
# has no CPU accounting for units (CPUUsageNSec is unset there).
SAMPLER = r"""
import json, os, subprocess, sys, time
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")

def stat(pid):
    # the fields after "(comm)": [1] ppid, [11] utime, [12] stime, [21] rss in pages
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()

def usage(unit):
    main = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", unit],
                          capture_output=True, text=True).stdout.strip()
    if main in ("", "0"):
        return None
    cpu = rss = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = stat(pid)
        except OSError:
            continue  # exited while we looked
        if pid == main or fields[1] == main:  # nginx: the master and its workers
            cpu += int(fields[11]) + int(fields[12])
            rss += int(fields[21]) * PAGE
    return [cpu / TICK, rss]

while True:
    print(json.dumps({unit: usage(unit) for unit in sys.argv[2:]}), flush=True)
    time.sleep(float(sys.argv[1]))
"""


@dataclass
class LoadPath:
    via: str
    index_url: str
    pip_args: list[str]  # how pip trusts this URL


@dataclass
class ClientResult:
    client: int
    round: int
    seconds: float
    returncode: int
    output_tail: str = ""


@dataclass
class UnitUsage:
    cpu_seconds: float
    peak_rss_mb: float
    samples: int


@dataclass
class PathResult:
    via: str
    index_url: str
    round: int
    wall_seconds: float
    clients: list[ClientResult]
    server: dict[str, UnitUsage] = field(default_factory=dict)
    server_note: str = ""

    @property
    def failures(self) -> int:
        return sum(1 for c in self.clients if c.returncode != 0)


# --------------------------------------------------------------------------
# setup: project, wheelhouse, host, deploy
# --------------------------------------------------------------------------


def prepare_project(project: Path | None, tmp: Path) -> Path:
    """A project dir with the sample inventory; a given one is reused as is."""
    if project:
        if not (project / "inventory.yaml").is_file():
            raise SystemExit(f"{project}: no inventory.yaml")
        return project.resolve()
    project = tmp / "project"
    project.mkdir()
    shutil.copy2(REPO / "inventory.yaml", project)
    shutil.copytree(REPO / "requirements", project / "requirements")
    return project


def run_step(label: str, *args: str, program: str, env: dict[str, str]) -> None:
    print(f"{label} ...", flush=True)
    start = time.monotonic()
    result = run_task(*args, program=program, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{label} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    print(f"{label}: done in {time.monotonic() - start:.0f}s", flush=True)


def download(project: Path) -> None:
    run_step(
        "inv download --target server",
        "download",
        "--target",
        "server",
        "--inventory",
        str(project / "inventory.yaml"),
        program="invoke",
        env=clean_env(project),
    )


def deploy(project: Path, host: OfflineHost) -> None:
    # The deploy tests' throw-away passwords: the host lives only as long as this run.
    run_step(
        f"fab deploy to {host.address}",
        "-S",
        str(host.ssh_config_path),
        "-H",
        SERVER,
        "deploy",
        "--inventory",
        str(project / "inventory.yaml"),
        program="fabric",
        env=secrets_env(project),
    )


# --------------------------------------------------------------------------
# what the clients install, and from where
# --------------------------------------------------------------------------


def client_requirements(inventory: Inventory, server: Server, dest: Path) -> Path:
    """The server target's requirement files as users install them, plus what deploy adds.

    Resolution splits a file into sets (setuptools<82 and <80 each) to get
    every version onto the index; a user installs the file as a whole.
    """
    target = inventory.targets[server.target]
    lines = [f"-r {path}" for path in target.requirements]
    if target.serves_devpi:
        lines += DEVPI_REQUIREMENTS
    dest.write_text("\n".join(lines) + "\n")
    return dest


def trusting(url: str) -> list[str]:
    # Plain http needs it; for https it is how a client reaching the host by address gets past the name check.
    return ["--trusted-host", urlsplit(url).hostname]


def load_paths(server: Server, address: str, vias: list[str]) -> list[LoadPath]:
    base = f"/{server.user}/{server.index}/+simple/"
    front = getattr(server, "front", None)  # the nginx front may not be in this checkout's inventory yet
    paths = []
    for via in vias:
        if via == "direct":
            url = f"http://{address}:{server.port}{base}"
        else:
            url = f"{'https' if front.tls_cert else 'http'}://{address}:{front.port}{base}"
        paths.append(LoadPath(via, url, trusting(url)))
    return paths


def wanted_vias(server: Server, via: str | None) -> list[str]:
    has_front = getattr(server, "front", None) is not None
    if not via:
        return ["direct", "front"] if has_front else ["direct"]
    if "front" in via.split(",") and not has_front:
        raise SystemExit(f"--via front: servers.{server.name} has no nginx: entry")
    return via.split(",")


# --------------------------------------------------------------------------
# server-side sampling
# --------------------------------------------------------------------------


class ServerSampler:
    """CPU and RSS of the server's units, sampled on the server while a round runs."""

    def __init__(self, ssh_argv: list[str]):
        self.ssh_argv = ssh_argv
        self.samples: list[dict] = []
        self.error = ""

    def __enter__(self) -> "ServerSampler":
        self.proc = subprocess.Popen(
            [*self.ssh_argv, "--", "python3", "-", str(SAMPLE_INTERVAL), *UNITS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.proc.stdin.write(SAMPLER)
        self.proc.stdin.close()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self._wait_first_sample()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.samples.append(json.loads(line))

    def _wait_first_sample(self) -> None:
        # The CPU baseline must be taken before the clients start.
        deadline = time.monotonic() + 15
        while not self.samples and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.samples:
            self.error = (
                f"sampler did not start: {self.proc.stderr.read() if self.proc.poll() is not None else 'timeout'}"
            )

    def __exit__(self, *exc) -> None:
        time.sleep(SAMPLE_INTERVAL * 2)  # one sample after the last client
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)

    def usage(self) -> dict[str, UnitUsage]:
        result = {}
        for unit in UNITS:
            seen = [s[unit] for s in self.samples if s.get(unit)]
            if seen:
                result[unit] = UnitUsage(
                    cpu_seconds=round(seen[-1][0] - seen[0][0], 2),
                    peak_rss_mb=round(max(rss for _, rss in seen) / 2**20, 1),
                    samples=len(seen),
                )
        return result


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------


class Clients:
    """The running pip clients, so that Ctrl-C stops every one of them instead of waiting for them.

    Each client runs in a session of its own: a terminal's Ctrl-C reaches this
    process only, which then terminates the clients itself, and kills any that
    have not ended after STOP_GRACE seconds.
    """

    STOP_GRACE = 10

    def __init__(self) -> None:
        self.running: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self, command: list[str], env: dict) -> tuple[int, str, str]:
        if self.stopping.is_set():
            return 130, "", "stopped before it started"
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # fmt: skip
        with self.lock:
            self.running.add(proc)
        try:
            out, err = proc.communicate()
        finally:
            with self.lock:
                self.running.discard(proc)
        return proc.returncode, out, err

    def stop(self) -> int:
        """Terminate every running client; returns how many there were."""
        self.stopping.set()
        with self.lock:
            procs = list(self.running)
        # The whole group: `pip --python` runs a second pip inside the venv's interpreter, which holds the pipes.
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.STOP_GRACE
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
        return len(procs)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:  # already gone
        pass


CLIENTS = Clients()


def make_venv(path: Path) -> None:
    # --without-pip: seconds faster per venv; pip runs from here with --python
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)


def install(client: int, round_no: int, venv: Path, path: LoadPath, requirements: Path) -> ClientResult:
    command = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(venv / "bin" / "python"),
        "install",
        "--no-cache-dir",
        "--index-url",
        path.index_url,
        *path.pip_args,
        "-r",
        str(requirements),
    ]
    start = time.monotonic()
    returncode, stdout, stderr = CLIENTS.run(command, isolated_env())
    seconds = time.monotonic() - start
    shutil.rmtree(venv, ignore_errors=True)
    tail = ""
    if returncode != 0:
        tail = "\n".join((stderr.strip() or stdout.strip()).splitlines()[-TAIL_LINES:])
    return ClientResult(client, round_no, round(seconds, 2), returncode, tail)


def run_clients(
    path: LoadPath, requirements: Path, clients: int, round_no: int, workdir: Path
) -> tuple[list[ClientResult], float]:
    """All clients of one round, started together; returns them and the round's wall time."""
    venvs = [workdir / f"{path.via}-r{round_no}-c{i}" for i in range(clients)]
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(make_venv, venvs))
    print(f"  {path.via} round {round_no}: {clients} venvs ready, starting {clients} clients", flush=True)
    results: list[ClientResult] = []
    start = time.monotonic()
    with stoppable_pool(clients) as pool:
        pending = {pool.submit(install, i, round_no, venv, path, requirements) for i, venv in enumerate(venvs)}
        try:
            results += _collect(pending, clients, start)
        except KeyboardInterrupt:
            print(f"\n  stopping: {CLIENTS.stop()} pip clients terminated", flush=True)
            raise
    return sorted(results, key=lambda r: r.client), round(time.monotonic() - start, 1)


def _collect(pending: set, clients: int, start: float) -> list[ClientResult]:
    """Each client's result as it ends, with a heartbeat while none does."""
    results: list[ClientResult] = []
    while pending:
        done, pending = wait(pending, timeout=HEARTBEAT, return_when=FIRST_COMPLETED)
        if not done:  # a loaded 2-CPU runner can take minutes before the first client ends
            print(f"    {time.monotonic() - start:4.0f}s: {len(results)}/{clients} done", flush=True)
        for future in done:
            result = future.result()
            results.append(result)
            state = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
            print(
                f"    client {result.client:2d} {state} in {result.seconds:6.1f}s  [{len(results)}/{clients}]",
                flush=True,
            )
    return results


def run_round(
    path: LoadPath, requirements: Path, clients: int, round_no: int, workdir: Path, ssh_argv: list[str] | None
) -> PathResult:
    if ssh_argv is None:
        results, wall = run_clients(path, requirements, clients, round_no, workdir)
        return PathResult(
            path.via,
            path.index_url,
            round_no,
            wall,
            results,
            server_note="not measured: give --ssh-config and --host to sample the server",
        )
    with ServerSampler(ssh_argv) as sampler:
        results, wall = run_clients(path, requirements, clients, round_no, workdir)
    usage = sampler.usage()
    note = sampler.error or ("" if UNITS[0] in usage else f"{UNITS[0]} had no MainPID while sampled")
    return PathResult(path.via, path.index_url, round_no, wall, results, usage, note)


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def percentile(values: list[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def summary(rounds: list[PathResult]) -> dict:
    """One row per path, over all its rounds: client times of failed installs count too."""
    clients = [c for r in rounds for c in r.clients]
    times = [c.seconds for c in clients]
    row = {
        "via": rounds[0].via,
        "index_url": rounds[0].index_url,
        "rounds": len(rounds),
        "clients": len(clients),
        "failures": sum(r.failures for r in rounds),
        "p50_s": round(percentile(times, 50), 1),
        "p95_s": round(percentile(times, 95), 1),
        "max_s": max(times),
        "round_wall_s": [r.wall_seconds for r in rounds],
    }
    for unit in UNITS:
        usages = [r.server[unit] for r in rounds if unit in r.server]
        if usages:
            name = unit.removesuffix(".service")
            row[f"{name}_cpu_s"] = round(sum(u.cpu_seconds for u in usages), 1)
            row[f"{name}_peak_rss_mb"] = max(u.peak_rss_mb for u in usages)
    return row


def print_table(rows: list[dict]) -> None:
    def cell(row: dict, key: str, width: int) -> str:
        return f"{row[key]:>{width}.1f}" if key in row else f"{'-':>{width}}"

    print(
        f"\n{'path':8}{'clients':>8}{'failures':>9}{'p50 s':>8}{'p95 s':>8}{'max s':>8}"
        f"{'devpi CPU s':>12}{'devpi RSS MB':>13}{'nginx CPU s':>12}{'nginx RSS MB':>13}"
    )
    for row in rows:
        print(
            f"{row['via']:8}{row['clients']:>8}{row['failures']:>9}{row['p50_s']:>8.1f}{row['p95_s']:>8.1f}"
            f"{row['max_s']:>8.1f}{cell(row, 'devpi_cpu_s', 12)}{cell(row, 'devpi_peak_rss_mb', 13)}"
            f"{cell(row, 'nginx_cpu_s', 12)}{cell(row, 'nginx_peak_rss_mb', 13)}"
        )


def print_failures(rounds: list[PathResult]) -> None:
    # 30 clients refused by the same dead port would print 30 near-identical tails (they differ in
    # object addresses): group by pip's last line, show the first tail of each group.
    for r in rounds:
        by_error: dict[str, list[ClientResult]] = {}
        for c in r.clients:
            if c.returncode != 0:
                by_error.setdefault(c.output_tail.rsplit("\n", 1)[-1], []).append(c)
        for failed in by_error.values():
            who = ", ".join(f"{c.client} (exit {c.returncode}, {c.seconds:.0f}s)" for c in failed)
            print(f"\n{r.via} round {r.round}: {len(failed)} client(s) failed: {who}\n{failed[0].output_tail}")


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--clients", type=int, default=30, help="concurrent clients per round (default 30)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per path (default 1)")
    parser.add_argument(
        "--via",
        help="comma-separated paths: direct, front (default: direct, plus front when the server entry has nginx:)",
    )
    parser.add_argument(
        "--project",
        type=Path,
        help="project dir with inventory.yaml to reuse (default: a temp copy of this repo's sample "
        "inventory and requirements/); `inv download --target server` runs in it either way",
    )
    parser.add_argument("--server", default=SERVER, help=f"the inventory's servers: entry (default {SERVER})")
    parser.add_argument(
        "--index-url",
        help="load this existing index instead of setting one up (no download, no "
        "host, no deploy); requirements still come from the inventory",
    )
    parser.add_argument("--ssh-config", type=Path, help="with --index-url: ssh config to sample the server with")
    parser.add_argument("--host", help="with --index-url: ssh host (alias) of the server, to sample its CPU and RSS")
    parser.add_argument(
        "--json",
        type=Path,
        default=default_path("load"),
        help="where to write the results (default bench/results/load.json)",
    )
    args = parser.parse_args(argv)
    if args.clients < 1 or args.rounds < 1:
        parser.error("-n and --rounds must be at least 1")
    if args.via and not set(args.via.split(",")) <= {"direct", "front"}:
        parser.error(f"--via {args.via}: expected direct, front or direct,front")
    if args.index_url and args.via:
        parser.error("--via chooses among the paths of a deployed server; with --index-url there is only that URL")
    if (args.ssh_config or args.host) and not args.index_url:
        parser.error("--ssh-config/--host only go with --index-url; otherwise the booted host is sampled")
    return args


def measure(
    paths: list[LoadPath], requirements: Path, args: argparse.Namespace, workdir: Path, ssh_argv: list[str] | None
) -> list[PathResult]:
    rounds = []
    for round_no in range(1, args.rounds + 1):
        for path in paths:
            print(f"{path.via}: {path.index_url}", flush=True)
            rounds.append(run_round(path, requirements, args.clients, round_no, workdir, ssh_argv))
    return rounds


def on_existing_index(args: argparse.Namespace, workdir: Path) -> list[PathResult]:
    project = prepare_project(args.project, workdir)
    inventory = load_inventory(project / "inventory.yaml")
    requirements = client_requirements(inventory, inventory.server(args.server), workdir / "requirements.txt")
    ssh_argv = None
    if args.ssh_config and args.host:
        ssh_argv = ["ssh", "-F", str(args.ssh_config), args.host]
    else:
        print("server CPU/RSS not measured: give --ssh-config and --host to sample it", flush=True)
    path = LoadPath("given", args.index_url, trusting(args.index_url))
    return measure([path], requirements, args, workdir, ssh_argv)


def on_fresh_host(args: argparse.Namespace, workdir: Path) -> list[PathResult]:
    missing = missing_requirements()
    if missing:
        raise SystemExit("setting up an offline host needs: " + ", ".join(missing) + " (or pass --index-url)")
    project = prepare_project(args.project, workdir)
    download(project)
    inventory = load_inventory(project / "inventory.yaml")
    server = inventory.server(args.server)
    vias = wanted_vias(server, args.via)
    requirements = client_requirements(inventory, server, workdir / "requirements.txt")
    with OfflineHost() as host:
        deploy(project, host)
        paths = load_paths(server, host.address, vias)
        return measure(paths, requirements, args, workdir, host.ssh_argv())


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"{args.clients} clients x {args.rounds} round(s); {os.cpu_count()} CPUs here", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        workdir = Path(tmp)
        try:
            rounds = on_existing_index(args, workdir) if args.index_url else on_fresh_host(args, workdir)
        except KeyboardInterrupt:  # the clients are stopped already; the host and temp files go on the way out
            print("stopped: no results written", file=sys.stderr, flush=True)
            return 130
        pip_version = subprocess.run(
            [sys.executable, "-m", "pip", "--version"], env=isolated_env(), capture_output=True, text=True
        ).stdout.split(" from ")[0]
    by_path: dict[str, list[PathResult]] = {}
    for r in rounds:
        by_path.setdefault(r.via, []).append(r)
    rows = [summary(rs) for rs in by_path.values()]
    print_failures(rounds)
    print_table(rows)
    for r in rounds:
        if r.server_note:
            print(f"{r.via} round {r.round}: server {r.server_note}")
    out = args.json if args.json.is_absolute() else Path.cwd() / args.json
    out.write_text(
        json.dumps(
            {
                "clients": args.clients,
                "rounds": args.rounds,
                "runner": {"python": platform.python_version(), "pip": pip_version, "cpus": os.cpu_count()},
                "summary": rows,
                "runs": [asdict(r) | {"failures": r.failures} for r in rounds],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nresults: {out}")
    return 1 if any(row["failures"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
