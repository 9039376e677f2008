"""`inv verify`: prove a target's wheelhouse installs its requirements with no network.

Every wheel must have a tag that the clients' pip knows (see core/pip_versions.py).
Every resolution set is resolved again by uv against the target's directory
alone (`--offline --no-index --find-links`), for the target's markers. Where
this machine can run the target, pip (the client users run) then resolves
every set for this interpreter with `--dry-run --no-index`, and the largest
set is installed for real into a throwaway venv. `inv download` passes reuse=True, so that a re-run
with nothing new skips a verification that already passed on the same lock,
requirements and files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pip

from devpi_airgap.core.errors import VerificationError
from devpi_airgap.core.files import change_stamp, raise_if_disk_full, scratch_prefix, tmpfs_with_room
from devpi_airgap.core.inventory import Inventory, Target
from devpi_airgap.core.isolation import isolated_env, uv_binary
from devpi_airgap.core.lock import LockedFile, read_lock
from devpi_airgap.core.pip_versions import clients_pip_problems
from devpi_airgap.core.platforms import TargetPlatform, target_platform
from devpi_airgap.core.pools import stoppable_pool
from devpi_airgap.core.requirements import ResolutionSet, resolution_sets, served_wheel_problems, uv_compile
from devpi_airgap.core.wheelhouse import POOL, Wheelhouse

_STAMPS = ".verified"
_PIP_DRY_RUNS = Path(__file__).parent / "programs" / "pip_dry_runs.py"


@dataclass
class VerifyReport:
    name: str
    sets: int = 0
    # pip resolved, installed | not this machine | no pythonX.Y here | unchanged since verified | not shown: uv failed first
    native: str = "not this machine"
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


_pythons: dict[str, str | None] = {}
_finding_python = threading.Lock()


def _find_python(version: str) -> str | None:
    """This machine's python of that version, looked for once per run."""
    with _finding_python:
        if version not in _pythons:
            result = subprocess.run(
                [uv_binary(), "python", "find", "--no-config", "--system", version],
                capture_output=True,
                encoding="utf-8",
                errors="replace",
                env=isolated_env(),
            )
            _pythons[version] = result.stdout.strip() or None if result.returncode == 0 else None
        return _pythons[version]


def _scratch(directory: Path) -> str | None:
    """Where the real install unpacks: tmpfs when it has room to spare, else (None) the usual temp dir.

    Unpacking is many small files: the sample's largest Linux set (about 20,000
    files, 700 MB) took 13-16 s on this machine's ext4 and 3.3 s on tmpfs. Room
    to spare is five times every wheel in the directory, so a big set never
    crowds the memory that tmpfs lives in.
    """
    return tmpfs_with_room(5 * sum(p.stat().st_size for p in directory.glob("*.whl")))


def _venv(python: str, where: Path) -> tuple[str | None, str | None]:
    """A fresh venv without pip, which takes a fraction of a second: (its python, None) or (None, the complaint)."""
    created = subprocess.run(
        [python, "-m", "venv", "--without-pip", str(where)],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        env=isolated_env(),
    )
    if created.returncode != 0:
        return None, f"could not create a venv with {python}: {created.stderr.strip()}"
    # Windows puts a venv's interpreter elsewhere; a Windows PC verifies its own Windows targets natively.
    return str(where / "Scripts" / "python.exe" if os.name == "nt" else where / "bin" / "python"), None


def _sources(directory: Path, resolution: ResolutionSet, tmp: Path) -> list[str]:
    requirements = tmp / "requirements.txt"
    requirements.write_text("\n".join(resolution.lines) + "\n", encoding="utf-8")
    sources = ["--no-index", "--find-links", str(directory), "-r", str(requirements)]
    for constraint in resolution.constraints:
        sources += ["-c", str(constraint)]
    return sources


