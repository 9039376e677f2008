"""Faults during `fab deploy` on the offline host: nothing is lost, nothing duplicated, a re-run converges.

Each fault hits a deploy to an index of its own (`--server NAME`), so every one
of them starts from an empty index and is cut in the middle of a full upload.
The SSH link is throttled while a faulted deploy runs, so the upload lasts long
enough to be cut without depending on how fast this machine is. After every
fault and every re-run, each file on the index is compared by name and sha256
with the local wheelhouse, and the files devpi keeps on disk are counted.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from devpi_airgap.offline.devpi_api import DevpiClient, DevpiError
from testing.deploy_host import fab, server_project
from testing.environment import secrets_env
from testing.tasks import REPO

pytestmark = [pytest.mark.offline_host, pytest.mark.network]

USER = "myuser"
FILES = "/var/lib/devpi/server/+files"
FAULT_INDEXES = ("killed", "cut", "dropped", "stopped", "full")
INVENTORY = """
targets:
  server: {platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: "3.11", requirements: [server.txt]}
servers:
  devpi-host: {target: server, port: 3141, user: myuser, index: myindex}
""" + "".join(f"  {name}: {{target: server, port: 3141, user: myuser, index: {name}}}\n" for name in FAULT_INDEXES)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return server_project(tmp_path_factory.mktemp("faults"), INVENTORY)


def manifest(project: Path) -> dict[str, str]:
    """filename -> sha256 of every wheel in the local wheelhouse: what each index must hold, exactly."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((project / "wheelhouse" / "server").glob("*.whl"))
    }


def listed_files(host, index: str) -> list[str]:
    """Every filename the index lists, duplicates included (index_files() folds them into a dict)."""
    headers = {"Accept": "application/vnd.pypi.simple.v1+json"}
    base = f"http://{host.address}:3141/{USER}/{index}/+simple/"
    with httpx.Client(headers=headers, timeout=60) as http:
        projects = http.get(base).raise_for_status().json()["projects"]
        return [
            f["filename"] for p in projects for f in http.get(f"{base}{p['name']}/").raise_for_status().json()["files"]
        ]


def assert_index_matches(project: Path, host, index: str) -> None:
    expected = manifest(project)
    with DevpiClient(f"http://{host.address}:3141") as client:
        actual = client.index_files(USER, index)
    lost = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(n for n in set(expected) & set(actual) if expected[n] != actual[n])
    assert not (lost or extra or changed), f"{USER}/{index}: lost {lost}, extra {extra}, sha256 differs {changed}"
    listed = listed_files(host, index)
    assert sorted(listed) == sorted(expected), f"{USER}/{index} lists some file twice: {sorted(listed)}"
    # On disk: exactly one complete copy of each file. devpi-server writes each upload to NAME-HASH-tmp and
    # renames it on commit; a write that fails (ENOSPC) leaves that temporary behind, never served, and not
    # ours to delete (devpi's crash recovery renames -tmp files a committed transaction names).
    on_disk = host.run(f"cd {FILES}/{USER}/{index} && find . -type f -exec sha256sum {{}} +", check=True).stdout
    disk = sorted((line.split()[1].rsplit("/", 1)[-1], line.split()[0]) for line in on_disk.splitlines())
    leftovers = [name for name, _ in disk if name.endswith("-tmp")]
    complete = [(name, sha) for name, sha in disk if not name.endswith("-tmp")]
    assert complete == sorted(expected.items()), (
        f"{FILES}/{USER}/{index} holds {complete}, expected {sorted(expected.items())}"
    )
    assert all(any(name.startswith(f + "-") for f in expected) for name in leftovers), leftovers
    if leftovers:
        print(f"{FILES}/{USER}/{index}: {len(leftovers)} temporaries of failed writes left by devpi-server")


def wait_for_index(host, index: str = "myindex") -> None:
    """Until the index answers; the service restarts on its own, so this ends or the run hangs visibly."""
    while True:
        try:
            with DevpiClient(f"http://{host.address}:3141", timeout=10) as client:
                client.index_files(USER, index)
            return
        except DevpiError:
            time.sleep(0.5)


