"""Benchmark `inv download` against the manual `pip download` recipe users run today.

    .venv/bin/python -m bench.download [--requirements requirements/base.txt] [--out bench/results/download.json]

One run measures, side by side, for the same requirements and the same target
(Windows, CPython 3.13), each contender starting from FRESH caches and FRESH
output directories:

1. cold       `inv download --target win313` vs
              `pip download --platform win_amd64 --python-version 313 --implementation cp
               --abi cp313 --only-binary=:all: -d DIR -r REQS`, in fresh dirs with fresh
              caches each time, taking turns three times, compared by their medians
2. re-run     the same two commands again, into the same output dirs with the same
              (now warm) caches: nothing new to fetch; three times each, taking
              turns, compared by their medians
3. 3 targets  `inv download --target all` (win313, mac312, lin311) vs `inv download --target win313`,
              both cold, in fresh dirs with fresh caches each time, taking turns three
              times, compared by their medians

pip cannot do devpi-web for a binary-only foreign platform (pyramid-chameleon is
sdist-only), so pip gets the same requirements minus devpi-web; the output says so.

Both contenders run blind to this machine's pip/uv configuration: every PIP_* and
UV_* variable is dropped, PIP_CONFIG_FILE=/dev/null, UV_NO_CONFIG=1 and
UV_PYTHON_DOWNLOADS=never. Caches are fresh temp dirs (UV_CACHE_DIR for ours,
PIP_CACHE_DIR for pip), kept for the re-run so each contender re-runs warm.

It also reports correctness: whether pip's wheelhouse can install the requirements
for Windows/3.13 offline, and what each wheelhouse has that the other lacks.

This is a benchmark, not a test: it never asserts on time. It exits non-zero only
when a contender it needs could not run at all. Each command's output goes to a
log file in the temp dir; the path is printed when a command fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from bench.results import default_path

ROOT = Path(__file__).resolve().parent.parent
INV = ROOT / ".venv" / "bin" / "inv"
PIP_DROPPED = "devpi-web"

SINGLE_TARGET = {"win313": {"platform": "win_amd64", "python": "3.13"}}
MAC_PLATFORM = "macosx_14_0_arm64"  # as in inventory.yaml: recent scipy has no older arm64 wheels


def three_targets(mac_platform: str) -> dict:
    return {
        "win313": {"platform": "win_amd64", "python": "3.13"},
        "mac312": {"platform": mac_platform, "python": "3.12"},
        "lin311": {"platform": ["manylinux_2_28_x86_64", "manylinux2014_x86_64"], "python": "3.11"},
    }


PIP_TARGET_ARGS = [
    "--platform",
    "win_amd64",
    "--python-version",
    "313",
    "--implementation",
    "cp",
    "--abi",
    "cp313",
    "--only-binary=:all:",
]

GOAL_COLD = 0.6  # ours cold <= 0.6x pip cold (issue 11)
GOAL_RERUN = 0.1  # ours re-run <= 0.1x pip re-run (issue 11)
GOAL_THREE = 1.5  # ours, three targets <= 1.5x ours, one target
RERUNS = 3  # a no-op re-run takes about a second: one run is too noisy to judge a 0.1x goal
# Cold pairs, taking turns, compared by their medians. One pair, minutes apart, was too noisy: the same code
# gave 1.47-1.66x for three targets against one in three bench runs, as the network's speed moved between the
# one-target run at the start and the other; and a single cold run against pip took 5.15 s where the same
# code's next six cold runs of the target took 3.0-3.5 s.
PAIRS = 3


@dataclass
class Run:
    label: str
    cmd: list[str]
    log: str
    seconds: float
    returncode: int
    files: int = 0
    megabytes: float = 0.0
    download_phase_s: float | None = None  # ours only: what inv reports before verifying offline
    cpu_s: float = 0.0  # user + system time of the command and every process it waited for

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Row:
    scenario: str
    ours_s: float | None
    baseline: str
    baseline_s: float | None
    ratio: float | None
    goal: str
    goal_ratio: float
    met: bool | None
    note: str = ""


@dataclass
class Results:
    requirements: str
    pip_requirements: str
    pip_note: str
    tempdir: str
    host: dict
    rows: list[Row] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    correctness: dict = field(default_factory=dict)


def clean_env(**extra: str) -> dict[str, str]:
    """This machine's environment without any pip/uv configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")
    env.update(extra)
    return env