class _DryRuns:
    """A fresh venv of `python` without pip, and pip_dry_runs.py started in it, which imports pip at once and waits.

    pip (the client users run) then resolves each set for that venv from the directory alone,
    with `--dry-run`: the same resolver, wheel choice, tags and Requires-Python checks as a real
    install, without unpacking, and without changing the venv, so every set shares one. pip is
    imported once for all sets (see pip_dry_runs.py).
    """

    def __init__(self, python: str):
        self.scratch = Path(tempfile.mkdtemp(prefix=scratch_prefix(None, "airgap-verify-")))
        self.started = 0
        self.waiting: tuple[Path, subprocess.Popen[str]] | None = None
        try:  # no caller holds it yet: a failure here must not leave the scratch behind
            self.venv, self.problem = _venv(python, self.scratch / "venv")
            if self.venv is not None:
                self.waiting = self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> tuple[Path, subprocess.Popen[str]]:
        logs = self.scratch / f"logs{self.started}"
        logs.mkdir()
        self.started += 1
        command = [str(self.venv), str(_PIP_DRY_RUNS), str(Path(pip.__file__).parent.parent), str(logs)]
        pipe = subprocess.PIPE
        return logs, subprocess.Popen(
            command, stdin=pipe, stdout=pipe, stderr=pipe, encoding="utf-8", errors="replace", env=isolated_env()
        )

    def run(self, directory: Path, sets: list[ResolutionSet]) -> list[str | None]:
        """Each set's complaint, or None."""
        if self.venv is None:
            return [self.problem] * len(sets)
        lists = []
        for n, resolution in enumerate(sets):
            (self.scratch / f"set{n}").mkdir()
            lists.append(["--quiet", *_sources(directory, resolution, self.scratch / f"set{n}")])
        # without fork (Windows), one process for each set, as `pip --python` would run them
        batches = [lists] if hasattr(os, "fork") else [[one] for one in lists]
        complaints: list[str | None] = []
        for batch in batches:
            (logs, program), self.waiting = self.waiting or self._start(), None
            out, err = program.communicate(json.dumps(batch))
            if program.returncode != 0:  # pip itself could not start in that python: each set hears why
                complaints += [_complaint("pip install --dry-run --no-index", program.returncode, err)] * len(batch)
                continue
            codes = json.loads(out.strip().splitlines()[-1])
            for i, code in enumerate(codes):
                output = (logs / f"{i}.log").read_text(encoding="utf-8", errors="replace")
                complaints.append(_complaint("pip install --dry-run --no-index", code, output))
        return complaints

    def close(self) -> None:
        if self.waiting is not None:  # never given its lists
            self.waiting[1].kill()
            self.waiting[1].communicate()
        shutil.rmtree(self.scratch, ignore_errors=True)


class EarlyDryRuns:
    """The dry runs of the targets this machine runs, started as soon as they are known to be verified anew.

    `inv download` starts them once the index pages are checked, while the network leaves the
    cores idle: looking for the python, making the venv and importing pip took 1 CPU-s, at the
    native verify's start, beside the real install and the other targets' downloads. Used as a
    context manager: dry runs never taken are stopped and removed on leaving it.
    """

    def __init__(self) -> None:
        self._started: dict[str, _DryRuns] = {}
        self._lock = threading.Lock()
        self._closed = False

    def start(self, targets: list[Target]) -> None:
        for target in targets:
            python = _find_python(target.python) if target_platform(target).runs_natively() else None
            if python is None or python in self._started:
                continue
            dry_runs = _DryRuns(python)  # a venv made while holding the lock would hold up take()
            with self._lock:
                kept = not self._closed and python not in self._started
                if kept:
                    self._started[python] = dry_runs
            if not kept:
                dry_runs.close()

    def take(self, python: str) -> _DryRuns | None:
        with self._lock:
            return self._started.pop(python, None)

    def __enter__(self) -> EarlyDryRuns:
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._closed = True
            left, self._started = list(self._started.values()), {}
        for dry_runs in left:
            dry_runs.close()


def _dry_runs(python: str, directory: Path, sets: list[ResolutionSet], started: _DryRuns | None) -> list[str | None]:
    """Each set's complaint from pip's dry runs, or None; in the dry runs started early for `python`, if any."""
    dry_runs = started or _DryRuns(python)
    try:
        return dry_runs.run(directory, sets)
    finally:
        dry_runs.close()


# Forks so that the caller waits only for the parent: the child removes the tree on its own, niced, in a
# session of its own (see _throwaway). Without fork (Windows), the removal is waited for.
_REMOVE_TREE = """
import os, shutil, sys
if hasattr(os, "fork") and os.fork():
    sys.exit()
if hasattr(os, "nice"):
    os.nice(10)
shutil.rmtree(sys.argv[1], ignore_errors=True)
"""


@contextmanager
def _throwaway(where: str | None) -> Iterator[Path]:
    """A temporary directory for a real install, removed by a process of its own that the run does not wait for.

    Removed by this process, the sample's installed set (23,000 files) took 5 s beside the run's
    downloads, against 1 s alone: each of rmtree's many small system calls lets go of the interpreter
    and then waits for it behind the busy threads. Waited for in a child, it still took 0.7 s (0.65
    CPU-s, alone) at the end of the real install, while the pip dry runs beside it wanted the cores.
    The verdict does not depend on the removal, and in a session of its own, Ctrl-C cannot stop it halfway.
    """
    path = Path(tempfile.mkdtemp(prefix=scratch_prefix(where, "airgap-verify-"), dir=where))
    try:
        yield path
    finally:
        command = [sys.executable, "-c", _REMOVE_TREE, str(path)]
        try:
            subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True, check=True)  # fmt: skip
        except (OSError, subprocess.CalledProcessError):
            shutil.rmtree(path, ignore_errors=True)


