"""The devpi-server unit is hardened (exposure <= 2.0) and still fully works."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from devpi_airgap.offline.systemd_unit import MAX_EXPOSURE, exposure_score, parse_exposure, render_unit

pytest_plugins = ["testing.offline_host"]

UNIT_ARGS = dict(
    venv="/opt/devpi/venv", serverdir="/var/lib/devpi/server", secretfile="/etc/devpi/secret", host="0.0.0.0", port=3141
)


def test_render_unit_runs_offline_restricted_server():
    text = render_unit(**UNIT_ARGS, extra_args=["--threads", "8"])
    execstart = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert execstart == (
        "ExecStart=/opt/devpi/venv/bin/devpi-server --serverdir /var/lib/devpi/server "
        "--secretfile /etc/devpi/secret --host 0.0.0.0 --port 3141 --offline-mode "
        "--restrict-modify root --threads 8"
    )
    assert "\nUser=devpi\n" in text
    assert "\nRestart=on-failure\n" in text
    assert "\nReadWritePaths=/var/lib/devpi/server\n" in text


@pytest.mark.parametrize("bad", [dict(venv="opt/venv"), dict(serverdir="rel"), dict(port=0), dict(serverdir="/a;b")])
def test_render_unit_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        render_unit(**{**UNIT_ARGS, **bad})


def _require_systemd_analyze():
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze missing (a skip in CI is a failure)", pytrace=False)
        pytest.skip("systemd-analyze missing")


def test_exposure_offline_at_most_2():
    _require_systemd_analyze()
    score = exposure_score(render_unit(**UNIT_ARGS))
    assert score <= MAX_EXPOSURE


def test_replica_unit_replicates_and_stays_hardened():
    _require_systemd_analyze()
    text = render_unit(**UNIT_ARGS, offline_mode=False, extra_args=["--primary-url", "http://10.0.0.5:3141"])
    assert "--offline-mode" not in text and "--primary-url http://10.0.0.5:3141" in text
    assert exposure_score(text) <= MAX_EXPOSURE


def test_exposure_detects_an_unhardened_unit():
    _require_systemd_analyze()
    plain = "[Service]\nExecStart=/bin/true\n"
    assert exposure_score(plain) > 5


# --------------------------------------------------------------------------
# the real thing: devpi-server under this unit on the offline host
# --------------------------------------------------------------------------


def _tiny_wheel(dest: Path, name="airgap_probe", version="0.1") -> Path:
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    whl = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return whl


@pytest.fixture(scope="module")
def devpi_host():
    from testing.devpi_on_offline_host import install_devpi
    from testing.offline_host import OfflineHost, require_offline_host_support

    require_offline_host_support()
    password = secrets.token_urlsafe(18)
    with OfflineHost() as host:
        install_devpi(host, password)
        yield host, password


def _wait_status(url: str, host, timeout=60) -> dict:
    from testing.devpi_on_offline_host import service_debug

    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.get(f"{url}/+status", headers={"Accept": "application/json"}, timeout=3)
            if r.status_code == 200:
                return r.json()["result"]
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"devpi-server never answered on {url}\n{service_debug(host)}")
        time.sleep(0.5)


@pytest.mark.offline_host
def test_devpi_server_runs_hardened_on_offline_host(devpi_host, tmp_path):
    from testing.devpi_on_offline_host import PORT, devpi_client

    host, password = devpi_host
    url = f"http://{host.address}:{PORT}"
    status = _wait_status(url, host)
    assert status["serverdir"] == "/var/lib/devpi/server"

    pid = host.run("systemctl show -p MainPID --value devpi.service", check=True).stdout.strip()
    assert host.run(f"stat -c %U /proc/{pid}", check=True).stdout.strip() == "devpi"
    inside = parse_exposure(host.run("systemd-analyze security --no-pager devpi.service").stdout)
    assert inside <= MAX_EXPOSURE

    # login (argon2 under MemoryDenyWriteExecute), index creation, upload
    cd = tmp_path / "client"
    for args in (
        ("use", url),
        ("login", "root", "--password", password),
        ("index", "-c", "root/dev", "bases="),
        ("use", "root/dev"),
    ):
        r = devpi_client(cd, *args)
        assert r.returncode == 0, f"devpi {args[0]}: {r.stdout}{r.stderr}"
    whl = _tiny_wheel(tmp_path)
    r = devpi_client(cd, "upload", str(whl))
    assert r.returncode == 0, r.stdout + r.stderr
    simple = f"{url}/root/dev/+simple/airgap-probe/"
    assert whl.name in httpx.get(simple, timeout=10).text

    # a restart (and thus a fresh sandbox) keeps users, indexes and files
    host.run("systemctl restart devpi.service", check=True)
    _wait_status(url, host)
    r = httpx.get(simple, timeout=10)
    assert r.status_code == 200 and whl.name in r.text
    link = f"{url}/root/dev/+f/"
    assert link in r.text or "../../+f/" in r.text
    r = devpi_client(cd, "login", "root", "--password", password)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.offline_host
def test_devpi_sandbox_blocks_writes_outside_serverdir(devpi_host):
    host, _ = devpi_host
    # Run a probe with exactly the service's sandbox: same unit properties.
    probe = (
        "systemd-run --wait --pipe --quiet --property=User=devpi "
        "$(systemctl cat devpi.service | sed -n "
        "'/^\\(ProtectSystem\\|ReadWritePaths\\|PrivateTmp\\|ProtectHome\\|NoNewPrivileges\\)=/s/^/-p /p') "
        "/bin/sh -c 'touch /var/lib/devpi/server/ok && rm /var/lib/devpi/server/ok "
        "&& ! touch /etc/devpi/x 2>/dev/null && ! touch /opt/devpi/x 2>/dev/null && echo sandboxed'"
    )
    r = host.run(probe)
    assert r.stdout.strip() == "sandboxed", r.stdout + r.stderr
