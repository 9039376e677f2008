"""`inv download` and `inv verify` against a deterministic index on loopback.

The index serves generated wheels whose metadata carries platform and Python
markers, compiled packages with per-platform wheels, and sdist-only packages.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from devpi_airgap.core.files import tmpfs_with_room
from devpi_airgap.core.inventory import load_inventory
from devpi_airgap.core.lock import read_lock
from devpi_airgap.online import resolve
from devpi_airgap.online.download import download as download_targets
from testing.download_project import DISTS, held_download, make_project
from testing.environment import clean_env
from testing.fakeindex import Dist, add_release, build_index, serve_index, sha256_file
from testing.tasks import REPO, run_task


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = build_index(tmp_path_factory.mktemp("index"), DISTS)
    with serve_index(root) as url:
        yield url


def files(project: Path, target: str) -> set[str]:
    return {p.name for p in (project / "wheelhouse" / target).iterdir()}


def names(project: Path, target: str) -> set[str]:
    return {f.split("-")[0] for f in files(project, target)}


def download(project: Path, *args: str, env: dict | None = None, check=True):
    return run_task(
        "download", "--inventory", str(project / "inventory.yaml"), *args, env=env or clean_env(project), check=check
    )


@pytest.fixture(scope="module")
def downloaded(index, tmp_path_factory):
    # A Windows user's project lives under a name like C:\Users\김민수\My Documents: the whole flow runs under one.
    where = tmp_path_factory.mktemp("project") / "김 민수 (my project)"
    where.mkdir()
    project = make_project(where, index, "app\nlib<3\nlib<2\n")
    index.clear()
    result = download(project)
    return project, result, index.file_requests()


def test_each_target_gets_its_own_closure(downloaded):
    project, *_ = downloaded
    assert names(project, "win313") == {"app", "winonly", "newpy", "natext", "sdistonly", "lib"}
    assert names(project, "mac312") == {"app", "posixonly", "macdep", "natext", "sdistonly", "lib"}
    assert names(project, "lin311") == {"app", "posixonly", "oldpy", "natext", "sdistonly", "lib"}
    assert "natext-1.0-cp313-cp313-win_amd64.whl" in files(project, "win313")
    assert "natext-1.0-cp312-cp312-macosx_11_0_arm64.whl" in files(project, "mac312")
    assert "natext-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" in files(project, "lin311")


def test_sdist_only_pure_package_is_built_once_into_a_wheel(downloaded):
    project, *_ = downloaded
    for target in ("win313", "mac312", "lin311"):
        assert "sdistonly-1.0-py3-none-any.whl" in files(project, target)
    lock = json.loads((project / "locks" / "win313.lock.json").read_text())
    built = [p for p in lock["packages"] if p["name"] == "sdistonly"]
    assert built[0]["built_from"]["filename"] == "sdistonly-1.0.tar.gz"
    pooled = project / "wheelhouse" / ".pool" / "sdistonly-1.0-py3-none-any.whl"
    assert pooled.stat().st_nlink == 4  # the pool plus three targets, one copy on disk


def test_several_specifiers_of_one_package_all_land(downloaded):
    project, *_ = downloaded
    assert {"lib-1.0-py3-none-any.whl", "lib-2.0-py3-none-any.whl"} <= files(project, "win313")
    assert "lib-3.0-py3-none-any.whl" not in files(project, "win313")


def test_lock_records_exact_files_and_their_sha256(downloaded):
    project, *_ = downloaded
    lock = json.loads((project / "locks" / "lin311.lock.json").read_text())
    assert lock["python"] == "3.11" and lock["platform"] == ["manylinux_2_28_x86_64", "manylinux2014_x86_64"]
    for entry in lock["packages"]:
        assert sha256_file(project / "wheelhouse" / "lin311" / entry["filename"]) == entry["sha256"]
    assert {(p["name"], p["version"]) for p in lock["packages"]} >= {("lib", "1.0"), ("lib", "2.0"), ("natext", "1.0")}


def test_shared_files_are_downloaded_once_and_verified(downloaded):
    project, result, fetched = downloaded
    wheels = [f for f in fetched if f.endswith(".whl")]  # uv itself reads sdists for their metadata
    assert sorted(wheels) == sorted(set(wheels))
    assert "/files/app-1.0-py3-none-any.whl" in fetched
    verified = result.stdout.split("verified offline", 1)[1].split("\naudit", 1)[0]
    rows = {line.split()[1]: line for line in verified.splitlines() if line.startswith("│")}
    assert set(rows) >= {"win313", "mac312", "lin311"}
    assert all(" ok " in row for row in rows.values())
    assert "not this machine" in rows["win313"]
    # This machine runs manylinux x86_64, so lin311 gets a real pip install where a python3.11 exists.
    assert "installed" in rows["lin311"] or "no python3.11" in rows["lin311"]


def _written(project) -> dict[str, tuple[int, int]]:
    """Every file of the wheelhouse and the locks, with what any write would move (inode, ctime)."""
    found = {}
    for top in ("wheelhouse", "locks"):
        for path in sorted((project / top).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(project))] = (path.stat().st_ino, path.stat().st_ctime_ns)
    return found


def test_rerun_changes_nothing_and_downloads_nothing(downloaded, index):
    project, *_ = downloaded
    written = _written(project)
    index.clear()
    result = download(project)
    assert index.file_requests() == []
    assert "no changes" in result.stdout
    # not one file rewritten, not even a cache with the same content
    assert _written(project) == written
    # Each target was verified while the others downloaded; what it proved then still holds.
    assert result.stdout.count("unchanged since verified") == 3, result.stdout


def test_output_in_a_windows_code_page_still_says_everything(downloaded):
    """Redirected on Windows, output is in the ANSI code page (here cp1252), which has no Korean: the report's
    path under the project's Korean name is written with \\u escapes instead of ending the run in a traceback."""
    project, _, _ = downloaded
    command = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "report", "--inventory",
               str(project / "inventory.yaml")]  # fmt: skip
    env = clean_env(project, PYTHONIOENCODING="cp1252")
    result = subprocess.run(command, env=env, capture_output=True, encoding="cp1252")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HTML report: " in result.stdout and "\\uae40 \\ubbfc\\uc218 (my project)" in result.stdout


