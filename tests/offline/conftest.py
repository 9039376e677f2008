"""The deploy tests' shared setup: a project with a downloaded server wheelhouse, a booted offline host, a deploy.

Module-scoped, so every test module that uses them gets a host and a deploy of its own.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from testing.deploy_host import fab, free_port, server_project
from testing.offline_host import OfflineHost, assert_no_route_out, require_offline_host_support

INVENTORY = """
targets:
  server: {platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: "3.11", requirements: [server.txt]}
  server312: {platform: [manylinux_2_28_x86_64], python: "3.12", requirements: [server.txt]}
servers:
  devpi-host: {target: server, port: 3141, user: myuser, index: myindex}
  wrong-python: {target: server312}
  unreachable: {target: server}
  bad-key: {target: server}
  no-sudo: {target: server}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return server_project(tmp_path_factory.mktemp("deploy"), INVENTORY)


@pytest.fixture(scope="module")
def host(project):
    require_offline_host_support()
    with OfflineHost() as h:
        assert_no_route_out(h)  # an offline server for real: nothing the deploy does can reach an index
        config = h.ssh_config_path.read_text()
        free = free_port()
        config += f"\nHost unreachable\n    HostName 127.0.0.1\n    Port {free}\n"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(project / "other_key")], check=True)
        config += (
            f"\nHost bad-key\n    HostName {h.address}\n    User root\n    IdentityFile {project / 'other_key'}\n"
            f"    UserKnownHostsFile {h.known_hosts_path}\n"
        )
        config += (
            f"\nHost wrong-python\n    HostName {h.address}\n    User root\n    IdentityFile {h.ssh_key_path}\n"
            f"    UserKnownHostsFile {h.known_hosts_path}\n"
        )
        # plain: no sudo at all; deployer: passwordless sudo, as the README allows; asker: sudo that wants a password.
        for alias, user in (("no-sudo", "plain"), ("as-deployer", "deployer"), ("as-asker", "asker")):
            config += (
                f"\nHost {alias}\n    HostName {h.address}\n    User {user}\n    IdentityFile {h.ssh_key_path}\n"
                f"    UserKnownHostsFile {h.known_hosts_path}\n"
            )
            h.run(
                f"useradd -m -s /bin/sh {user} && install -d -o {user} -m 700 ~{user}/.ssh && "
                f"cp /root/.ssh/authorized_keys ~{user}/.ssh/ && chown {user} ~{user}/.ssh/authorized_keys",
                check=True,
            )
        h.ssh_config_path.write_text(config)
        h.run(
            "echo 'deployer ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deployer && "
            "echo 'asker ALL=(ALL) ALL' > /etc/sudoers.d/asker && chmod 0440 /etc/sudoers.d/*",
            check=True,
        )
        yield h


@pytest.fixture(scope="module")
def deployed(project, host):
    seen: list[str] = []
    stop = threading.Event()

    def watch_argv():  # every process's argv on the server while the deploy runs
        while not stop.is_set():
            seen.append(host.run("ps -eo args").stdout)
            time.sleep(0.3)

    watcher = threading.Thread(target=watch_argv, daemon=True)
    watcher.start()
    start = time.monotonic()
    result = fab(project, host, "deploy")
    stop.set()
    watcher.join()
    assert result.returncode == 0, result.stdout + result.stderr
    return result, seen, time.monotonic() - start