@contextmanager
def throttled(host, rate: str = "2mbit"):
    """Slow the runner -> host direction of the veth, which carries the uploads, for as long as the block runs."""
    subprocess.run(
        [
            "tc",
            "qdisc",
            "replace",
            "dev",
            host.veth_host,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            "32kb",
            "latency",
            "2s",
        ],
        check=True,
    )
    try:
        yield
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", host.veth_host, "root"], check=False)


class Deploy:
    """`fab deploy --server INDEX` in the background, its output gathered as it comes."""

    def __init__(self, project: Path, host, index: str):
        command = [
            sys.executable,
            "-m",
            "fabric",
            "--search-root",
            str(REPO),
            "-S",
            str(host.ssh_config_path),
            "-H",
            "devpi-host",
            "deploy",
            "--server",
            index,
            "--inventory",
            str(project / "inventory.yaml"),
        ]
        self.proc = subprocess.Popen(
            command, cwd=REPO, env=secrets_env(project), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(s, b), daemon=True)
            for s, b in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def wait(self) -> tuple[int, str, str]:
        code = self.proc.wait()
        for reader in self._readers:
            reader.join()
        return code, "".join(self.stdout), "".join(self.stderr)


def start_deploy_and_wait_for_upload(project: Path, host, index: str) -> Deploy:
    """Start a deploy and return once the upload is under way: some files are on the index, not all."""
    deploy = Deploy(project, host, index)
    total = len(manifest(project))
    while True:
        if deploy.proc.poll() is not None:
            code, out, err = deploy.wait()
            pytest.fail(f"deploy ended (exit {code}) before the fault could hit its upload:\n{out}\n{err}")
        try:
            with DevpiClient(f"http://{host.address}:3141", timeout=10) as client:
                present = len(client.index_files(USER, index))
        except DevpiError:  # the index does not exist yet
            present = 0
        if present:
            assert present < total, "the whole upload finished before the fault; throttle the link harder"
            return deploy
        time.sleep(0.2)


def assert_clear_failure(code: int, out: str, err: str) -> str:
    assert code != 0, f"the faulted deploy claims success:\n{out}\n{err}"
    assert "Traceback" not in err, err
    assert "error:" in err, err
    return " ".join(err.split())


def rerun_converges(project: Path, host, index: str) -> None:
    again = fab(project, host, "deploy", "--server", index)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "upload:" in " ".join(again.stderr.split()), "the re-run had nothing left to upload: the fault came too late"
    assert_index_matches(project, host, index)
    settled = fab(project, host, "deploy", "--server", index)
    assert settled.returncode == 0 and "no changes" in settled.stdout, settled.stdout + settled.stderr


def test_baseline_index_matches_the_wheelhouse(deployed, project, host):
    assert len(manifest(project)) > 10
    assert_index_matches(project, host, "myindex")


def test_devpi_killed_mid_upload(deployed, project, host):
    with throttled(host):
        deploy = start_deploy_and_wait_for_upload(project, host, "killed")
        host.run("systemctl kill --kill-whom=main -s KILL devpi.service", check=True)
        code, out, err = deploy.wait()
    message = assert_clear_failure(code, out, err)
    print(f"devpi-server killed mid-upload -> exit {code}:\n{err}")
    assert "stopped answering" in message and "re-run deploy" in message
    assert message.count("Secsh channel") <= 8, "the upload kept sending files to a dead server"
    wait_for_index(host, "killed")  # Restart=on-failure brings it back
    rerun_converges(project, host, "killed")
    assert_index_matches(project, host, "myindex")


def test_ssh_connection_cut_mid_upload(deployed, project, host):
    with throttled(host):
        deploy = start_deploy_and_wait_for_upload(project, host, "cut")
        # Every sshd session of root ends, ours included: the deploy's connection and its tunnel drop.
        host.run("pkill -KILL -f 'sshd: root@'")
        code, out, err = deploy.wait()
    message = assert_clear_failure(code, out, err)
    print(f"SSH cut mid-upload -> exit {code}:\n{err}")
    assert "re-run deploy" in message
    rerun_converges(project, host, "cut")


