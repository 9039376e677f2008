"""Host: what travels to the server, on stdin or as a stream of files, arrives whole and at wire speed.

Invoke feeds a command's stdin one byte per 10 ms: 1 MB would take about
three hours. The limit below is generous (wire speed is well under a second),
so it guards the mechanism without being a benchmark.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from devpi_airgap.core.errors import RemoteError
from devpi_airgap.offline.remote import Host
from testing.offline_host import OfflineHost, require_offline_host_support
from testing.tasks import REPO

pytestmark = pytest.mark.offline_host

LIMIT_SECONDS = 60


@pytest.fixture(scope="module", params=["over ssh", "on this machine"])
def remote(request):
    """The same Host over SSH and, as `fab deploy` on the server itself runs it, locally."""
    if request.param == "on this machine":
        from invoke import Context

        yield Host(Context())
        return
    require_offline_host_support()
    from fabric import Config, Connection

    with OfflineHost() as host:
        config = Config(overrides={"ssh_config_path": str(host.ssh_config_path), "load_ssh_configs": True})
        with Connection("devpi-host", config=config) as connection:
            yield Host(connection)


def test_a_megabyte_on_stdin_arrives_byte_identical_within_the_limit(remote):
    data = base64.b64encode(os.urandom(768 * 1024)).decode()  # 1 MiB of text
    start = time.monotonic()
    result = remote.run("sha256sum", step="stdin", stdin=data)
    seconds = time.monotonic() - start
    print(f"1 MiB on stdin over SSH: {seconds:.2f} s")
    assert result.stdout.split()[0] == hashlib.sha256(data.encode()).hexdigest()
    assert seconds < LIMIT_SECONDS


def test_stdin_and_a_large_stderr_do_not_block_each_other(remote):
    """The command writes more to stderr than a pipe holds before it has read its stdin."""
    result = remote.run("head -c 300000 /dev/zero >&2; cat | wc -c", step="stdin", stdin="y" * 200_000, check=False)
    assert result.stdout.strip() == "200000" and len(result.stderr) == 300_000


def test_many_files_arrive_byte_identical_in_a_private_directory(remote, tmp_path):
    files = []
    for i in range(40):
        path = tmp_path / f"file-{i}.whl"
        path.write_bytes(os.urandom(1000 * i))
        files.append(path)
    target = remote.run("mktemp -d", step="test").stdout.strip() + "/seed"
    try:
        remote.put_files(files, target, step="copy")
        listing = remote.run(f"cd {target} && sha256sum *", step="test").stdout
        got = {line.split()[1]: line.split()[0] for line in listing.splitlines()}
        assert got == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
        assert remote.run(f"stat -c '%U %a' {target}", step="test").stdout.strip() == "root 700"
        # a second copy replaces the first whole: nothing of it is left
        remote.put_files(files[:1], target, step="copy")
        assert remote.run(f"ls {target}", step="test").stdout.split() == [files[0].name]
    finally:
        remote.run(f"rm -rf {target.rsplit('/', 1)[0]}", step="test")


def test_a_failed_file_stream_names_the_place_and_leaves_nothing(remote, tmp_path):
    wheel = tmp_path / "a.whl"
    wheel.write_bytes(b"x" * 100_000)
    blocker = remote.run("mktemp", step="test").stdout.strip()  # a file where a directory would have to be
    try:
        with pytest.raises(RemoteError, match=f"copying 1 files to .*{blocker}/seed failed"):
            remote.put_files([wheel], f"{blocker}/seed", step="copy")
        assert remote.run(f"test -f {blocker} && test ! -e {blocker}/seed", step="test", check=False).ok
    finally:
        remote.run(f"rm -f {blocker}", step="test")


def _another(remote, **kwargs) -> Host:
    """A second Host on the same machine, as a second `fab` run would open."""
    if not remote.is_remote:
        from invoke import Context

        return Host(Context(), **kwargs)
    from fabric import Connection

    return Host(Connection(remote.c.original_host, config=remote.c.config), **kwargs)


def test_commands_of_two_runs_never_overlap_on_the_server(remote):
    """A second run's command waits for the first run's, even one its run left running (see SERVER_LOCK)."""
    order = "/root/airgap-lock-order"
    remote.run(f"rm -f {order}", step="test")
    first = threading.Thread(target=remote.run, args=(f"sleep 2; echo first >> {order}",), kwargs={"step": "test"})
    first.start()
    time.sleep(0.5)  # the first command is asleep: without the lock, the second would write before it
    _another(remote).run(f"echo second >> {order}", step="test")
    first.join()
    assert remote.run(f"cat {order}", step="test").stdout.split() == ["first", "second"]


def test_a_command_left_running_by_a_killed_run_holds_off_the_next_run(tmp_path):
    """fab killed outright mid-step: its command goes on on the server, and the next run waits for it."""
    order = tmp_path / "order"
    script = (
        "from invoke import Context; from devpi_airgap.offline.remote import Host; "
        f"Host(Context()).run('sleep 2; echo left >> {order}', step='test')"
    )
    killed = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    time.sleep(1)  # its command is running
    killed.kill()
    killed.wait()
    from invoke import Context

    Host(Context()).run(f"echo next >> {order}", step="test")
    assert order.read_text().split() == ["left", "next"]


def test_a_run_that_must_wait_for_another_says_so_before_it_waits(remote):
    """Started while a stopped run's command still runs, a run says why it waits instead of sitting silent."""
    said: list[tuple[float, str]] = []
    alone = _another(remote, on_wait=lambda why: said.append((time.monotonic(), why)))
    alone.become_root()
    assert said == []  # nothing holds the lock: nothing to say

    first = threading.Thread(target=remote.run, args=("sleep 3",), kwargs={"step": "test"})
    first.start()
    time.sleep(0.5)
    waiting = _another(remote, on_wait=lambda why: said.append((time.monotonic(), why)))
    waiting.become_root()
    heard = time.monotonic()
    waiting.run("true", step="test")
    ran = time.monotonic()
    first.join()
    assert len(said) == 1
    when, why = said[0]
    assert f"{waiting.name} is still running a command of another devpi-airgap run" in why
    assert "/run/devpi-airgap.lock" in why
    assert when <= heard and ran - heard > 1  # said at once; the command itself then waited for the first


def test_a_server_without_flock_is_named_before_any_command(tmp_path, monkeypatch):
    """Every command runs under flock: a server without it fails at once, naming what to install."""
    from invoke import Context

    bare = tmp_path / "bin"
    bare.mkdir()
    for program in ("id", "sudo"):  # all that finding out how to be root needs
        if found := shutil.which(program):
            (bare / program).symlink_to(found)
    monkeypatch.setenv("PATH", str(bare))
    host = Host(Context())
    with pytest.raises(RemoteError, match=r"preflight: flock failed on .*install util-linux there and run again"):
        host.become_root()
