"""What `fab client-config` gives users to paste, tried with real uv where it matters."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

from devpi_airgap.core.inventory import load_inventory
from devpi_airgap.core.isolation import isolated_env, uv_binary
from devpi_airgap.offline.client_config import client_config
from testing.wheels import make_wheel

INVENTORY = """\
targets:
  win313: {platform: win_amd64, python: "3.13", requirements: [user.txt]}
  server: {platform: manylinux_2_28_x86_64, python: "3.11", requirements: [none.txt]}
servers:
  devpi-host: {target: server}
"""


def _inventory(tmp_path: Path):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "user.txt").write_text("app\n")
    (tmp_path / "none.txt").write_text("# this server's target carries devpi alone\n")
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    return load_inventory(tmp_path / "inventory.yaml")


def test_uv_is_told_the_platforms_of_the_targets_users_install_on(tmp_path):
    inventory = _inventory(tmp_path)
    config = client_config(SimpleNamespace(address="10.0.0.5"), inventory.server("devpi-host"), inventory)
    assert '[tool.uv]\npython-downloads = "never"\nenvironments = [\n' in config
    assert (
        "    \"sys_platform == 'win32' and platform_machine == 'AMD64' and python_version == '3.13'\",  # win313\n"
        in config
    )
    assert "# server" not in config  # devpi's own target: no user installs from it
    assert "index-url = http://10.0.0.5:3141/myuser/myindex/+simple/" in config


def test_with_those_environments_uv_locks_a_project_from_a_windows_only_index(tmp_path):
    """Without them, uv's universal resolution wants what only Linux needs, which the index does not hold."""
    inventory = _inventory(tmp_path / "ops")
    config = client_config(SimpleNamespace(address="10.0.0.5"), inventory.server("devpi-host"), inventory)
    wheels = tmp_path / "index"
    make_wheel(wheels, "app", "1.0", headers=[("Requires-Dist", 'posixdep; sys_platform != "win32"')])
    project = tmp_path / "project"
    project.mkdir()
    base = '[project]\nname = "analysis"\nversion = "0.1"\nrequires-python = ">=3.10"\ndependencies = ["app"]\n'
    lock = [uv_binary(), "lock", "--offline", "--no-index", "--find-links", str(wheels), "--directory", str(project)]

    (project / "pyproject.toml").write_text(base)
    universal = subprocess.run(lock, capture_output=True, text=True, env=isolated_env())
    assert universal.returncode != 0 and "posixdep" in universal.stderr

    pasted = config[config.index("[tool.uv]") : config.index("# one-off")]
    (project / "pyproject.toml").write_text(base + "\n" + pasted)
    narrowed = subprocess.run(lock, capture_output=True, text=True, env=isolated_env())
    assert narrowed.returncode == 0, narrowed.stderr
    assert 'name = "app"' in (project / "uv.lock").read_text() and "posixdep" not in (project / "uv.lock").read_text()
