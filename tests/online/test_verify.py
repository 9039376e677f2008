"""verify_target on downloaded wheelhouses: offline installability per set, and files as their lock says."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pip
import pytest

from devpi_airgap.core.inventory import load_inventory
from devpi_airgap.core.isolation import uv_binary
from devpi_airgap.core.requirements import ResolutionSet
from devpi_airgap.online import verify
from devpi_airgap.online.verify import _native, verify_target
from testing.download_project import DISTS, make_project
from testing.environment import clean_env
from testing.fakeindex import Dist, build_index, serve_index
from testing.tasks import run_task
from testing.wheels import make_wheel


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    with serve_index(build_index(tmp_path_factory.mktemp("index"), DISTS)) as url:
        yield url


@pytest.fixture
def downloaded(index, tmp_path):
    project = make_project(tmp_path, index, "app\n")
    inventory = project / "inventory.yaml"
    run_task("download", "--inventory", str(inventory), "--target", "win313", "--no-verify", env=clean_env(project),
             check=True)  # fmt: skip
    return load_inventory(inventory)


def test_a_complete_wheelhouse_verifies(downloaded):
    report = verify_target(downloaded, downloaded.targets["win313"])
    assert report.ok and report.problems == [] and report.sets == 1


def test_a_missing_file_fails_with_its_name(downloaded):
    (downloaded.wheelhouse / "win313" / "winonly-1.0-py3-none-any.whl").unlink()
    report = verify_target(downloaded, downloaded.targets["win313"])
    assert not report.ok and "winonly" in "\n".join(report.problems)


def test_a_target_never_downloaded_says_what_to_run(downloaded):
    report = verify_target(downloaded, downloaded.targets["lin311"])
    assert not report.ok and "inv download --target lin311" in report.problems[0]


@pytest.mark.parametrize("fork", [True, False], ids=["sets forked from one pip", "a pip for each set"])
def test_pip_resolves_each_set_for_this_interpreter_and_names_what_is_missing(tmp_path, monkeypatch, fork):
    if not fork:  # as on Windows
        monkeypatch.delattr(os, "fork")
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "app", "1.0", headers=[("Requires-Dist", "lib>=1")])
    needs_lib = ResolutionSet("requirements.txt", ("app",))
    small = ResolutionSet("small.txt", ("lib",))
    problems = _native(sys.executable, wheels, [needs_lib, small])
    dry_runs = [p for p in problems if "pip install --dry-run --no-index failed" in p]
    # each set is resolved by pip, and each complaint names its set and what is missing
    assert len(dry_runs) == 2 and all("lib" in p for p in dry_runs)
    assert {p.split(":")[0] for p in dry_runs} == {"requirements.txt", "small.txt"}
    make_wheel(wheels, "lib", "1.0")
    assert _native(sys.executable, wheels, [needs_lib, small]) == []


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "in one process"])
def test_the_dry_run_program_keeps_each_lists_code_and_output_apart(tmp_path, fork):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "lib", "1.0")
    lists = [["--no-index", "--find-links", str(wheels), name] for name in ("missing", "lib", "missing-too")]
    start = "import os, runpy, sys\n" + ("" if fork else "del os.fork\n")
    start += "sys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')"
    sources = str(Path(pip.__file__).parent.parent)
    command = [sys.executable, "-c", start, str(verify._PIP_DRY_RUNS), sources, str(tmp_path)]
    ran = subprocess.run(command, input=json.dumps(lists), capture_output=True, text=True, check=True)
    assert json.loads(ran.stdout.strip().splitlines()[-1]) == [1, 0, 1]
    logs = [(tmp_path / f"{n}.log").read_text() for n in range(3)]
    assert "missing" in logs[0] and "missing-too" not in logs[0]
    assert "Would install lib-1.0" in logs[1]
    assert "missing-too" in logs[2]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the children share the parent's work only when forked")
def test_the_dry_run_programs_children_share_one_user_agent(tmp_path):
    """pip's user agent runs `rustc --version`: once for the program, not once for each list."""
    wheels, bin_dir, ran = tmp_path / "wheels", tmp_path / "bin", tmp_path / "rustc-ran"
    make_wheel(wheels, "lib", "1.0")
    bin_dir.mkdir()
    rustc = bin_dir / "rustc"
    rustc.write_text(f"#!/bin/sh\necho x >> {ran}\necho 'rustc 1.0.0 (000000000 2020-01-01)'\n")
    rustc.chmod(0o755)
    lists = [["--no-index", "--find-links", str(wheels), "lib"]] * 3
    sources = str(Path(pip.__file__).parent.parent)
    command = [sys.executable, str(verify._PIP_DRY_RUNS), sources, str(tmp_path)]
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(command, input=json.dumps(lists), capture_output=True, text=True, env=env, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0, 0, 0]
    assert ran.read_text().count("x") == 1