def test_operator_side_killed_mid_upload(deployed, project, host):
    """The machine running fab dies (kill -9, laptop closed): the next run picks up where it stopped."""
    with throttled(host):
        deploy = start_deploy_and_wait_for_upload(project, host, "dropped")
        deploy.proc.kill()
        deploy.wait()
    rerun_converges(project, host, "dropped")


def test_operator_side_stopped_mid_upload_says_so_and_a_rerun_converges(deployed, project, host):
    """`kill PID` or a closed terminal on the machine running fab: it stops as on Ctrl-C, and says so."""
    with throttled(host):
        deploy = start_deploy_and_wait_for_upload(project, host, "stopped")
        deploy.proc.send_signal(signal.SIGTERM)
        code, out, err = deploy.wait()
    assert code == 130, out + err
    assert "stopped by SIGTERM" in err and "Traceback" not in err, err
    rerun_converges(project, host, "stopped")


def test_disk_full_then_freed(deployed, project, host):
    # A small tmpfs over +files (existing files copied in) so only it fills, not the runner's disk.
    host.run("systemctl stop devpi.service", check=True)
    owner = host.run(f"stat -c '%u %g %a' {FILES}", check=True).stdout.split()
    used_kb = int(host.run(f"du -sk {FILES}", check=True).stdout.split()[0])
    size_kb = used_kb + 64 * 1024
    setup = (
        f"set -e; rm -rf /root/files-stash; cp -a {FILES} /root/files-stash; "
        f"mount -t tmpfs -o size={size_kb}k,uid={owner[0]},gid={owner[1]},mode={owner[2]} airgap-full {FILES}; "
        f"cp -a /root/files-stash/. {FILES}/; "
        # leave 1 MiB: some small wheels fit, the rest do not
        f"free=$(df -Pk {FILES} | awk 'NR==2 {{print $4}}'); "
        f"fallocate -l $(( (free - 1024) * 1024 )) {FILES}/filler"
    )
    mounted = host.run(setup)
    try:
        assert mounted.returncode == 0, f"cannot mount a small tmpfs over {FILES}:\n{mounted.stderr}"
        host.run("systemctl start devpi.service", check=True)
        wait_for_index(host)
        result = fab(project, host, "deploy", "--server", "full")
        message = assert_clear_failure(result.returncode, result.stdout, result.stderr)
        print(f"disk full -> exit {result.returncode}:\n{result.stderr}")
        lowered = message.lower()
        assert "full" in lowered or "no space" in lowered, message
        assert "free" in lowered and "re-run deploy" in lowered, message
        host.run(f"rm -f {FILES}/filler", check=True)
        rerun_converges(project, host, "full")
    finally:
        # Put the files written to the tmpfs on the real disk, so later tests and the reboot see them.
        host.run(
            f"rm -f {FILES}/filler; systemctl stop devpi.service; "
            f"if mountpoint -q {FILES}; then rm -rf /root/files-new && cp -a {FILES} /root/files-new && "
            f"umount {FILES} && cp -a /root/files-new/. {FILES}/ && rm -rf /root/files-new; fi; "
            "rm -rf /root/files-stash; systemctl start devpi.service"
        )
    wait_for_index(host, "full")
    assert_index_matches(project, host, "full")


def test_reboot_keeps_every_file(deployed, project, host):
    indexes = ["myindex", *(i for i in FAULT_INDEXES if _exists(host, i))]
    host.reboot()
    wait_for_index(host)
    for index in indexes:
        assert_index_matches(project, host, index)
    assert host.run("systemctl is-active devpi.service").stdout.strip() == "active"


def _exists(host, index: str) -> bool:
    with DevpiClient(f"http://{host.address}:3141") as client:
        try:
            client.index_files(USER, index)
            return True
        except DevpiError:
            return False