def test_compiled_project_never_resolves_to_its_sdist(index, tmp_path):
    project = make_project(tmp_path, index, "compiled\n")
    download(project, "--target", "win313,lin311")
    assert files(project, "win313") == {"compiled-1.0-cp313-cp313-win_amd64.whl"}
    assert files(project, "lin311") == {"compiled-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"}


def test_impure_sdist_is_a_clear_error(index, tmp_path):
    project = make_project(tmp_path, index, "impure\n")
    result = download(project, "--target", "win313", check=False)
    assert result.returncode == 3
    message = " ".join(result.stderr.split())
    assert "impure 1.0 has no wheel for target 'win313'" in message
    assert "platform-specific wheel" in message and "Remedy:" in message


def test_package_without_any_fitting_file_names_package_and_target(index, tmp_path):
    project = make_project(tmp_path, index, "elsewhere\n")
    result = download(project, "--target", "win313", check=False)
    assert result.returncode == 3
    message = " ".join(result.stderr.split())
    assert "elsewhere" in message and "'win313'" in message and "Remedy:" in message


def test_locked_redownloads_exactly_the_lock_without_resolving(downloaded, index, tmp_path):
    project, *_ = downloaded
    copy = make_project(tmp_path, index, "app\nlib<3\nlib<2\n")
    (copy / "locks").mkdir()
    for lock in (project / "locks").glob("*.json"):
        (copy / "locks" / lock.name).write_text(lock.read_text())
    add_release(index.root, Dist("lib", "1.5"))
    index.clear()
    download(copy, "--locked")
    assert not [p for p in index.paths() if p.startswith("/simple/")]
    for target in ("win313", "mac312", "lin311"):
        assert files(copy, target) == files(project, target)


def test_tampered_pool_file_is_fetched_again(index, tmp_path):
    project = make_project(tmp_path, index, "natext\n")
    download(project, "--target", "win313")
    pooled = project / "wheelhouse" / ".pool" / "natext-1.0-cp313-cp313-win_amd64.whl"
    good = sha256_file(pooled)
    pooled.unlink()
    pooled.write_bytes(b"tampered")
    index.clear()
    download(project, "--target", "win313")
    assert index.file_requests() == ["/files/natext-1.0-cp313-cp313-win_amd64.whl"]
    assert sha256_file(project / "wheelhouse" / "win313" / pooled.name) == good


