"""DevpiClient / upload_missing against a real devpi-server on loopback."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devpi_airgap.offline.devpi_api import DevpiClient, DevpiError, upload_missing
from testing.devpi_server import devpi_server, user_client  # noqa: F401  (devpi_server: a pytest fixture)
from testing.wheels import make_wheel

USER = "airgap"
PASSWORD = "user-pw-1234"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def client(devpi_server):  # noqa: F811
    with user_client(*devpi_server, USER, PASSWORD) as c:
        yield c


def test_status(devpi_server):  # noqa: F811
    with DevpiClient(devpi_server[0]) as c:
        assert "devpi-server" in c.status()["versioninfo"]


def test_status_rejects_non_devpi(tmp_path):
    with DevpiClient("http://127.0.0.1:9") as c, pytest.raises(DevpiError):
        c.status()


def test_bad_login_does_not_leak_password(devpi_server):  # noqa: F811
    with DevpiClient(devpi_server[0]) as c, pytest.raises(DevpiError) as excinfo:
        c.login("root", "wrong-secret-xyz")
    assert excinfo.value.status == 401
    assert "wrong-secret-xyz" not in str(excinfo.value)
    assert "401" in str(excinfo.value)


def test_a_password_is_told_apart_and_set_anew(devpi_server):  # noqa: F811
    url, root_password = devpi_server
    with DevpiClient(url) as c:
        c.login("root", root_password)
        c.ensure_user("rotated", "pw-old-1")
        assert c.logs_in("rotated", "pw-old-1") and not c.logs_in("rotated", "pw-new-2")
        c.set_password("rotated", "pw-new-2")  # still as root: logs_in did not log this client in
        assert c.logs_in("rotated", "pw-new-2") and not c.logs_in("rotated", "pw-old-1")
        assert c.logs_in("root", root_password) and not c.logs_in("root", "not-the-root-password")


def test_ensure_user_and_index_idempotent(devpi_server):  # noqa: F811
    url, root_password = devpi_server
    with DevpiClient(url) as c:
        c.login("root", root_password)
        assert c.ensure_user("idem", "pw-idem-1") is True
        assert c.ensure_user("idem", "pw-idem-1") is False
        c.login("idem", "pw-idem-1")
        assert c.ensure_index("idem", "prod") is True
        assert c.ensure_index("idem", "prod") is False
        # differing config is brought in line, then stable again
        assert c.ensure_index("idem", "prod", volatile=True) is True
        assert c.ensure_index("idem", "prod", volatile=True) is False
        assert c.ensure_index("idem", "base") is True
        assert c.ensure_index("idem", "prod", bases=["idem/base"], volatile=True) is True
        assert c.ensure_index("idem", "prod", bases=["idem/base"], volatile=True) is False
        assert c.ensure_index("idem", "prod") is True
        assert c.ensure_index("idem", "prod") is False


def test_upload_index_files_and_resync(client, tmp_path):
    client.ensure_index(USER, "sync")
    wheels = [make_wheel(tmp_path, f"airgap_demo{i}", "1.0", str(i)) for i in range(4)]
    seen = []
    result = upload_missing(client, USER, "sync", wheels, progress=lambda f, n: seen.append((f, n)))
    assert sorted(result.uploaded) == sorted(w.name for w in wheels)
    assert result.skipped == [] and result.conflicts == []
    assert result.bytes_uploaded == sum(w.stat().st_size for w in wheels)
    assert sorted(seen) == sorted((w.name, w.stat().st_size) for w in wheels)

    assert client.index_files(USER, "sync") == {w.name: sha256(w) for w in wheels}

    seen.clear()
    again = upload_missing(client, USER, "sync", wheels, progress=lambda f, n: seen.append((f, n)))
    assert again.uploaded == [] and again.conflicts == []
    assert sorted(again.skipped) == sorted(w.name for w in wheels)
    assert again.bytes_uploaded == 0
    # the progress callback still covers every file, so a byte bar completes
    assert sorted(seen) == sorted((w.name, w.stat().st_size) for w in wheels)


def test_conflict_reported_others_still_upload(client, tmp_path):
    client.ensure_index(USER, "conflict")
    original = make_wheel(tmp_path / "a", "airgap_clash", "1.0", "original")
    upload_missing(client, USER, "conflict", [original])

    changed = make_wheel(tmp_path / "b", "airgap_clash", "1.0", "changed")
    assert sha256(changed) != sha256(original)
    others = [make_wheel(tmp_path / "b", f"airgap_other{i}", "2.0") for i in range(3)]
    result = upload_missing(client, USER, "conflict", [changed, *others])
    assert [name for name, _ in result.conflicts] == [changed.name]
    assert sorted(result.uploaded) == sorted(o.name for o in others)
    # the server copy is untouched
    assert client.index_files(USER, "conflict")[original.name] == sha256(original)


def test_non_volatile_index_refuses_overwrite(client, tmp_path):
    client.ensure_index(USER, "frozen", volatile=False)
    first = make_wheel(tmp_path / "a", "airgap_frozen", "1.0", "first")
    second = make_wheel(tmp_path / "b", "airgap_frozen", "1.0", "second")
    client.upload_file(USER, "frozen", first)
    client.upload_file(USER, "frozen", first)  # identical re-upload is accepted
    with pytest.raises(DevpiError) as excinfo:
        client.upload_file(USER, "frozen", second)
    assert excinfo.value.status == 409
    assert "non-volatile" in str(excinfo.value)
    assert client.index_files(USER, "frozen") == {first.name: sha256(first)}


def test_server_409_is_a_conflict(client, tmp_path):
    """Two different files with one name in one batch: the server refuses the second."""
    client.ensure_index(USER, "race", volatile=False)
    a = make_wheel(tmp_path / "a", "airgap_race", "1.0", "a")
    b = make_wheel(tmp_path / "b", "airgap_race", "1.0", "b")
    result = upload_missing(client, USER, "race", [a, b], workers=1)
    assert result.uploaded == [a.name]
    assert len(result.conflicts) == 1 and result.conflicts[0][0] == b.name
    assert "409" in result.conflicts[0][1]


def test_pip_installs_from_index(client, tmp_path):
    client.ensure_index(USER, "pip")
    wheel = make_wheel(tmp_path / "w", "airgap_pipdemo", "3.1", "installed-from-devpi")
    upload_missing(client, USER, "pip", [wheel])

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--disable-pip-version-check",
            "--no-cache-dir",
            "--index-url",
            f"{client.base_url}/{USER}/pip/+simple/",
            "airgap_pipdemo==3.1",
        ],
        env=env,
        check=True,
    )
    out = subprocess.run(
        [str(py), "-c", "import airgap_pipdemo; print(airgap_pipdemo.VALUE)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip() == "installed-from-devpi"