@pytest.mark.skipif(not hasattr(os, "fork") or len(os.sched_getaffinity(0)) < 2, reason="needs fork and two cores")
def test_the_dry_run_program_runs_its_lists_side_by_side(tmp_path):
    """The first list's run waits for the second's to start: one after the other, it would wait in vain."""
    program = runpy.run_path(str(verify._PIP_DRY_RUNS))
    started = tmp_path / "second started"

    def fake_pip(arguments):
        if arguments[-1] == "second":
            started.touch()
            return 0
        deadline = time.monotonic() + 30  # only a guard: side by side, the second starts at once
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return 0 if started.exists() else 3

    assert program["_forked"](fake_pip, [["first"], ["second"]], str(tmp_path)) == [0, 0]


def test_the_real_install_catches_a_wheel_that_does_not_unpack(tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "app", "1.0").write_bytes(b"not a zip at all")
    problems = _native(sys.executable, wheels, [ResolutionSet("requirements.txt", ("app",))])
    assert any("uv pip install --no-index failed" in p for p in problems)


@pytest.mark.skipif(sys.platform != "linux", reason="uv allocates with jemalloc in its Linux builds only")
def test_the_real_install_gives_uv_an_allocator_setting_it_takes(tmp_path, monkeypatch):
    """The setting that keeps uv from taking a fresh buffer from the kernel for every file it unpacks."""
    installs = []
    real = subprocess.run

    def spied(command, *args, **kwargs):
        if command[1:3] == ["pip", "install"]:
            installs.append(kwargs["env"])
        return real(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spied)
    make_wheel(tmp_path / "wheels", "app", "1.0")
    assert verify._install(sys.executable, tmp_path / "wheels", ResolutionSet("a.txt", ("app",))) is None
    [env] = installs
    conf = env["_RJEM_MALLOC_CONF"]
    shown = real([uv_binary(), "--version"], env={**env, "_RJEM_MALLOC_CONF": f"{conf},stats_print:true"},
                 capture_output=True, text=True, check=True)  # fmt: skip
    for setting in conf.split(","):
        name, value = setting.split(":")
        assert f"opt.{name}: {value}" in shown.stdout + shown.stderr
    assert "Invalid conf" not in shown.stdout + shown.stderr


def test_a_python_that_cannot_make_a_venv_is_said_once(tmp_path):
    """The real install and every dry run fail alike; the report says so once, under the first set."""
    sets = [ResolutionSet("a.txt", ("app",)), ResolutionSet("b.txt", ("lib",))]
    assert _native("/bin/false", tmp_path, sets) == ["a.txt: could not create a venv with /bin/false: "]


def test_a_pip_that_cannot_run_in_the_venvs_python_says_so(tmp_path, monkeypatch):
    broken = tmp_path / "sources" / "pip"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise SyntaxError('written for a newer python')\n")
    monkeypatch.setattr(verify, "pip", SimpleNamespace(__file__=str(broken / "__init__.py")))
    make_wheel(tmp_path / "wheels", "app", "1.0")
    sets = [ResolutionSet("a.txt", ("app",)), ResolutionSet("b.txt", ("app",))]
    problems = _native(sys.executable, tmp_path / "wheels", sets)
    assert len(problems) == 1 and problems[0].startswith("a.txt: pip install --dry-run --no-index failed")
    assert f"cannot run in python {sys.version_info.major}.{sys.version_info.minor}" in problems[0]
    assert "written for a newer python" in problems[0]