def wait_for_detached_removals(limit: float = 120) -> None:
    """Wait until no run's throwaway install is still being removed.

    A run that verifies the target this machine runs leaves the removal of its real install (the sample's
    three targets: 23,000 files on tmpfs, 0.65 CPU-s) to a process of its own that it does not wait for
    (online/verify.py). The next measured run, ours or pip's, would share the cores with it: in the
    three-targets scenario, each one-target run came right after a three-target run.
    """
    places = [Path(tempfile.gettempdir()), Path("/dev/shm")]
    deadline = time.monotonic() + limit
    while any(next(place.glob("airgap-verify-*"), None) for place in places if place.is_dir()):
        if time.monotonic() > deadline:
            print(f"  (airgap-verify-* still in {', '.join(map(str, places))} after {limit:.0f} s; going on)")
            return
        time.sleep(0.1)


def run(label: str, cmd: list[str], logdir: Path, env: dict[str, str], cwd: Path = ROOT) -> Run:
    wait_for_detached_removals()
    log = logdir / f"{label}.log"
    with open(log, "w") as out:
        out.write(f"$ {' '.join(map(str, cmd))}\n\n")
        out.flush()
        start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    result = Run(label, [str(c) for c in cmd], str(log), round(seconds, 2), proc.returncode, cpu_s=round(cpu, 2))
    status = "ok" if result.ok else f"FAILED (exit {proc.returncode}); log: {log}"
    print(f"  {label:<24} {seconds:8.1f} s  {status}", flush=True)
    return result


