"""fab deploy, then a pip install from the index, on the Debian releases offline servers still run.

Debian 12 (bookworm, Python 3.11) is the host of test_deploy.py; here Debian
11 (bullseye, Python 3.9) and 13 (trixie, Python 3.13), each booted in its own
network namespace with no route out, each with a wheelhouse for its own
Python, downloaded as a user would: a target per server.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devpi_airgap.offline.programs import facts as facts_program
from testing.deploy_host import fab
from testing.environment import clean_env, pip_install
from testing.offline_host import OfflineHost, assert_no_route_out, require_offline_host_support
from testing.tasks import run_task

pytestmark = [pytest.mark.offline_host, pytest.mark.network]

RELEASES = {"bullseye": "3.9", "trixie": "3.13"}
# Debian 11's venvs get pip 20.3.4, newer than the 20.2.3 that Python 3.9 came with: it sees manylinux_2_28
# wheels (argon2-cffi-bindings has no other for Python 3.9), and the inventory says so.
OLDEST_PIP = {"bullseye": ", oldest_pip: '20.3'", "trixie": ""}


@pytest.mark.parametrize("suite", RELEASES)
def test_deploy_and_install_from_the_index(suite, tmp_path):
    require_offline_host_support()
    python = RELEASES[suite]
    (tmp_path / "server.txt").write_text("packaging\n")
    (tmp_path / "inventory.yaml").write_text(
        "targets:\n"
        f"  server: {{platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: '{python}', "
        f"requirements: [server.txt]{OLDEST_PIP[suite]}}}\n"
        "servers:\n  devpi-host: {target: server}\n"
    )
    run_task("download", "--inventory", str(tmp_path / "inventory.yaml"), env=clean_env(tmp_path), check=True)
    with OfflineHost(suite=suite) as host:
        assert_no_route_out(host)
        assert host.run("python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'").stdout.strip() == python
        # the pip the server's facts report is the one a new venv there gets, which devpi is installed with
        facts = json.loads(host.run(["python3", "-c", Path(facts_program.__file__).read_text()], check=True).stdout)
        venv_pip = host.run("python3 -m venv /tmp/v && /tmp/v/bin/pip --version", check=True).stdout.split()[1]
        assert facts["pip"] == venv_pip
        deployed = fab(tmp_path, host, "deploy")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        url = f"http://{host.address}:3141/myuser/myindex/+simple/"
        assert url in deployed.stdout
        installed = pip_install(tmp_path, url, "packaging", pip_args=("--trusted-host", host.address))
        assert subprocess.run([str(installed), "-c", "import packaging"]).returncode == 0
        again = fab(tmp_path, host, "deploy")
        assert again.returncode == 0 and "no changes" in again.stdout, again.stdout + again.stderr
