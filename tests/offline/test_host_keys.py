"""Host keys on a booted offline host: known works, unknown and changed are refused before anything is sent.

"Nothing sent" is read from the server's own sshd log: a refused connection
never gets as far as authenticating, so no "Accepted publickey" line is
logged for it, and the deploy's passwords never leave this machine.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from devpi_airgap.core.errors import ExitCode, RemoteError
from devpi_airgap.core.files import sha256_file
from devpi_airgap.core.lock import LockedFile, write_lock
from devpi_airgap.offline.host_keys import trust
from testing.environment import ROOT_PASSWORD, secrets_env
from testing.offline_host import OfflineHost, require_offline_host_support
from testing.tasks import run_task
from testing.wheels import make_wheel

pytestmark = pytest.mark.offline_host

INVENTORY = """
targets:
  server: {platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: "3.11", requirements: [server.txt]}
servers:
  devpi-host: {target: server}
"""


@pytest.fixture(scope="module")
def host():
    require_offline_host_support()
    with OfflineHost() as h:
        yield h


@pytest.fixture
def project(tmp_path):
    """An inventory, and a locked wheelhouse that gets a deploy as far as connecting (it is never installed)."""
    (tmp_path / "server.txt").write_text("packaging\n")
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    wheel = make_wheel(tmp_path / "wheelhouse" / "server", "devpi_server", "6.20.3")
    entry = LockedFile("devpi-server", "6.20.3", wheel.name, "", sha256_file(wheel), wheel.stat().st_size,
                       sets=("devpi server",))  # fmt: skip
    write_lock(tmp_path / "locks" / "server.lock.json", {"target": "server"}, [entry])
    return tmp_path


def fab(host: OfflineHost, project: Path, known_hosts: Path, *args: str):
    """fab with the host's ssh_config, but vouched for by `known_hosts` instead of the host's real file."""
    config = project / "ssh_config"
    config.write_text(
        host.ssh_config_path.read_text().replace(
            f"UserKnownHostsFile {host.known_hosts_path}", f"UserKnownHostsFile {known_hosts}"
        )
    )
    return run_task(
        "-S", str(config), "-H", "devpi-host", *args, "--inventory", str(project / "inventory.yaml"),
        program="fabric", env=secrets_env(project),
    )  # fmt: skip


def logins(host: OfflineHost) -> int:
    """How many SSH sessions sshd has let in so far, this call's own included."""
    log = host.run("journalctl --no-pager -o cat -u ssh.service", check=True).stdout
    return log.count("Accepted publickey")


def real_fingerprint(host: OfflineHost) -> str:
    pub = host.rootfs / "etc/ssh/ssh_host_ed25519_key.pub"
    return subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout.split()[1]


def test_a_known_key_connects(host, project):
    result = fab(host, project, host.known_hosts_path, "status")
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unknown_key_is_refused_before_anything_is_sent(host, project):
    empty = project / "known_hosts"
    empty.write_text("")
    before = logins(host)
    result = fab(host, project, empty, "deploy")
    assert logins(host) == before + 1  # only the count's own session: the deploy never authenticated
    assert result.returncode == 6, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert f"host key {real_fingerprint(host)}" in message and "no known_hosts file lists" in message
    assert f"fab -H devpi-host trust-host-key --fingerprint {real_fingerprint(host)}" in message
    assert "Traceback" not in result.stderr and ROOT_PASSWORD not in result.stdout + result.stderr
    assert host.run("test -e /opt/devpi-airgap").returncode != 0


def test_a_changed_key_is_refused_before_anything_is_sent(host, project):
    impostor = project / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    known = project / "known_hosts"
    known.write_text(f"{host.address} {' '.join((project / 'impostor.pub').read_text().split()[:2])}\n")
    before = logins(host)
    result = fab(host, project, known, "deploy")
    assert logins(host) == before + 1
    assert result.returncode == 6, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert f"offered host key {real_fingerprint(host)}, but known_hosts holds" in message
    assert (
        "reinstalled" in message
        and f"ssh-keygen -R {host.address} -f {known}" in message
        and "nothing was sent" in message
    )
    assert host.run("test -e /opt/devpi-airgap").returncode != 0


def test_trust_host_key_accepts_only_the_fingerprint_read_on_the_server(host, project):
    known = project / "known_hosts"
    known.write_text("")
    wrong = fab(host, project, known, "trust-host-key", "--fingerprint", "SHA256:" + "A" * 43)
    assert wrong.returncode == 6 and "not the fingerprint you gave" in wrong.stderr, wrong.stderr
    assert known.read_text() == ""
    right = fab(host, project, known, "trust-host-key", "--fingerprint", real_fingerprint(host))
    assert right.returncode == 0, right.stdout + right.stderr
    assert known.read_text().startswith(f"{host.address} ssh-ed25519 ")
    again = fab(host, project, known, "trust-host-key", "--fingerprint", real_fingerprint(host))
    assert again.returncode == 0 and "already in" in again.stdout and len(known.read_text().splitlines()) == 1
    assert fab(host, project, known, "status").returncode == 0


def test_trust_host_key_names_a_server_it_cannot_reach_and_writes_nothing(tmp_path):
    """Said as every other task's connection says it (exit 6), not as a bare I/O error."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    known_hosts = tmp_path / "known_hosts"
    with pytest.raises(RemoteError) as raised:
        trust("127.0.0.1", port, "SHA256:whatever", known_hosts, timeout=5)
    message = str(raised.value)
    assert f"cannot reach [127.0.0.1]:{port}" in message and "check the HostName and Port" in message
    assert raised.value.exit_code == ExitCode.REMOTE and not known_hosts.exists()
