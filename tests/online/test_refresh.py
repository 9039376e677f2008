"""inv refresh, the scheduled run: what its log says when it is stopped."""

from __future__ import annotations

import os
import signal

import pytest

from testing.download_project import DISTS, held_download, make_project
from testing.fakeindex import build_index, serve_index


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
