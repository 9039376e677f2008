"""Helpers for tests that deploy to the offline test host: the fab command line and the index's files."""

from __future__ import annotations

from pathlib import Path

from devpi_airgap.offline.devpi_api import DevpiClient
from testing.environment import clean_env, secrets_env
from testing.offline_host import OfflineHost
from testing.tasks import run_task


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fab(project: Path, host: OfflineHost, *args: str, alias: str = "devpi-host", env=None):
    return run_task(
        "-S",
        str(host.ssh_config_path),
        "-H",
        alias,
        *args,
        "--inventory",
        str(project / "inventory.yaml"),
        program="fabric",
        env=env or secrets_env(project),
    )


def index_files(host: OfflineHost) -> dict[str, str]:
    with DevpiClient(f"http://{host.address}:3141") as client:
        return client.index_files("myuser", "myindex")


def server_project(root: Path, inventory: str) -> Path:
    """A project whose `server` target (packaging, and devpi itself) is downloaded, ready to deploy."""
    (root / "server.txt").write_text("packaging\n")
    (root / "inventory.yaml").write_text(inventory)
    run_task(
        "download", "--inventory", str(root / "inventory.yaml"), "--target", "server", env=clean_env(root), check=True
    )
    return root
