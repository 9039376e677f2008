"""The offline test host boots a real systemd, answers ssh, and has no way out."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from testing.offline_host import assert_no_route_out, find_debian_mirror

# Fixtures come from tests/offline_host.py; registering it here as well keeps
# this module runnable on its own (pytest de-duplicates the plugin by name).
pytest_plugins = ["testing.offline_host"]


def test_find_debian_mirror_reads_deb822_and_one_line_sources(tmp_path: Path):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "a.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
    )
    assert find_debian_mirror("bookworm", str(etc)) == "http://mirror.example/debian"
    (etc / "sources.list.d" / "a.sources").unlink()
    (etc / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [signed-by=/k.gpg arch=amd64] http://list.example/debian bookworm main\n"
    )
    assert find_debian_mirror("bookworm", str(etc)) == "http://list.example/debian"
    with pytest.raises(RuntimeError):
        find_debian_mirror("trixie", str(etc))


@pytest.mark.offline_host
def test_systemd_reaches_running(offline_host):
    r = offline_host.run("systemctl is-system-running")
    assert r.stdout.strip() == "running", offline_host.run("systemctl --failed --no-pager").stdout


@pytest.mark.offline_host
def test_sshd_answers_on_veth_address(offline_host):
    with socket.create_connection((offline_host.address, 22), timeout=5) as s:
        assert s.recv(64).startswith(b"SSH-2.0-")
    # The generated ssh_config alone is enough for plain ssh (as Fabric will use it).
    r = subprocess.run(
        ["ssh", "-F", str(offline_host.ssh_config_path), "devpi-host", "ip -4 -o addr show dev eth0"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    assert f"inet {offline_host.address}/30" in r.stdout


@pytest.mark.offline_host
def test_no_route_out(offline_host):
    assert_no_route_out(offline_host)


@pytest.mark.offline_host
def test_boot_leaves_cached_image_pristine(fresh_offline_host):
    h = fresh_offline_host
    h.run("echo dirty > /root/marker && rm -f /etc/issue", check=True)
    assert not (h.image / "root/marker").exists()
    assert (h.image / "etc/issue").exists()


@pytest.mark.offline_host
def test_reboot_keeps_rootfs_and_reaches_running(fresh_offline_host):
    h = fresh_offline_host
    h.run("echo kept > /var/tmp/marker", check=True)
    before = h.run("cut -d' ' -f22 /proc/1/stat", check=True).stdout
    h.reboot()
    assert h.run("cut -d' ' -f22 /proc/1/stat", check=True).stdout != before
    assert h.run("systemctl is-system-running").stdout.strip() == "running"
    assert h.run("cat /var/tmp/marker", check=True).stdout.strip() == "kept"
    assert_no_route_out(h)