def flip_one_byte_keeping_mtime(path: Path) -> None:
    """Silent corruption as a disk or a careless hand makes it: one byte changed, the timestamp put back."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    with open(path, "r+b") as f:  # in place: same inode, as bit rot would leave it
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size


def test_a_flipped_byte_is_caught_whatever_its_timestamps(index, tmp_path):
    project = make_project(tmp_path, index, "natext\n")
    download(project, "--target", "win313")
    pooled = project / "wheelhouse" / ".pool" / "natext-1.0-cp313-cp313-win_amd64.whl"
    good = sha256_file(pooled)
    flip_one_byte_keeping_mtime(pooled)
    verified = run_task(
        "verify", "--inventory", str(project / "inventory.yaml"), "--target", "win313", env=clean_env(project)
    )
    assert verified.returncode == 4, verified.stdout + verified.stderr
    assert pooled.name in verified.stderr and "differs from the sha256" in " ".join(verified.stderr.split())
    index.clear()
    again = download(project, "--target", "win313")
    assert "unchanged since verified" not in again.stdout
    assert index.file_requests() == ["/files/natext-1.0-cp313-cp313-win_amd64.whl"]  # fetched again, and only it
    assert sha256_file(project / "wheelhouse" / "win313" / pooled.name) == good


def test_verify_names_what_is_missing(index, tmp_path):
    project = make_project(tmp_path, index, "app\n")
    download(project, "--target", "win313")
    (project / "wheelhouse" / "win313" / "winonly-1.0-py3-none-any.whl").unlink()
    result = run_task(
        "verify", "--inventory", str(project / "inventory.yaml"), "--target", "win313", env=clean_env(project)
    )
    assert result.returncode == 4
    assert "winonly" in result.stderr and "win313" in result.stderr


def test_users_pip_and_uv_config_never_leak_in(index, tmp_path):
    decoy = build_index(tmp_path / "decoy", [Dist("winonly", "9.0"), Dist("lib", "9.0")])
    project = make_project(tmp_path, index, "app\nlib\n")
    env = clean_env(project)
    (tmp_path / "pip.conf").write_text(f"[global]\nfind-links = {decoy / 'files'}\n")
    (tmp_path / "uv.toml").write_text(f'find-links = ["{decoy / "files"}"]\n')
    env.update(
        PIP_FIND_LINKS=str(decoy / "files"),
        PIP_EXTRA_INDEX_URL=f"file://{decoy / 'simple'}",
        PIP_CONFIG_FILE=str(tmp_path / "pip.conf"),
        UV_FIND_LINKS=str(decoy / "files"),
        UV_EXTRA_INDEX_URL=f"file://{decoy / 'simple'}",
        UV_CONFIG_FILE=str(tmp_path / "uv.toml"),
    )
    download(project, "--target", "win313", env=env)
    assert "lib-3.0-py3-none-any.whl" in files(project, "win313")
    assert not [f for f in files(project, "win313") if "9.0" in f]


def test_requirements_cannot_add_sources(index, tmp_path):
    project = make_project(tmp_path, index, "--extra-index-url http://127.0.0.1:9/simple\napp\n")
    result = download(project, "--target", "win313", check=False)
    assert result.returncode == 2  # a requirements file we cannot use, as the exit codes' table says
    assert "--extra-index-url is not allowed" in result.stderr


def hash_pinned(index_root: Path, *pins: tuple[str, str]) -> str:
    """Requirements as `pip-compile --generate-hashes` writes them: each (requirement, file) with the file's sha256."""
    return "".join(
        f"{requirement} \\\n    --hash=sha256:{sha256_file(index_root / 'files' / filename)}\n    # via -r requirements.in\n"
        for requirement, filename in pins
    )


@pytest.fixture(scope="module")
def hashed_index(tmp_path_factory):
    """A tool that needs another project on Windows only, as click once needed colorama."""
    dists = [
        Dist("tool", "1.0", requires=['winonly; sys_platform == "win32"']),
        Dist("winonly", "1.0"),
        Dist("lib", "2.0"),
        Dist("srconly", "1.0", sdist=True, wheel=False),
    ]
    root = build_index(tmp_path_factory.mktemp("hashed-index"), dists)
    with serve_index(root) as url:
        yield root, url


def test_hashes_that_allow_every_file_a_target_needs_let_it_through(hashed_index, tmp_path):
    root, url = hashed_index
    pins = [
        ("tool==1.0", "tool-1.0-py3-none-any.whl"),
        ('winonly==1.0 ; sys_platform == "win32"', "winonly-1.0-py3-none-any.whl"),
    ]
    project = make_project(tmp_path, url, hash_pinned(root, *pins))
    download(project, "--target", "win313,lin311")
    assert files(project, "win313") == {"tool-1.0-py3-none-any.whl", "winonly-1.0-py3-none-any.whl"}
    assert files(project, "lin311") == {"tool-1.0-py3-none-any.whl"}


