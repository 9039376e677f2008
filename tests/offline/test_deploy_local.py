"""`fab deploy` with no -H, run on the offline server itself, from a carried wheelhouse.

The host has no network: devpi-airgap's own dependencies cross the gap as a
second target's wheelhouse, as a user would carry them.
"""

from __future__ import annotations

import os
import shlex
import shutil

import pytest
import tomllib

from testing.offline_host import OfflineHost, require_offline_host_support
from testing.tasks import REPO, run_task

pytestmark = [pytest.mark.offline_host, pytest.mark.network]

PLATFORMS = "[manylinux_2_28_x86_64, manylinux2014_x86_64]"
INVENTORY = f"""
targets:
  server: {{platform: {PLATFORMS}, python: "3.11", requirements: [server.txt]}}
  tool: {{platform: {PLATFORMS}, python: "3.11", requirements: [tool.txt]}}
servers:
  devpi-host: {{target: server}}
"""
# What devpi-airgap itself needs, exactly as pyproject.toml declares it, so this list cannot fall behind.
TOOL_REQUIREMENTS = "".join(
    f"{dep}\n" for dep in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
)


@pytest.fixture(scope="module")
def carried(tmp_path_factory):
    """What crosses the gap: the repository's code, the inventory and its wheelhouses."""
    root = tmp_path_factory.mktemp("carried")
    project = root / "project"
    project.mkdir()
    (project / "server.txt").write_text("packaging\n")
    (project / "tool.txt").write_text(TOOL_REQUIREMENTS)
    (project / "inventory.yaml").write_text(INVENTORY)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    run_task("download", "--inventory", str(project / "inventory.yaml"), env=env, check=True)
    shutil.rmtree(project / "wheelhouse" / ".pool")
    code = root / "code"
    shutil.copytree(REPO / "devpi_airgap", code / "devpi_airgap", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "fabfile.py", code / "fabfile.py")
    return root


def test_deploy_on_the_server_itself(carried):
    require_offline_host_support()
    with OfflineHost() as host:
        host.put(carried / "project", "/root/project")
        host.put(carried / "code", "/root/code")
        host.run(
            "python3 -m venv /opt/tool && PIP_CONFIG_FILE=/dev/null /opt/tool/bin/pip install -q --no-index "
            f"--find-links /root/project/wheelhouse/tool {' '.join(map(shlex.quote, TOOL_REQUIREMENTS.split()))}",
            check=True,
            timeout=600,
        )
        # Secrets from a 0600 file: an environment variable on an ssh command line would show in ps.
        host.run(
            "install -d -m 700 /root/.config/devpi-airgap && umask 077 && cat > /root/.config/devpi-airgap/secrets.yaml",
            input="devpi-host:\n  root_password: local-root-pw\n  user_password: local-user-pw\n",
            check=True,
        )
        fab = "cd /root/project && PYTHONPATH=/root/code /opt/tool/bin/fab -r /root/code deploy"
        first = host.run(fab, timeout=600)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "/myuser/myindex/+simple/" in first.stdout
        assert host.run("systemctl is-active devpi.service").stdout.strip() == "active"
        second = host.run(fab, timeout=300)
        assert second.returncode == 0 and "no changes" in second.stdout, second.stderr
        listing = host.run(
            'python3 -c "import urllib.request; print(urllib.request.urlopen('
            "'http://127.0.0.1:3141/myuser/myindex/+simple/packaging/').read().decode())\""
        ).stdout
        assert "packaging-" in listing
