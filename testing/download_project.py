"""The download tests' package world: projects whose markers differ per target, and a project using it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testing.environment import clean_env
from testing.fakeindex import Dist
from testing.tasks import REPO

DISTS = [
    Dist(
        "app",
        "1.0",
        requires=[
            'winonly; sys_platform == "win32"',
            'posixonly; sys_platform != "win32"',
            'macdep; sys_platform == "darwin"',
            'newpy; python_version >= "3.13"',
            'oldpy; python_version < "3.12"',
            "natext",
            "sdistonly",
        ],
    ),
    Dist("winonly", "1.0"),
    Dist("posixonly", "1.0"),
    Dist("macdep", "1.0"),
    Dist("newpy", "1.0"),
    Dist("oldpy", "1.0"),
    Dist(
        "natext",
        "1.0",
        tags=[
            "cp313-cp313-win_amd64",
            "cp312-cp312-macosx_11_0_arm64",
            "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        ],
    ),
    Dist("sdistonly", "1.0", sdist=True, wheel=False),
    Dist("lib", "1.0"),
    Dist("lib", "2.0"),
    Dist("lib", "3.0"),
    # The newest release of a compiled project has only a compiled sdist and a wheel for another
    # Python; the target must get the older release's wheel, never a build for this machine.
    Dist("compiled", "1.0", tags=["cp313-cp313-win_amd64", "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"]),
    Dist("compiled", "2.0", tags=["cp314-cp314-win_amd64"], sdist=True, pure_build=False),
    Dist("impure", "1.0", sdist=True, wheel=False, pure_build=False),
    Dist("elsewhere", "1.0", tags=["cp39-cp39-win32"]),
]

TARGETS = """
targets:
  win313: {platform: win_amd64, python: "3.13", requirements: [requirements.txt]}
  mac312: {platform: macosx_11_0_arm64, python: "3.12", requirements: [requirements.txt]}
  lin311: {platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: "3.11", requirements: [requirements.txt]}
"""


def make_project(tmp_path: Path, index_url: str, requirements: str, targets: str = TARGETS) -> Path:
    (tmp_path / "requirements.txt").write_text(requirements)
    (tmp_path / "inventory.yaml").write_text(f"index_url: {index_url}\n{targets}")
    return tmp_path


@contextmanager
def held_download(
    index,
    project: Path,
    *args: str,
    held: str = "file",
    ignore_sighup: bool = False,
    task: str = "download",
    leader: bool = True,
) -> Iterator[subprocess.Popen[str]]:
    """`inv download` in a session of its own, yielded once it asks for a file (held="file"), or for a file's
    metadata, which only uv's resolver asks for (held="metadata"): each now takes 60 s from the index, so the
    run is held where it asked. With leader=False the session's leader is a shell that started the run, as a
    script does, and the run does not lead its process group."""
    index.clear()
    setattr(index, f"{held}_seconds", 60)
    command = [sys.executable, "-m", "invoke", "--search-root", str(REPO), task, "--inventory",
               str(project / "inventory.yaml"), *args]  # fmt: skip
    if not leader:
        command = ["sh", "-c", '"$@"; exit $?', "sh", *command]  # a command after it: sh cannot exec the run
    ignore = (lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if ignore_sighup else None  # as nohup does
    process = subprocess.Popen(command, env=clean_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True, preexec_fn=ignore)  # fmt: skip

    def asked() -> list[str]:
        requests = index.file_requests(include_metadata=True)
        return [p for p in requests if p.endswith(".metadata") == (held == "metadata")]

    try:
        deadline = time.monotonic() + 120
        while not asked() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert asked(), f"the run never asked for a {held}"
        yield process
    finally:
        setattr(index, f"{held}_seconds", 0)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