def test_hashes_made_for_one_platform_name_what_another_target_needs(hashed_index, tmp_path):
    root, url = hashed_index
    project = make_project(tmp_path, url, hash_pinned(root, ("tool==1.0", "tool-1.0-py3-none-any.whl")))
    result = download(project, "--target", "win313", check=False)
    assert result.returncode == 3, result.stderr
    message = " ".join(result.stderr.split())
    assert "target 'win313' (win_amd64, Python 3.13) needs files that the --hash values" in message
    assert "winonly 1.0: not in requirements.txt" in message and "--universal --generate-hashes" in message
    assert not (project / "wheelhouse" / "win313").exists() and not (project / "locks").exists()
    download(project, "--target", "lin311")  # where it needs nothing else, the same file is enough


def test_a_file_whose_sha256_no_hash_allows_is_refused_by_name(hashed_index, tmp_path):
    root, url = hashed_index
    real = sha256_file(root / "files" / "lib-2.0-py3-none-any.whl")
    altered = hash_pinned(root, ("lib==2.0", "lib-2.0-py3-none-any.whl")).replace(real, "0" * 64)
    project = make_project(tmp_path, url, altered)
    result = download(project, "--target", "win313", check=False)
    assert result.returncode == 3, result.stderr
    message = " ".join(result.stderr.split())
    assert f"lib 2.0: lib-2.0-py3-none-any.whl (sha256 {real}) matches none of the 1 --hash values" in message
    assert not (project / "wheelhouse" / "win313").exists()