def test_the_real_installs_scratch_is_removed_by_a_process_of_its_own(tmp_path, monkeypatch):
    """Removed in this process, its many small system calls would wait for the interpreter behind the busy threads."""
    monkeypatch.setattr(shutil, "rmtree", lambda *args, **kwargs: None)  # this process removes nothing
    with verify._throwaway(str(tmp_path)) as scratch:
        (scratch / "venv" / "lib").mkdir(parents=True)
        (scratch / "venv" / "lib" / "module.py").write_text("")
    deadline = time.monotonic() + 30  # removed in the background: generous, for a loaded machine
    while scratch.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not scratch.exists()


def test_a_python_is_looked_for_once_per_run(monkeypatch):
    searches = []
    real = subprocess.run

    def counted(command, *args, **kwargs):
        if command[1:3] == ["python", "find"]:
            searches.append(command)
        return real(command, *args, **kwargs)

    monkeypatch.setattr(verify, "_pythons", {})
    monkeypatch.setattr(subprocess, "run", counted)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = [verify._find_python(version) for _ in range(3)]
    assert len(searches) == 1 and found[0] is not None and found == [found[0]] * 3


def test_without_fork_the_scratch_is_removed_before_the_remover_ends(tmp_path):
    """As on Windows: the remover cannot leave a child behind, so the run waits for it."""
    scratch = tmp_path / "scratch"
    (scratch / "venv").mkdir(parents=True)
    start = "import os, sys\ndel os.fork\nsys.argv = sys.argv[1:]\nexec(sys.argv[0])"
    subprocess.run([sys.executable, "-c", start, verify._REMOVE_TREE, str(scratch)], check=True)
    assert not scratch.exists()


def test_a_verified_target_stays_verified_when_others_link_its_files(downloaded):
    """Another target's links move a pool file's ctime, not its bytes; a replaced file is verified again."""
    target = downloaded.targets["win313"]
    assert verify_target(downloaded, target, reuse=True).native != "unchanged since verified"
    directory = downloaded.wheelhouse / "win313"
    elsewhere = downloaded.wheelhouse / "mac312"
    elsewhere.mkdir(exist_ok=True)
    for wheel in directory.iterdir():
        os.link(wheel, elsewhere / wheel.name)
    assert verify_target(downloaded, target, reuse=True).native == "unchanged since verified"
    replaced = directory / "winonly-1.0-py3-none-any.whl"
    copy = replaced.read_bytes()
    replaced.unlink()
    replaced.write_bytes(copy)  # the same bytes in a file of its own, no longer the pool's
    assert verify_target(downloaded, target, reuse=True).native != "unchanged since verified"


@pytest.fixture
def native_downloaded(index, tmp_path):
    """A wheelhouse downloaded for lin311, the target this machine runs, not yet verified."""
    project = make_project(tmp_path, index, "app\n")
    run_task("download", "--inventory", str(project / "inventory.yaml"), "--target", "lin311", "--no-verify",
             env=clean_env(project), check=True)  # fmt: skip
    return load_inventory(project / "inventory.yaml")


def test_a_native_target_uv_cannot_resolve_offline_reports_uvs_complaint_alone(native_downloaded):
    """The native proof runs beside uv's offline resolution; when uv already fails, pip's same failure is not added."""
    inventory = native_downloaded
    target = inventory.targets["lin311"]
    assert verify_target(inventory, target).native == "pip resolved, installed"
    (inventory.wheelhouse / "lin311" / "posixonly-1.0-py3-none-any.whl").unlink()
    report = verify_target(inventory, target)
    assert not report.ok and report.native == "not shown: uv failed first"
    assert len(report.problems) == 1 and "not installable from" in report.problems[0]
    assert "posixonly" in report.problems[0]


def test_dry_runs_started_early_are_the_ones_the_native_verify_uses(native_downloaded):
    inventory = native_downloaded
    target = inventory.targets["lin311"]
    with verify.EarlyDryRuns() as early:
        early.start([target, inventory.targets["win313"]])  # a target this machine cannot run starts none
        [started] = early._started.values()
        report = verify_target(inventory, target, early=early)
        assert early._started == {}
    assert report.ok and report.native == "pip resolved, installed"
    assert started.waiting is None and started.started == 1  # its program got the lists; no other was started
    assert not started.scratch.exists()


def test_dry_runs_never_taken_are_stopped_and_removed(tmp_path):
    with verify.EarlyDryRuns() as early:
        early._started[sys.executable] = started = verify._DryRuns(sys.executable)
        program = started.waiting[1]
    assert program.poll() is not None and not started.scratch.exists()


