"""inv refresh, the scheduled run: what --check says it would do, and what its log says when it is stopped."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from testing.download_project import DISTS, held_download, make_project
from testing.environment import clean_env
from testing.fakeindex import Dist, add_release, build_index, serve_index
from testing.signing import manifest_of
from testing.tasks import run_task


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = build_index(tmp_path_factory.mktemp("index"), DISTS)
    with serve_index(root) as url:
        yield url


@pytest.mark.skipif(os.name != "posix", reason="Windows sends no SIGTERM")
def test_a_refresh_stopped_by_its_scheduler_says_so_in_its_log(index, tmp_path):
    """A scheduled refresh that runs past its time is stopped with SIGTERM; its log is what the admin reads."""
    project = make_project(tmp_path, index, "app\nlib<3\n")
    with held_download(index, project, held="metadata", task="refresh") as process:
        os.kill(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130 and "stopped by SIGTERM" in stderr, stderr
    last = (project / "wheelhouse" / "refresh.log").read_text().splitlines()[-1]
    assert "refresh stopped (exit 130)" in last


ONE_TARGET = 'targets:\n  win313: {platform: win_amd64, python: "3.13", requirements: [requirements.txt]}\n'


def test_refresh_check_shows_what_a_refresh_would_fetch_and_bundle_and_changes_nothing(tmp_path):
    root = build_index(tmp_path / "index", [Dist("app", "1.0", requires=["lib"]), Dist("lib", "1.0")])
    with serve_index(root) as url:
        (tmp_path / "project").mkdir()
        project = make_project(tmp_path / "project", url, "app\n", ONE_TARGET)
        env = clean_env(project)

        def refresh(*args: str):
            return run_task("refresh", "--inventory", str(project / "inventory.yaml"), *args, env=env)

        assert refresh().returncode == 0
        add_release(root, Dist("lib", "1.1"))
        before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file() and "uv-cache" not in p.parts}
        check = refresh("--check")
        said = " ".join(check.stdout.split())
        assert check.returncode == 0, check.stderr
        assert "win313: updated lib 1.0 -> 1.1" in said and "its bundle would carry 1 file," in said
        after = {p: p.read_bytes() for p in project.rglob("*") if p.is_file() and "uv-cache" not in p.parts}
        assert after == before  # no lock, file, bundle or log line

        ran = refresh()
        assert ran.returncode == 0, ran.stderr
        carried = manifest_of(Path(ran.stdout.strip().splitlines()[-1]))["files"]
        assert [f["name"] for f in carried] == ["lib-1.1-py3-none-any.whl"]  # the one file the check named
        again = " ".join(refresh("--check").stdout.split())
        assert "no changes" in again and "its bundle: nothing new" in again