# uv's Linux builds allocate with jemalloc, which by default keeps freed blocks of up to 32 KB for their thread
# to reuse. Unpacking, uv takes a buffer of about 130 KB for each file it writes: each came fresh from the
# kernel, was zeroed, and was handed back (madvise) when freed, 22,650 times for the sample's largest set
# (strace). That was about 2.5 of the install's 5.7-6.2 CPU-s; kept for reuse, the install took 3.1-3.6.
# A uv built with another allocator ignores the setting.
_UV_UNPACKING = {"_RJEM_MALLOC_CONF": "tcache_max:1048576"}


def _install(python: str, directory: Path, resolution: ResolutionSet) -> str | None:
    """uv installs the set for real into a fresh venv: the files unpack and the venv works, at a fraction of pip's time."""
    with _throwaway(_scratch(directory)) as tmp:
        target, problem = _venv(python, tmp / "venv")
        if target is None:
            return problem
        command = [uv_binary(), "pip", "install", "--no-config", "--offline", "--no-build", "--quiet"]
        # a cache beside the venv: uv unpacks each wheel there and hard-links it in, so both stay on the scratch
        command += ["--cache-dir", str(tmp / "uv-cache"), "--python", target]
        command += _sources(directory, resolution, tmp)
        done = subprocess.run(
            command, capture_output=True, encoding="utf-8", errors="replace", env=isolated_env(**_UV_UNPACKING)
        )
        return _complaint("uv pip install --no-index", done.returncode, done.stderr)


def _complaint(what: str, returncode: int, output: str) -> str | None:
    if returncode == 0:
        return None
    raise_if_disk_full(output)
    return f"{what} failed:\n" + "\n".join(output.strip().splitlines()[-15:])


def _native(python: str, directory: Path, sets: list[ResolutionSet], started: _DryRuns | None = None) -> list[str]:
    """pip resolves every set in one venv, and the largest set is installed for real into another.

    Independent work, on both cores, each making its own venv: the real install, the longest, starts at once.
    """
    largest = max(sets, key=lambda r: len(r.lines))
    with stoppable_pool(2) as pool:
        installed = pool.submit(_install, python, directory, largest)
        resolved = pool.submit(_dry_runs, python, directory, sets, started)
        found = [(largest.label, installed.result())]
        found += zip([r.label for r in sets], resolved.result(), strict=True)
    # a venv or a pip that cannot start fails every set alike: said once, under the first set it failed
    said: dict[str, str] = {}
    for label, problem in found:
        if problem and problem not in said:
            said[problem] = label
    return [f"{label}: {problem}" for problem, label in said.items()]


def _damaged_files(inventory: Inventory, target: Target, directory: Path, locked: list[LockedFile]) -> list[str]:
    """Every locked file must still have its lock's sha256, whatever its timestamps say: hashed, or cached by ctime."""
    if not locked:
        return []
    wheelhouse = Wheelhouse(inventory.wheelhouse)
    try:
        damaged = [
            f.filename
            for f in locked
            if (directory / f.filename).is_file() and wheelhouse.sha256(wheelhouse.pool / f.filename) != f.sha256
        ]
    finally:
        wheelhouse.save()
    return [
        f"{name}: its content differs from the sha256 in {inventory.lock_path(target).name} (damaged or altered); "
        f"delete it from {inventory.wheelhouse / POOL} and re-run `inv download --target {target.name}`"
        for name in damaged
    ]


def _stamp(inventory: Inventory, target: Target, sets: list[ResolutionSet], directory: Path, locked: set[str]) -> str:
    """What a verification depends on: the lock, the sets, and the directory's files.

    A file the lock names that is the pool's own (the same inode) counts by name,
    size and inode: _damaged_files has just checked its bytes against the lock,
    and the links other targets make to it later move its change time, not its
    bytes. So a target verified while the others' files still arrive stays
    verified. Any other file counts as it is on disk, change time included.
    """
    lock = inventory.lock_path(target)
    digest = hashlib.sha256(lock.read_bytes() if lock.exists() else b"")
    digest.update(json.dumps([[s.label, s.lines, [str(c) for c in s.constraints]] for s in sets]).encode())
    pool = inventory.wheelhouse / POOL
    files = []
    for path in sorted(directory.iterdir()):
        size, inode, ctime = change_stamp(path)
        pooled = path.name in locked and _same_file(path, pool / path.name)
        files.append([path.name, size, inode] if pooled else [path.name, size, inode, ctime])
    digest.update(json.dumps(files).encode())
    return digest.hexdigest()


