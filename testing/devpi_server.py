"""Start a real, throw-away devpi-server on loopback (for tests and the benchmark).

The root password reaches ``devpi-init`` through the ``DEVPISERVER_ROOT_PASSWD``
environment variable (devpi-server maps every option ``--foo-bar`` to
``DEVPISERVER_FOO_BAR``), so it never shows up in ``argv``/``ps``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import httpx
import pytest

from devpi_airgap.core.files import sha256_file
from devpi_airgap.offline.devpi_api import DevpiClient, seed_forms
from devpi_airgap.offline.programs import seed_index

ROOT_PASSWORD = "root-" + secrets.token_hex(8)

# How long devpi-web's search may take to show what was uploaded. It indexes in the background, and both of
# devpi's background steps retry on their own clock: the event thread waits 5 s when it sees a file's record
# before the file (in 6 of 20 runs of test_seed_index's uploads here), and the indexer retries a failed commit
# after 11 s, then 1.5 times longer each time. A wait of 90 s once ran out in CI.
SEARCH_INDEX_WAIT = 240.0


def indexing_state(url: str) -> dict:
    """devpi's own account of its background work: its serial, its event serial and devpi-web's index queues."""
    with DevpiClient(url, timeout=10) as client:
        status = client.status()
    state = {key: status[key] for key in ("serial", "event-serial")}
    state.update((name, value) for name, _, value in status["metrics"] if name.startswith("devpi_web_whoosh_index"))
    return state


def at_rest(state: dict) -> bool:
    """The event thread has reached the last commit, and devpi-web has nothing queued to index."""
    queues = [value for name, value in state.items() if name.startswith("devpi_web_whoosh_index")]
    return state["event-serial"] == state["serial"] and not any(queues)


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_devpi_server(
    tmpdir,
    *,
    root_password: str = ROOT_PASSWORD,
    startup_timeout: float = 60.0,
    seed: Callable[[Path], None] | None = None,
    args: tuple[str, ...] = (),
    secret_of=None,
) -> tuple[str, Callable[[], None]]:
    """Initialise and start devpi-server under ``tmpdir``; return ``(url, stop)``.

    `seed(serverdir)` makes the server directory instead of devpi-init; `args` go to devpi-server;
    `secret_of` is the tmpdir of a server whose secret to share, as a replica must with its primary.
    """
    base = Path(tmpdir)
    base.mkdir(parents=True, exist_ok=True)
    serverdir = base / "server"
    secretdir = base / "secret"
    secretdir.mkdir(mode=0o700, exist_ok=True)
    secretfile = secretdir / "secret"
    shared = Path(secret_of) / "secret" / "secret" if secret_of else None
    secretfile.write_bytes(shared.read_bytes() if shared else secrets.token_urlsafe(48).encode())
    secretfile.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVPISERVER_")}
    if seed:
        seed(serverdir)
    else:
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
            *args,
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


def seed_server_dir(
    serverdir: Path,
    wheels: list[Path],
    user: str,
    index: str,
    user_password: str,
    *,
    forms: dict | None = None,
) -> subprocess.CompletedProcess:
    """What `SeedServer` does on a host, here: the forms beside the wheels, then `programs.seed_index`.

    `forms` stands in for the ones taken from `wheels`, to test a file that changed after its form was taken.
    """
    export = serverdir.parent / "seed"
    shutil.rmtree(export, ignore_errors=True)
    export.mkdir(parents=True)
    for wheel in wheels:
        shutil.copyfile(wheel, export / wheel.name)
    (export / seed_index.FORMS).write_text(json.dumps(forms or seed_forms(wheels, sha256_file)))
    try:
        return subprocess.run(
            [sys.executable, seed_index.__file__, str(serverdir), str(export), user, index],
            input=json.dumps({"root_password": ROOT_PASSWORD, "user_password": user_password}),
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(export)


@pytest.fixture(scope="module")
def devpi_server(tmp_path_factory):
    """A running devpi-server: yields ``(url, root_password)``."""
    url, stop = start_devpi_server(tmp_path_factory.mktemp("devpi"))
    try:
        yield url, ROOT_PASSWORD
    finally:
        stop()


@contextmanager
def user_client(url: str, root_password: str, user: str, password: str) -> Iterator[DevpiClient]:
    """A client logged in as `user`, whom root creates first unless the server has them already."""
    with DevpiClient(url) as client:
        client.login("root", root_password)
        client.ensure_user(user, password)
        client.login(user, password)
        yield client
