"""The cases from the field report, against the real public index."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from testing.tasks import run_task

pytestmark = pytest.mark.network

INVENTORY = """
targets:
  win313: {platform: win_amd64, python: "3.13", requirements: [ipykernel.txt]}
  mac312: {platform: macosx_11_0_arm64, python: "3.12", requirements: [ipykernel.txt]}
  server: {platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: "3.11", requirements: [server.txt]}
servers:
  devpi-host: {target: server}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    (root / "ipykernel.txt").write_text("ipykernel\n")
    (root / "server.txt").write_text("packaging\n")
    (root / "inventory.yaml").write_text(INVENTORY)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    run_task("download", "--inventory", str(root / "inventory.yaml"), env=env, check=True)
    return root


def names(project: Path, target: str) -> set[str]:
    return {p.name.split("-")[0].lower() for p in (project / "wheelhouse" / target).iterdir()}


def test_windows_ipykernel_has_colorama_and_no_pexpect(project):
    found = names(project, "win313")
    assert {"ipykernel", "ipython", "colorama"} <= found
    assert not {"pexpect", "ptyprocess", "appnope"} & found


def test_mac_arm64_ipykernel_has_appnope(project):
    found = names(project, "mac312")
    assert {"ipykernel", "appnope", "pexpect"} <= found
    assert "colorama" not in found
    for wheel in (project / "wheelhouse" / "mac312").iterdir():
        platforms = {tag.platform for tag in parse_wheel_filename(wheel.name)[3]}
        assert platforms == {"any"} or all(
            p.startswith("macosx_") and p.endswith(("arm64", "universal2")) for p in platforms
        ), wheel.name


def test_server_target_installs_devpi_with_no_index(project, tmp_path):
    wheels = project / "wheelhouse" / "server"
    assert {"devpi_server", "devpi_web", "devpi_client", "pyramid_chameleon"} <= names(project, "server")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull)
    env.pop("PIP_FIND_LINKS", None)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            str(wheels),
            "devpi-server",
            "devpi-web",
            "devpi-client",
        ],
        check=True,
        env=env,
    )
    version = subprocess.run([str(venv / "bin" / "devpi-server"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip()[0].isdigit()


def test_the_last_devpi_server_named_for_each_dropped_python_matches_the_index():
    """preflight names these releases to users of old servers; a wrong one would send them to a dead end."""
    import re

    import httpx
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    from devpi_airgap.offline.preflight import LAST_DEVPI_SERVER

    page = httpx.get(
        "https://pypi.org/simple/devpi-server/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=60,
        follow_redirects=True,
    ).json()
    requires: dict[Version, set[str]] = {}
    for file in page["files"]:
        version = Version(re.match(r"devpi[-_]server-(.+?)(?:-|\.tar\.gz$|\.zip$)", file["filename"]).group(1))
        if not file.get("yanked") and not version.is_prerelease:
            requires.setdefault(version, set()).add(file.get("requires-python") or "")
    for python, last in LAST_DEVPI_SERVER.items():
        admitted = [v for v, specs in requires.items() if all(python in SpecifierSet(s) for s in specs)]
        assert str(max(admitted)) == last, python
