"""fab deploy, then a pip install from the index, on the Debian releases offline servers still run.

Debian 12 (bookworm, Python 3.11) is the host of test_deploy.py; here Debian
11 (bullseye, Python 3.9) and 13 (trixie, Python 3.13), each booted in its own
network namespace with no route out, each with a wheelhouse for its own
Python, downloaded as a user would: a target per server.
"""

from __future__ import annotations

import subprocess

import pytest

from testing.deploy_host import fab
from testing.environment import clean_env, pip_install
from testing.offline_host import OfflineHost, assert_no_route_out, require_offline_host_support
from testing.tasks import run_task

pytestmark = [pytest.mark.offline_host, pytest.mark.network]

RELEASES = {"bullseye": "3.9", "trixie": "3.13"}


@pytest.mark.parametrize("suite", RELEASES)
def test_deploy_and_install_from_the_index(suite, tmp_path):
    require_offline_host_support()
    python = RELEASES[suite]
    (tmp_path / "server.txt").write_text("packaging\n")
    (tmp_path / "inventory.yaml").write_text(
        "targets:\n"
        f"  server: {{platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: '{python}', "
        "requirements: [server.txt]}\n"
        "servers:\n  devpi-host: {target: server}\n"
    )
    run_task("download", "--inventory", str(tmp_path / "inventory.yaml"), env=clean_env(tmp_path), check=True)
    with OfflineHost(suite=suite) as host:
        assert_no_route_out(host)
        assert host.run("python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'").stdout.strip() == python
        deployed = fab(tmp_path, host, "deploy")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        url = f"http://{host.address}:3141/myuser/myindex/+simple/"
        assert url in deployed.stdout
        installed = pip_install(tmp_path, url, "packaging", pip_args=("--trusted-host", host.address))
        assert subprocess.run([str(installed), "-c", "import packaging"]).returncode == 0
        again = fab(tmp_path, host, "deploy")
        assert again.returncode == 0 and "no changes" in again.stdout, again.stdout + again.stderr