def test_dry_runs_that_fail_to_start_leave_no_scratch_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def cannot_start(*args, **kwargs):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(subprocess, "Popen", cannot_start)
    with pytest.raises(OSError, match="Too many open files"):
        verify._DryRuns(sys.executable)
    assert list(tmp_path.iterdir()) == []


def test_a_wheel_the_clients_pip_cannot_see_fails_until_the_inventory_names_a_pip_that_can(tmp_path):
    dists = [Dist("newtag", "1.0", tags=["cp39-cp39-manylinux_2_28_x86_64"])]
    targets = (
        'targets:\n  lin39: {platform: manylinux_2_28_x86_64, python: "3.9", requirements: [requirements.txt]%s}\n'
    )
    with serve_index(build_index(tmp_path / "index", dists)) as url:
        project = make_project(tmp_path, url, "newtag\n", targets % "")
        download = ("download", "--inventory", str(project / "inventory.yaml"))
        refused = run_task(*download, env=clean_env(project))
        message = " ".join(refused.stderr.split())
        assert refused.returncode == 4, refused.stdout + refused.stderr
        assert "the clients' pip (pip 20.2.3, the one Python 3.9 came with) cannot see 1 wheel(s)" in message
        assert (
            "newtag-1.0-cp39-cp39-manylinux_2_28_x86_64.whl (its manylinux_2_28_x86_64 tag needs pip 20.3)" in message
        )
        assert 'say so with oldest_pip: "20.3" under targets.lin39' in message
        assert "legacy manylinux platforms only" in message
        (project / "inventory.yaml").write_text(f"index_url: {url}\n" + targets % ', oldest_pip: "20.3"')
        assert run_task(*download, env=clean_env(project)).returncode == 0
        # oldest_pip taken back after the download: the bundle checks again, and carries nothing across
        (project / "inventory.yaml").write_text(f"index_url: {url}\n" + targets % "")
        bundled = run_task("bundle", "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
        message = " ".join(bundled.stderr.split())
        assert bundled.returncode == 4 and "target 'lin39': the clients' pip (pip 20.2.3" in message, message
        assert "No bundle was written" in message and "Traceback" not in bundled.stderr
        assert not list(project.glob("bundles/*.tar*"))
        checked = run_task("bundle", "--check", "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
        assert checked.returncode == 4 and "No bundle was written" in " ".join(checked.stderr.split())


def test_uv_resolves_the_sets_side_by_side_and_reports_them_in_order(tmp_path, monkeypatch):
    """Each set's offline resolution waits for the last to start: one after the other, they would wait in vain."""
    sets = [ResolutionSet(label, (label,), ()) for label in ("first", "second", "third")]
    started: list[str] = []

    def fake_compile(resolution, *args, **kwargs):
        started.append(resolution.label)
        deadline = time.monotonic() + 10  # only a guard: side by side, all three start at once
        while len(started) < len(sets) and time.monotonic() < deadline:
            time.sleep(0.01)
        failed = len(started) < len(sets) or resolution.label != "second"
        return SimpleNamespace(returncode=1 if failed else 0, stderr=f"cannot resolve {resolution.label}\n")

    monkeypatch.setattr(verify, "uv_compile", fake_compile)
    problems = verify._offline_problems(SimpleNamespace(), tmp_path, sets)
    assert [p.split(":")[0] for p in problems] == ["first", "third"]
    assert "cannot resolve third" in problems[1]


def test_uv_resolves_at_most_four_of_a_targets_sets_at_once(tmp_path, monkeypatch):
    """Dozens of requirement files must not start a uv each at the same moment."""
    sets = [ResolutionSet(f"set{n}", (f"set{n}",), ()) for n in range(10)]
    running, most = [], []

    def fake_compile(resolution, *args, **kwargs):
        running.append(resolution.label)
        most.append(len(running))
        time.sleep(0.05)  # long enough for the others to start beside it, if they may
        running.remove(resolution.label)
        return SimpleNamespace(returncode=1, stderr=f"cannot resolve {resolution.label}\n")

    monkeypatch.setattr(verify, "uv_compile", fake_compile)
    problems = verify._offline_problems(SimpleNamespace(), tmp_path, sets)
    assert [p.split(":")[0] for p in problems] == [s.label for s in sets]
    assert 1 < max(most) <= 4
