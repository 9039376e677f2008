"""Start a real, throw-away devpi-server on loopback (for tests and the benchmark).

The root password reaches ``devpi-init`` through the ``DEVPISERVER_ROOT_PASSWD``
environment variable (devpi-server maps every option ``--foo-bar`` to
``DEVPISERVER_FOO_BAR``), so it never shows up in ``argv``/``ps``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx
import pytest

ROOT_PASSWORD = "root-" + secrets.token_hex(8)


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_devpi_server(
    tmpdir, *, root_password: str = ROOT_PASSWORD, startup_timeout: float = 60.0
) -> tuple[str, Callable[[], None]]:
    """Initialise and start devpi-server under ``tmpdir``; return ``(url, stop)``."""
    base = Path(tmpdir)
    base.mkdir(parents=True, exist_ok=True)
    serverdir = base / "server"
    secretdir = base / "secret"
    secretdir.mkdir(mode=0o700, exist_ok=True)
    secretfile = secretdir / "secret"
    secretfile.write_bytes(secrets.token_urlsafe(48).encode())
    secretfile.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVPISERVER_")}
    subprocess.run(
        [_bin("devpi-init"), "--no-root-pypi", "--serverdir", str(serverdir)],
        env={**env, "DEVPISERVER_ROOT_PASSWD": root_password},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(base / "devpi-server.log", "wb")
    proc = subprocess.Popen(
        [
            _bin("devpi-server"),
            "--serverdir",
            str(serverdir),
            "--secretfile",
            str(secretfile),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()

    deadline = time.monotonic() + startup_timeout
    while True:
        if proc.poll() is not None:
            stop()
            raise RuntimeError(f"devpi-server exited with {proc.returncode}; see {base / 'devpi-server.log'}")
        try:
            r = httpx.get(f"{url}/+api", headers={"Accept": "application/json"}, timeout=2)
            if r.status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"devpi-server did not answer on {url} within {startup_timeout}s")
        time.sleep(0.2)
    return url, stop


@pytest.fixture(scope="module")
def devpi_server(tmp_path_factory):
    """A running devpi-server: yields ``(url, root_password)``."""
    url, stop = start_devpi_server(tmp_path_factory.mktemp("devpi"))
    try:
        yield url, ROOT_PASSWORD
    finally:
        stop()
