"""Environments blind to this machine's own pip, uv and devpi-airgap settings, and a user's pip install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT_PASSWORD = "root-Secret-4711"
USER_PASSWORD = "user-Secret-0815"


def clean_env(project: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "DEVPI_AIRGAP_"))}
    env.update(UV_CACHE_DIR=str(project / "uv-cache"), DEVPI_AIRGAP_SECRETS=str(project / "no-secrets.yaml"), **extra)
    return env


def secrets_env(project: Path) -> dict:
    return clean_env(project, DEVPI_AIRGAP_ROOT_PASSWORD=ROOT_PASSWORD, DEVPI_AIRGAP_USER_PASSWORD=USER_PASSWORD)


def pip_install(tmp_path: Path, index_url: str, *packages: str, pip_args=()) -> Path:
    """Install with pip, as a user on the closed network would, into a fresh venv; returns its python."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # requests lets these variables override pip's --cert; a user with them set would have to unset them too.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PIP_") and k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-cache-dir",
            "--index-url",
            index_url,
            *pip_args,
            *packages,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert install.returncode == 0, install.stderr
    return venv / "bin" / "python"