def _same_file(path: Path, other: Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except FileNotFoundError:
        return False


def verify_target(
    inventory: Inventory, target: Target, *, reuse: bool = False, early: EarlyDryRuns | None = None
) -> VerifyReport:
    """Verify one target; with reuse, a target unchanged since its last full verification is not redone.

    `early` holds the dry runs started for it ahead of time, if any.
    """
    report = VerifyReport(target.name)
    platform = target_platform(target)
    directory = inventory.target_dir(target)
    if not directory.is_dir():
        report.problems.append(f"{directory} does not exist; run `inv download --target {target.name}` first")
        return report
    lock = inventory.lock_path(target)
    locked = read_lock(lock)[1] if lock.exists() else []  # read once, for the bytes check and the record
    report.problems += _damaged_files(inventory, target, directory, locked)
    if report.problems:
        return report
    sets = resolution_sets(target)
    report.sets = len(sets)
    # before the record of an earlier proof is trusted: that record does not count the --hash values
    for resolution in sets:
        report.problems += [f"{resolution.label}: {p}" for p in served_wheel_problems(resolution, locked)]
    report.problems += clients_pip_problems(target, platform.tag_ranks, (f.filename for f in locked))
    if report.problems:
        return report
    stamp_file = inventory.wheelhouse / _STAMPS / f"{target.name}.sha256"
    stamp = _stamp(inventory, target, sets, directory, {f.filename for f in locked})
    if reuse and stamp_file.exists() and stamp_file.read_text() == stamp:
        report.native = "unchanged since verified"
        return report
    # The native proof, the longest part, starts at once beside uv's offline resolutions. A set uv cannot
    # resolve from the directory is what the report shows then: pip would only say the same again.
    with stoppable_pool(1) as beside:
        native = beside.submit(_native_proof, target, directory, sets, early) if platform.runs_natively() else None
        report.problems += _offline_problems(platform, directory, sets)
        if native is not None:
            native_label, native_problems = native.result()
            if report.problems:
                report.native = "not shown: uv failed first"
            else:
                report.native = native_label
                report.problems += native_problems
    if report.ok:
        stamp_file.parent.mkdir(parents=True, exist_ok=True)
        stamp_file.write_text(stamp)
    return report


_OFFLINE_AT_ONCE = 4


def _offline_problems(platform: TargetPlatform, directory: Path, sets: list[ResolutionSet]) -> list[str]:
    """Each set that uv cannot resolve for the target from the directory alone, with uv's words.

    The sets resolve side by side: one after the other, the sample's four took 0.6 s at the end of a
    cold single-target run, where nothing else was left to do, and the largest alone about 0.2 s. At most
    _OFFLINE_AT_ONCE of a target's at once: an inventory with dozens of requirement files, for several
    targets verified together, would otherwise start a uv for every one of them at the same moment.
    """
    with stoppable_pool(min(len(sets), _OFFLINE_AT_ONCE)) as pool:
        found = list(pool.map(lambda resolution: _offline_problem(platform, directory, resolution), sets))
    return [problem for problem in found if problem]


def _offline_problem(platform: TargetPlatform, directory: Path, resolution: ResolutionSet) -> str | None:
    offline = ("--offline", "--no-index", "--find-links", str(directory), "--only-binary", ":all:")
    with tempfile.TemporaryDirectory(prefix=scratch_prefix(None, "airgap-verify-")) as tmp:
        result = uv_compile(resolution, platform, None, Path(tmp), offline, pylock=False)
    if result.returncode == 0:
        return None
    raise_if_disk_full(result.stderr)
    detail = "\n".join(line for line in result.stderr.strip().splitlines() if line.strip())
    return f"{resolution.label}: not installable from {directory} alone:\n{detail}"


def _native_proof(
    target: Target, directory: Path, sets: list[ResolutionSet], early: EarlyDryRuns | None
) -> tuple[str, list[str]]:
    """What the native proof found, as VerifyReport.native says it, and its problems."""
    python = _find_python(target.python)
    if python is None:
        return f"no python{target.python} here", []
    return "pip resolved, installed", _native(python, directory, sets, early.take(python) if early else None)


def verify_targets(inventory: Inventory, targets: list[Target], *, reuse: bool = False) -> list[VerifyReport]:
    """All targets at once: one target's native install overlaps the others' offline resolutions."""
    with stoppable_pool(len(targets)) as pool:
        return list(pool.map(lambda t: verify_target(inventory, t, reuse=reuse), targets))


def check_verified(reports: list[VerifyReport]) -> None:
    """Raise (exit 4) when any target cannot install offline from its wheelhouse."""
    failed = [r for r in reports if not r.ok]
    if failed:
        raise VerificationError(
            f"{len(failed)} target(s) cannot install offline from their wheelhouse: "
            f"{', '.join(r.name for r in failed)} (details above, each with what to do); then re-run `inv download` for them"
        )