def dir_stats(directory: Path, run_: Run) -> Run:
    files = [p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")] if directory.is_dir() else []
    run_.files = len(files)
    run_.megabytes = round(sum(p.stat().st_size for p in files) / 1e6, 1)
    return run_


_PHASE = re.compile(r"(?:new files, .*, in |already complete \()([\d.]+) s")


def download_phase(run_: Run) -> Run:
    """inv's own figure for resolve + fetch + link; the rest of its wall time is `inv verify`."""
    found = _PHASE.findall(Path(run_.log).read_text())
    run_.download_phase_s = float(found[-1]) if found else None
    return run_


def write_inventory(workdir: Path, requirements: Path, targets: dict) -> Path:
    """An inventory in its own dir, so its wheelhouse and locks land there too (JSON is valid YAML)."""
    workdir.mkdir(parents=True)
    data = {
        "wheelhouse": "wheelhouse",
        "locks": "locks",
        "targets": {name: {**spec, "requirements": [str(requirements)]} for name, spec in targets.items()},
    }
    path = workdir / "inventory.yaml"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def requirements_without(src: Path, dest: Path, drop: str) -> Path:
    kept = []
    for line in src.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        try:
            if text and not text.startswith("-") and canonicalize_name(Requirement(text).name) == drop:
                kept.append(f"# dropped for pip (sdist-only dependency chain): {line}")
                continue
        except InvalidRequirement:
            pass
        kept.append(line)
    dest.write_text("\n".join(kept) + "\n")
    return dest


def wheel_names(directory: Path) -> dict[str, set[str]]:
    """Project name -> versions of the wheels in a directory."""
    found: dict[str, set[str]] = {}
    if not directory.is_dir():
        return found
    for p in directory.glob("*.whl"):
        try:
            name, version, _, _ = parse_wheel_filename(p.name)
        except Exception:
            continue
        found.setdefault(str(name), set()).add(str(version))
    return found


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def row(scenario: str, ours: Run, baseline_name: str, baseline: Run, goal: float, goal_text: str, note="") -> Row:
    ours_s = ours.seconds if ours.ok else None
    base_s = baseline.seconds if baseline.ok else None
    r = ratio(ours_s, base_s)
    # Judged on the exact ratio: 0.104 shows as 0.10 but does not meet <= 0.1.
    met = None if ours_s is None or not base_s else ours_s / base_s <= goal
    return Row(scenario, ours_s, baseline_name, base_s, r, goal_text, goal, met, note)


def median_run(runs: list[Run]) -> Run:
    """The run with the median time, of an odd number of runs of one command on the same state."""
    return sorted(runs, key=lambda r: (not r.ok, r.seconds))[len(runs) // 2]


def correctness(pip_dir: Path, ours_dir: Path, pip_reqs: Path, logdir: Path, tmp: Path) -> dict:
    uv = shutil.which("uv", path=str(ROOT / ".venv" / "bin")) or "uv"
    cmd = [
        uv,
        "pip",
        "compile",
        "--no-config",
        "--offline",
        "--no-index",
        "--find-links",
        str(pip_dir),
        "--python-platform",
        "x86_64-pc-windows-msvc",
        "--python-version",
        "3.13",
        "--only-binary",
        ":all:",
        str(pip_reqs),
    ]
    check = run("pip-wheelhouse-offline", cmd, logdir, clean_env(UV_CACHE_DIR=str(tmp / "uv-cache-check")))
    log_text = Path(check.log).read_text()
    mentioned = sorted({m for m in ("colorama", "legacy-cgi") if m in log_text})
    pip_has, ours_has = wheel_names(pip_dir), wheel_names(ours_dir)
    return {
        "pip_wheelhouse_installs_offline_for_win313": check.ok,
        "pip_offline_check_exit": check.returncode,
        "pip_offline_check_log": check.log,
        "pip_offline_check_mentions": mentioned,
        "pip_offline_check_error": _uv_error(log_text),
        "in_pip_not_ours": sorted(set(pip_has) - set(ours_has)),
        "in_ours_not_pip": sorted(set(ours_has) - set(pip_has)),
        "pexpect_ptyprocess_in_pip_not_ours": sorted(
            n for n in ("pexpect", "ptyprocess") if n in pip_has and n not in ours_has
        ),
        "ours_has_colorama": "colorama" in ours_has,
        "ours_has_legacy_cgi": "legacy-cgi" in ours_has,
        "ours_setuptools_versions": sorted(ours_has.get("setuptools", ())),
        "pip_setuptools_versions": sorted(pip_has.get("setuptools", ())),
    }


def first_error(run_: Run) -> str:
    lines = Path(run_.log).read_text().splitlines()
    errors = [ln.strip() for ln in lines if ln.lstrip().lower().startswith(("error", "remedy"))]
    return " | ".join(errors[:3]) or f"exit {run_.returncode}, see {run_.log}"


def _uv_error(text: str) -> str:
    lines = [ln.rstrip() for ln in text.splitlines()[1:] if ln.strip()]
    return "\n".join(lines[:8])


def print_table(results: Results) -> None:
    headers = ["scenario", "ours (s)", "baseline", "baseline (s)", "ratio", "goal", "met"]
    fmt = lambda v: "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
    rows = [
        [
            r.scenario,
            fmt(r.ours_s),
            r.baseline,
            fmt(r.baseline_s),
            fmt(r.ratio) + ("x" if r.ratio else ""),
            r.goal,
            {True: "yes", False: "NO", None: "n/a"}[r.met],
        ]
        for r in results.rows
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    print()
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    for r in results.rows:
        if r.note:
            print(f"  note ({r.scenario}): {r.note}")
    print(f"\n{results.pip_note}")
    c = results.correctness
    if c:
        print("\ncorrectness (target win313, Windows / CPython 3.13):")
        print(
            f"  pip's wheelhouse installs the requirements offline: "
            f"{'yes' if c['pip_wheelhouse_installs_offline_for_win313'] else 'NO'}"
            + (
                f" (uv mentions: {', '.join(c['pip_offline_check_mentions'])})"
                if c["pip_offline_check_mentions"]
                else ""
            )
        )
        if not c["pip_wheelhouse_installs_offline_for_win313"] and c["pip_offline_check_error"]:
            print("    " + c["pip_offline_check_error"].replace("\n", "\n    "))
        print(f"  in pip's wheelhouse, not ours: {', '.join(c['in_pip_not_ours']) or '(none)'}")
        print(f"  in ours, not pip's:            {', '.join(c['in_ours_not_pip']) or '(none)'}")
        print(
            f"  ours has colorama: {c['ours_has_colorama']}, legacy-cgi: {c['ours_has_legacy_cgi']}, "
            f"setuptools versions: {', '.join(c['ours_setuptools_versions']) or '(none)'} "
            f"(pip: {', '.join(c['pip_setuptools_versions']) or '(none)'})"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requirements", default="requirements/base.txt", type=Path)
    parser.add_argument("--out", default=default_path("download"), type=Path)
    parser.add_argument(
        "--mac-platform",
        default=MAC_PLATFORM,
        help=f"platform tag of the mac312 target in the three-target run (default {MAC_PLATFORM}; "
        "recent scipy has no macosx_11_0_arm64 wheels, so that target may not resolve)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the downloaded wheelhouses (logs are always kept)")
    args = parser.parse_args(argv)

    reqs = args.requirements.resolve()
    if not reqs.is_file():
        parser.error(f"{reqs}: no such requirements file")
    if not INV.exists():
        parser.error(f"{INV} not found: create the venv and `pip install -e .` first")

    tmp = Path(tempfile.mkdtemp(prefix="devpi-airgap-bench-"))
    logs = tmp / "logs"
    logs.mkdir()
    pip_reqs = requirements_without(reqs, tmp / "requirements-for-pip.txt", PIP_DROPPED)
    pip_version = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, env=clean_env()
    ).stdout.split(" from ")[0]
    uv_version = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "uv"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    results = Results(
        requirements=str(reqs),
        pip_requirements=str(pip_reqs),
        pip_note=(
            f"pip runs on the same requirements minus {PIP_DROPPED} (its pyramid-chameleon dependency is "
            f"sdist-only, so `--only-binary=:all:` for a foreign platform cannot get it); "
            f"ours downloads the full list, {PIP_DROPPED} included."
        ),
        tempdir=str(tmp),
        host={
            "python": platform.python_version(),
            "pip": pip_version,
            "uv": uv_version,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
    )
    print(
        f"temp dir: {tmp}\nrequirements: {reqs}\npip requirements (minus {PIP_DROPPED}): {pip_reqs}\n"
        f"{pip_version}, {uv_version}\n",
        flush=True,
    )

    # Fresh everything per contender; the re-run reuses the contender's own dirs and caches.
    one = write_inventory(tmp / "ours-one", reqs, SINGLE_TARGET)
    ours_env = clean_env(UV_CACHE_DIR=str(tmp / "ours-one" / "uv-cache"))
    pip_dir = tmp / "pip" / "wheelhouse"
    pip_env = clean_env(PIP_CACHE_DIR=str(tmp / "pip" / "pip-cache"))
    ours_cmd = [str(INV), "download", "--target", "win313", "--inventory", str(one)]
    pip_cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        *PIP_TARGET_ARGS,
        "-d",
        str(pip_dir),
        "-r",
        str(pip_reqs),
    ]
    ours_dir = one.parent / "wheelhouse" / "win313"

    print(f"1. cold (fresh caches, empty output dirs), {PAIRS} times each, taking turns", flush=True)
    ours_colds, pip_colds = [], []
    for n in range(1, PAIRS + 1):
        # The first pair's dirs and caches are kept for the re-runs and the correctness check; the others go.
        if n == 1:
            contenders = [(ours_dir, ours_cmd, ours_env, ours_colds), (pip_dir, pip_cmd, pip_env, pip_colds)]
        else:
            again = write_inventory(tmp / f"ours-cold-{n}", reqs, SINGLE_TARGET)
            pip_again = tmp / f"pip-cold-{n}"
            contenders = [
                (
                    again.parent / "wheelhouse" / "win313",
                    [*ours_cmd[:-1], str(again)],
                    clean_env(UV_CACHE_DIR=str(again.parent / "uv-cache")),
                    ours_colds,
                ),
                (
                    pip_again / "wheelhouse",
                    [*pip_cmd[: pip_cmd.index("-d") + 1], str(pip_again / "wheelhouse"), "-r", str(pip_reqs)],
                    clean_env(PIP_CACHE_DIR=str(pip_again / "pip-cache")),
                    pip_colds,
                ),
            ]
        for directory, command, env, runs in contenders:
            who = "ours" if runs is ours_colds else "pip"
            runs.append(dir_stats(directory, run(f"{who}-cold-{n}", command, logs, env)))
        if n > 1 and not args.keep:
            shutil.rmtree(tmp / f"ours-cold-{n}", ignore_errors=True)
            shutil.rmtree(tmp / f"pip-cold-{n}", ignore_errors=True)
    ours_cold, pip_cold = median_run(ours_colds), median_run(pip_colds)
    cold_note = (
        f"medians of {PAIRS}: ours {', '.join(f'{r.seconds:.2f}' for r in ours_colds)} s; "
        f"pip {', '.join(f'{r.seconds:.2f}' for r in pip_colds)} s"
    )
    print(f"2. re-run, nothing new (same output dirs, warm caches), {RERUNS} times each, taking turns", flush=True)
    ours_reruns, pip_reruns = [], []
    for n in range(1, RERUNS + 1):
        ours_reruns.append(dir_stats(ours_dir, run(f"ours-rerun-{n}", ours_cmd, logs, ours_env)))
        pip_reruns.append(dir_stats(pip_dir, run(f"pip-rerun-{n}", pip_cmd, logs, pip_env)))
    ours_warm, pip_warm = median_run(ours_reruns), median_run(pip_reruns)
    rerun_note = (
        f"medians of {RERUNS}: ours {', '.join(f'{r.seconds:.2f}' for r in ours_reruns)} s; "
        f"pip {', '.join(f'{r.seconds:.2f}' for r in pip_reruns)} s"
    )
    print(f"3. three targets against one, cold (fresh caches and dirs), {PAIRS} times each, taking turns", flush=True)
    pairs_one, pairs_three = [], []
    for n in range(1, PAIRS + 1):
        for label, targets, runs in (
            ("one", SINGLE_TARGET, pairs_one),
            ("three", three_targets(args.mac_platform), pairs_three),
        ):
            project = tmp / f"ours-{label}-{n}"
            inventory = write_inventory(project, reqs, targets)
            env = clean_env(UV_CACHE_DIR=str(project / "uv-cache"))
            command = [str(INV), "download", "--target", "all", "--inventory", str(inventory)]
            runs.append(
                download_phase(
                    dir_stats(project / "wheelhouse" / ".pool", run(f"ours-{label}-target-{n}", command, logs, env))
                )
            )
            if not args.keep:
                shutil.rmtree(project, ignore_errors=True)
    ours_one, ours_three = median_run(pairs_one), median_run(pairs_three)
    # What bounds the ratio: one target mostly waits on the network, three keep every core busy (the native proof).
    pairs_note = (
        f"medians of {PAIRS}: three {', '.join(f'{r.seconds:.2f}' for r in pairs_three)} s; "
        f"one {', '.join(f'{r.seconds:.2f}' for r in pairs_one)} s; CPU (user + system, children included) "
        f"of those runs: three {ours_three.cpu_s:.1f} CPU-s, one {ours_one.cpu_s:.1f} CPU-s, on {os.cpu_count()} cores"
    )
    results.runs = [*ours_colds, *pip_colds, *ours_reruns, *pip_reruns, *pairs_one, *pairs_three]
    for r in (ours_cold, ours_warm):
        download_phase(r)
    phase = lambda r: f"{r.download_phase_s:.1f} s" if r.download_phase_s is not None else "?"  # noqa: E731
    split = lambda r: (
        f"ours = {r.seconds:.1f} s wall: download phase {phase(r)} (inv's own figure), "  # noqa: E731
        f"the rest is inv's offline verify"
    )

    size_note = (
        f"ours {ours_cold.files} files / {ours_cold.megabytes} MB, pip {pip_cold.files} files / {pip_cold.megabytes} MB"
    )
    results.rows = [
        row(
            "cold, win313",
            ours_cold,
            "pip",
            pip_cold,
            GOAL_COLD,
            f"<= {GOAL_COLD}x pip",
            f"{cold_note}; {size_note}; {split(ours_cold)}",
        ),
        row(
            "re-run, nothing new",
            ours_warm,
            "pip re-run",
            pip_warm,
            GOAL_RERUN,
            f"<= {GOAL_RERUN}x pip re-run",
            f"{rerun_note}; {split(ours_warm)}",
        ),
        row(
            "3 targets vs 1, cold",
            ours_three,
            "ours, 1 target",
            ours_one,
            GOAL_THREE,
            f"<= {GOAL_THREE}x one target",
            f"{pairs_note}; mac312 = {args.mac_platform}; "
            + (
                f"pool {ours_three.files} files / {ours_three.megabytes} MB for 3 targets; {split(ours_three)} "
                "(lin311 matches this machine, so verify also pip-installs it natively)"
                if ours_three.ok
                else f"FAILED: {first_error(ours_three)}"
            ),
        ),
    ]

    print("\ncorrectness checks (offline)", flush=True)
    results.correctness = correctness(pip_dir, ours_dir, pip_reqs, logs, tmp)

    print_table(results)
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out.write_text(json.dumps(asdict(results), indent=2) + "\n")
    print(f"\nresults: {out}\nlogs: {logs}")

    if not args.keep:
        for d in (tmp / "ours-one", tmp / "pip", tmp / "uv-cache-check"):
            shutil.rmtree(d, ignore_errors=True)
    missing = [r.label for r in (ours_cold, pip_cold) if not r.ok]
    return 1 if missing and not any(r.ok for r in (ours_cold, pip_cold)) else 0


if __name__ == "__main__":
    sys.exit(main())