def test_a_hash_pinned_sdist_needs_the_hash_of_the_wheel_built_from_it_too(hashed_index, tmp_path):
    """The closed network's index serves the wheel built here, and pip's hash-checking mode takes only a file
    whose sha256 the line allows: allowing the sdist's alone passed here and failed there."""
    root, url = hashed_index
    requirements = hash_pinned(root, ("srconly==1.0", "srconly-1.0.tar.gz"))
    project = make_project(tmp_path, url, requirements)
    directory = project / "wheelhouse" / "lin311"

    def pip_in_hash_mode() -> subprocess.CompletedProcess:  # as a user runs it there, from the wheels alone
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--find-links", str(directory)]
        env = {**clean_env(project), "PIP_CONFIG_FILE": os.devnull}
        return subprocess.run([*command, "-r", str(project / "requirements.txt")], capture_output=True, text=True,
                              env=env)  # fmt: skip

    refused = download(project, "--target", "lin311", check=False)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    [wheel] = [f for f in read_lock(project / "locks" / "lin311.lock.json")[1] if f.built_from]
    said = " ".join((refused.stdout + refused.stderr).split())
    assert f"serves {wheel.filename}, built here from srconly-1.0.tar.gz" in said
    assert f"add --hash=sha256:{wheel.sha256} to the srconly line of requirements.txt" in said
    assert "DO NOT MATCH THE HASHES" in pip_in_hash_mode().stdout + pip_in_hash_mode().stderr  # what it spared

    (project / "requirements.txt").write_text(
        requirements.replace("\n    # via", f" \\\n    --hash=sha256:{wheel.sha256}\n    # via", 1)
    )
    again = download(project, "--target", "lin311", check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [f.sha256 for f in read_lock(project / "locks" / "lin311.lock.json")[1]] == [wheel.sha256]  # not rebuilt
    installed = pip_in_hash_mode()
    assert installed.returncode == 0 and "Would install srconly-1.0" in installed.stdout, installed.stderr


def test_rerun_picks_up_a_new_release_within_range(downloaded, index):
    project, *_ = downloaded
    add_release(index.root, Dist("lib", "2.5"))
    index.clear()
    result = download(project)
    assert "lib-2.5-py3-none-any.whl" in files(project, "win313")
    # lib 1.5 arrived in the --locked test above: now it is the newest release for `lib<2`.
    assert sorted(index.file_requests()) == ["/files/lib-1.5-py3-none-any.whl", "/files/lib-2.5-py3-none-any.whl"]
    assert "no changes" not in result.stdout
    lock = json.loads((project / "locks" / "win313.lock.json").read_text())
    assert ("lib", "2.5") in {(p["name"], p["version"]) for p in lock["packages"]}


def test_a_second_run_on_the_same_wheelhouse_is_refused_clearly(index, tmp_path):
    from devpi_airgap.core.runlock import wheelhouse_lock

    project = make_project(tmp_path, index, "natext\n")
    with wheelhouse_lock(project / "wheelhouse"):  # another run, as far as the task's process can tell
        busy = download(project, "--target", "win313", check=False)
        assert busy.returncode == 8, busy.stdout + busy.stderr
        assert "another devpi-airgap run is working on" in " ".join(busy.stderr.split())
        assert not (project / "locks").exists() and "Traceback" not in busy.stderr
    assert download(project, "--target", "win313", check=False).returncode == 0


@pytest.mark.parametrize("phase", ["resolving", "fetching"])
def test_ctrl_c_stops_a_slow_download_at_once_and_leaves_no_partial_files(index, tmp_path, phase):
    """A stop that waited for queued work would take minutes."""
    project = make_project(tmp_path, index, "app\nlib<3\n")
    locked = []
    if phase == "fetching":  # --locked skips resolving: the interrupt lands among the downloads
        download(project)
        shutil.rmtree(project / "wheelhouse")
        locked = ["--locked"]
    with held_download(index, project, *locked, held="metadata" if phase == "resolving" else "file") as process:
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: to uv too
        try:
            _, stderr = process.communicate(timeout=30)  # generous: waiting for the files would take 60 s or more
        except subprocess.TimeoutExpired:
            raise AssertionError("Ctrl-C did not stop the download within 30 s") from None
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    leftovers = [p.name for p in (project / "wheelhouse").rglob("*") if p.name.endswith((".part", ".tmp"))]
    assert leftovers == []


def test_ctrl_c_stops_download_check_at_once_and_it_says_nothing_was_changed(index, tmp_path):
    project = make_project(tmp_path, index, "app\nlib<3\n")
    with held_download(index, project, "--check", held="metadata") as process:  # held in a uv try
        os.killpg(process.pid, signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("Ctrl-C did not stop the check within 30 s") from None
    assert process.returncode == 130, stderr
    assert "interrupted; nothing was changed" in stderr and "kept" not in stderr and "Traceback" not in stderr
    assert not (project / "wheelhouse").exists() and not (project / "locks").exists()


@pytest.mark.skipif(os.name != "posix", reason="Windows sends neither signal")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_kill_or_a_closed_terminal_stops_a_download_as_ctrl_c_does(index, tmp_path, stop):
    """`kill PID` (SIGTERM) and a closed terminal (SIGHUP) used to end the run where it stood: no message, and
    its scratch and partial files left behind. Sent to the run alone, not to its uv, which the run stops itself."""
    project = make_project(tmp_path, index, "app\nlib<3\n")
    with held_download(index, project, held="metadata") as process:  # held in a uv try
        os.kill(process.pid, stop)
        try:
            _, stderr = process.communicate(timeout=30)  # the held uv alone would wait 60 s for its file
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{stop.name} did not stop the download within 30 s") from None
    assert process.returncode == 130, stderr
    assert f"stopped by {stop.name}" in stderr and "Traceback" not in stderr
    places = {Path(tempfile.gettempdir()), Path(tmpfs_with_room(resolve.RUN_CACHE_ROOM) or tempfile.gettempdir())}
    assert [p for where in places for p in where.glob(f"airgap-*{process.pid}-*")] == []  # removed by the run itself
    assert [p.name for p in (project / "wheelhouse").rglob("*") if p.name.endswith((".part", ".tmp"))] == []


@pytest.mark.skipif(os.name != "posix", reason="Windows sends no SIGTERM")
def test_kill_sent_to_a_run_that_a_script_started_ends_its_uv_too(index, tmp_path):
    """Started from a script, the run does not lead its process group, and so does not pass the stop on to it:
    the uv held in its try (60 s for a file's metadata) used to run on after the run had ended."""
    project = make_project(tmp_path, index, "app\nlib<3\n")
    with held_download(index, project, held="metadata", leader=False) as script:
        run = int(subprocess.run(["pgrep", "-P", str(script.pid)], capture_output=True, text=True).stdout)
        uv = subprocess.run(["pgrep", "-f", f"airgap-resolve-{run}-"], capture_output=True, text=True).stdout.split()
        assert uv, "no uv try running"
        os.kill(run, signal.SIGTERM)
        try:
            _, stderr = script.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("SIGTERM did not stop the download within 30 s") from None
    assert script.returncode == 130 and "stopped by SIGTERM" in stderr, stderr
    deadline = time.monotonic() + 10  # ended by the run as it stops; left alone, it would wait out its minute
    while (running := [pid for pid in uv if Path(f"/proc/{pid}").exists()]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running == []


@pytest.mark.skipif(os.name != "posix", reason="Windows has no SIGHUP")
def test_under_nohup_a_closed_terminal_does_not_stop_the_run(index, tmp_path):
    """nohup sets SIGHUP to be ignored, so that the run outlives its terminal; the run must leave it so."""
    project = make_project(tmp_path, index, "app\nlib<3\n")
    with held_download(index, project, held="metadata", ignore_sighup=True) as process:
        os.kill(process.pid, signal.SIGHUP)
        time.sleep(2)
        assert process.poll() is None, "SIGHUP stopped a run started with it ignored"
        index.metadata_seconds = 0  # let it go on
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert (project / "locks" / "win313.lock.json").exists()


def test_the_scratch_of_a_run_killed_outright_is_removed_by_the_next_run(index, tmp_path):
    """SIGKILL leaves the run's scratch behind (its uv cache in memory when on tmpfs, the try's directory in the
    temp dir): the next run takes it away."""
    project = make_project(tmp_path, index, "app\nlib<3\n")
    places = {
        "airgap-uv-cache-": Path(tmpfs_with_room(resolve.RUN_CACHE_ROOM) or tempfile.gettempdir()),
        "airgap-resolve-": Path(tempfile.gettempdir()),
    }
    with held_download(index, project, held="metadata") as process:  # held in a uv try
        left = [path for kind, where in places.items() for path in where.glob(f"{kind}{process.pid}-*")]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert sorted(p.name.split(str(process.pid))[0] for p in left) == sorted(places)  # what the killed run left
    download(project)
    assert [p for p in left if p.exists()] == []


def test_the_partial_downloads_of_a_run_killed_outright_are_removed_by_the_next_run(index, tmp_path):
    project = make_project(tmp_path, index, "app\n")
    download(project)
    pool = project / "wheelhouse" / ".pool"
    # what a SIGKILL amid downloads leaves: each thread's partial file, as fetch names them
    left = [pool / ".lib-2.0-py3-none-any.whl.140096447698624.part", pool / ".sdists" / ".app-1.0.tar.gz.1407.part"]
    for partial in left:
        partial.parent.mkdir(exist_ok=True)
        partial.write_bytes(b"half a file")
    download(project)
    assert [p for p in left if p.exists()] == []


def test_each_target_is_ready_as_soon_as_its_own_files_are_in(index, tmp_path):
    """on_ready hears of each target once, with its lock written and every locked file in its directory."""
    inventory = load_inventory(make_project(tmp_path, index, "app\n") / "inventory.yaml")
    targets = list(inventory.targets.values())
    seen: list[str] = []

    def ready(target):
        _, locked = read_lock(inventory.lock_path(target))
        assert {f.filename for f in locked} <= {p.name for p in inventory.target_dir(target).iterdir()}
        seen.append(target.name)

    download_targets(inventory, targets, on_ready=ready)
    # Which comes first depends on the network; the target this machine runs is only fetched first.
    assert sorted(seen) == sorted(t.name for t in targets)


def test_on_stale_hears_the_targets_resolved_anew_and_none_when_nothing_changed(index, tmp_path):
    """What `inv download` starts the native dry runs on, while the network leaves the cores idle."""
    inventory = load_inventory(make_project(tmp_path, index, "app\n") / "inventory.yaml")
    targets = list(inventory.targets.values())
    heard: list[list[str]] = []
    download_targets(inventory, targets, on_stale=lambda stale: heard.append([t.name for t in stale]))
    download_targets(inventory, targets, on_stale=lambda stale: heard.append([t.name for t in stale]))
    assert heard == [[t.name for t in targets], []]


def test_one_target_finds_out_what_has_no_wheels_for_all(tmp_path, monkeypatch):
    """The wheels-only try that fails on a wheel-less project is paid once a run, not once per target."""
    tries: list[tuple[str, bool]] = []
    real_round = resolve._uv_round

    def counted(resolution, platform, *args, **kwargs):
        result, pins = real_round(resolution, platform, *args, **kwargs)
        tries.append((platform.target.name, pins is not None))
        return result, pins

    monkeypatch.setattr(resolve, "_uv_round", counted)
    with serve_index(build_index(tmp_path / "index", DISTS)) as index:
        index.files_say_nothing = True  # as PyPI's through the proxy here: uv cannot keep what it built
        inventory = load_inventory(make_project(tmp_path, index, "app\n") / "inventory.yaml")
        targets = list(inventory.targets.values())
        download_targets(inventory, targets)
        sdist_fetches = index.file_requests().count("/files/sdistonly-1.0.tar.gz")
    # One failed try finds sdistonly out; every target then resolves in one try, the scout's second included.
    assert sorted(ok for _, ok in tries) == [False] + [True] * len(targets)
    for target in targets:
        assert any(p.name.startswith("sdistonly-1.0-") for p in inventory.target_dir(target).iterdir())
    # Its sdist is fetched once, to be built for every target; every try that takes it from source, the
    # scout's second included, reads the built wheel's metadata. Without it each fetched and built the sdist
    # (4 fetches), and the scout's second try, not waiting for the build, fetched it too (2).
    assert sdist_fetches == 1


def test_a_wheel_less_project_built_on_a_wrong_guess_leaves_nothing_behind(tmp_path):
    """Built at once is the newest sdist; a set that pins an older release gets that one, and no trace of the guess."""
    dists = [
        Dist("app", "1.0", requires=["sdistonly<2"]),
        Dist("sdistonly", "1.0", sdist=True, wheel=False),
        Dist("sdistonly", "2.0", sdist=True, wheel=False),
    ]
    with serve_index(build_index(tmp_path / "index", dists)) as url:
        inventory = load_inventory(make_project(tmp_path, url, "app\n") / "inventory.yaml")
        targets = list(inventory.targets.values())
        download_targets(inventory, targets)
        assert "/files/sdistonly-2.0.tar.gz" in url.file_requests()  # the guess was built
    pool = {p.name for p in (tmp_path / "wheelhouse").rglob("*") if p.is_file() and "sdistonly" in p.name}
    assert pool and not {name for name in pool if "2.0" in name}
    for target in targets:
        _, locked = read_lock(inventory.lock_path(target))
        assert {(f.name, f.version) for f in locked if f.name == "sdistonly"} == {("sdistonly", "1.0")}


def test_a_re_resolution_gives_uv_the_metadata_of_wheels_built_before(downloaded):
    """The wheel built from sdistonly's sdist in the first run speaks for the sdist; once it is gone, nothing does."""
    from devpi_airgap.core.wheelhouse import Wheelhouse
    from devpi_airgap.online.download import _built_before, _built_metadata
    from devpi_airgap.online.resolve import BuiltMetadata

    project, *_ = downloaded
    inventory = load_inventory(project / "inventory.yaml")
    wheelhouse = Wheelhouse(inventory.wheelhouse)
    built = _built_before(inventory, list(inventory.targets.values()))
    found = _built_metadata(wheelhouse, built, {"sdistonly"})
    assert found and all(m == BuiltMetadata("sdistonly", "1.0", (), None, ()) for m in found)
    assert _built_metadata(wheelhouse, built, {"lib"}) == []  # not a project built from its sdist


def test_every_wheel_is_fetched_on_the_resolvers_word_while_it_runs(index, tmp_path, monkeypatch):
    """Each target's wheels are handed over as uv selects them, not only once its try is over."""
    from devpi_airgap.online.early import EarlyWork

    guessed: set[tuple[str, str]] = set()
    real_guess = EarlyWork.guess

    def guess(self, target, name, version, filename, **kwargs):
        guessed.add((target, filename))
        return real_guess(self, target, name, version, filename, **kwargs)

    monkeypatch.setattr(EarlyWork, "guess", guess)
    inventory = load_inventory(make_project(tmp_path, index, "app\n") / "inventory.yaml")
    targets = list(inventory.targets.values())
    download_targets(inventory, targets)
    for target in targets:
        _, locked = read_lock(inventory.lock_path(target))
        wheels = {(target.name, f.filename) for f in locked if not f.built_from}
        assert len(wheels) > 3 and wheels <= guessed


def test_an_index_urls_password_is_on_no_command_line(tmp_path, monkeypatch):
    """uv reads the index from a file of the run's own, for every try and every build: `ps` shows no password."""
    commands: list[str] = []
    real_popen = subprocess.Popen

    class Seen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args, *more, **options):
            commands.append(args if isinstance(args, str) else " ".join(map(str, args)))
            super().__init__(args, *more, **options)

    with serve_index(build_index(tmp_path / "index", DISTS)) as index:
        monkeypatch.setattr(subprocess, "Popen", Seen)
        with_password = index.replace("http://", "http://someone:s3cret-pw@")
        inventory = load_inventory(make_project(tmp_path, with_password, "app\n") / "inventory.yaml")
        download_targets(inventory, list(inventory.targets.values()))
    assert any(" compile " in c for c in commands) and any(" build " in c for c in commands)
    assert [c for c in commands if "s3cret-pw" in c] == []


ONE_TARGET = """
targets:
  win313: {platform: win_amd64, python: "3.13", requirements: [requirements.txt]}
"""


@pytest.fixture
def own_index(tmp_path):
    """An index of the test's own, which it may add releases to."""
    dists = [Dist("lib", "1.0"), Dist("lib", "2.0"), Dist("sdistonly", "1.0", sdist=True, wheel=False)]
    with serve_index(build_index(tmp_path / "index", dists)) as url:
        yield url


def check_row(stdout: str, target: str) -> list[str]:
    """The cells of the target's row in `inv download --check`'s table."""
    row = next(line for line in stdout.splitlines() if line.startswith(f"│ {target} "))
    return [cell.strip() for cell in row.split("│")[1:-1]]


def test_check_on_a_new_project_lists_everything_and_writes_nothing(own_index, tmp_path):
    project = make_project(tmp_path, own_index, "lib<3\nsdistonly\n", ONE_TARGET)
    result = download(project, "--check")
    assert not (project / "wheelhouse").exists() and not (project / "locks").exists()
    assert "win313: no lock yet; 2 packages to lock" in result.stdout and "lib" not in result.stdout
    target, resolved, packages, fetch, builds, link = check_row(result.stdout, "win313")
    assert (resolved, packages, builds, link) == ("anew", "2", "1", "2") and fetch.startswith("2, ")
    assert "1 target(s) would change: win313 (--check: nothing was changed)" in result.stdout


def test_check_says_what_a_download_would_change_and_changes_nothing(own_index, tmp_path):
    project = make_project(tmp_path, own_index, "lib<3\nsdistonly\n", ONE_TARGET)
    download(project)
    assert "no changes" in download(project, "--check").stdout
    add_release(own_index.root, Dist("lib", "2.5"))
    (project / "wheelhouse" / "win313" / "sdistonly-1.0-py3-none-any.whl").unlink()  # removed by hand
    written = _written(project)
    own_index.clear()
    checked = download(project, "--check")
    assert _written(project) == written
    assert own_index.file_requests() == []  # pages only: uv reads sdistonly from the wheel built before
    assert "win313: updated lib 2.0 -> 2.5" in checked.stdout and "sdistonly" not in checked.stdout
    target, resolved, packages, fetch, builds, link = check_row(checked.stdout, "win313")
    assert (resolved, packages, builds, link) == ("anew", "1", "-", "2") and fetch.startswith("1, ")
    # what the check said is what a download then does
    own_index.clear()
    download(project)
    assert own_index.file_requests() == ["/files/lib-2.5-py3-none-any.whl"]
    assert {"lib-2.5-py3-none-any.whl", "sdistonly-1.0-py3-none-any.whl"} <= files(project, "win313")
    assert "no changes" in download(project, "--check").stdout


def test_check_of_a_current_lock_lists_the_files_gone_from_the_pool(own_index, tmp_path):
    project = make_project(tmp_path, own_index, "lib<3\n", ONE_TARGET)
    download(project)
    (project / "wheelhouse" / ".pool" / "lib-2.0-py3-none-any.whl").unlink()  # the target's link still holds it
    own_index.clear()
    for args in ((), ("--locked",)):
        checked = download(project, "--check", *args)
        target, resolved, packages, fetch, builds, link = check_row(checked.stdout, "win313")
        assert (resolved, packages, builds, link) == ("lock current", "-", "-", "-") and fetch.startswith("1, ")
        assert "1 target(s) would change: win313" in checked.stdout
    assert (
        own_index.file_requests() == [] and not (project / "wheelhouse" / ".pool" / "lib-2.0-py3-none-any.whl").exists()
    )


def test_an_index_that_wants_credentials_takes_them_from_netrc_for_uv_and_for_us(tmp_path):
    """A company's mirror behind a login: the credentials live in the user's netrc, not in inventory.yaml."""
    root = build_index(tmp_path / "index", [Dist("lib", "1.0")])
    with serve_index(root) as url:
        url.required_authorization = "Basic " + base64.b64encode(b"builder:t0ken").decode()
        (tmp_path / "project").mkdir()
        project = make_project(tmp_path / "project", url, "lib\n", ONE_TARGET)
        refused = download(project, check=False)
        assert refused.returncode == 5, refused.stdout + refused.stderr
        message = " ".join(refused.stderr.split())
        assert "HTTP 401: it wants credentials" in message and "machine 127.0.0.1 login USER password TOKEN" in message
        netrc = tmp_path / "netrc"
        netrc.write_text("machine 127.0.0.1\n  login builder\n  password t0ken\n")
        netrc.chmod(0o600)
        trusted = download(project, env={**clean_env(project), "NETRC": str(netrc)}, check=False)
        assert trusted.returncode == 0, trusted.stdout + trusted.stderr
        assert files(project, "win313") == {"lib-1.0-py3-none-any.whl"}
    assert "t0ken" not in (project / "inventory.yaml").read_text() + trusted.stdout + trusted.stderr
