"""Host: what travels to the server on stdin arrives whole and at wire speed.

Invoke feeds a command's stdin one byte per 10 ms: 1 MB would take about
three hours. The limit below is generous (wire speed is well under a second),
so it guards the mechanism without being a benchmark.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time

import pytest

from devpi_airgap.offline.remote import Host
from testing.offline_host import OfflineHost, require_offline_host_support

pytestmark = pytest.mark.offline_host

LIMIT_SECONDS = 60


@pytest.fixture(scope="module")
def remote():
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
