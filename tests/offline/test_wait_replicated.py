"""A replica's sync state from its /+status, and the wait on it.

The states come from status dicts as devpi-server 6.20 sends them; the wait runs
against a stand-in that answers them in turn. A real replica over a slow link is
waited for in tests/offline/test_seed_index.py, and through deploy in test_replica.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devpi_airgap.offline.programs import wait_replicated
from devpi_airgap.offline.programs.wait_replicated import sync_state
from testing.loopback import send, serving

CAUGHT_UP = {"serial": 7, "primary-serial": 7}
MARKS_BEFORE = {"replica-files-in-sync-at": 99.0, "replica-metadata-in-sync-at": 100.0}
MARKS_AFTER = {"replica-files-in-sync-at": 101.0, "replica-metadata-in-sync-at": 100.0}


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ({"serial": 6, "primary-serial": 7}, "catching up"),
        ({"serial": 7, "primary-serial": None}, "catching up"),  # the primary not heard from yet
        ({**CAUGHT_UP, "replica-files-in-sync-at": None, "replica-metadata-in-sync-at": 100.0}, "files catching up"),
        # the file queue last drained before the metadata arrived: its files may still be on the way
        ({**CAUGHT_UP, "replica-files-in-sync-at": 99.0, "replica-metadata-in-sync-at": 100.0}, "files catching up"),
        ({**CAUGHT_UP, "replica-files-in-sync-at": 101.0, "replica-metadata-in-sync-at": 100.0}, "in sync"),
        (CAUGHT_UP, "in sync"),  # devpi-server before 6.19 has no marks to wait for
    ],
)
def test_a_replica_is_in_sync_once_its_files_followed_its_serial(status, state):
    assert sync_state(status) == state


def wait(statuses, patience: float) -> subprocess.CompletedProcess:
    """The program against a stand-in /+status that answers `statuses(n)` to its n-th question."""

    def answer(handler, seen):
        body = json.dumps({"result": statuses(len(seen.requests) - 1)}).encode()
        send(handler, 200, body, Content_Type="application/json")

    with serving(answer) as (address, _):
        port = address.rsplit(":", 1)[1]
        return subprocess.run(
            [sys.executable, wait_replicated.__file__, port, str(patience)], capture_output=True, text=True, timeout=60
        )


def queued(n: int) -> list:
    return [["devpi_server_replica_file_download_queue_size", "gauge", n]]


def test_the_wait_lasts_as_long_as_the_replica_moves_on():
    # its files leave the queue one a question, far beyond the patience, then the queue drains
    def statuses(n):
        if n < 12:
            return {**CAUGHT_UP, "metrics": queued(12 - n), **MARKS_BEFORE}
        return {**CAUGHT_UP, "metrics": queued(0), **MARKS_AFTER}

    done = wait(statuses, patience=0.6)
    assert done.returncode == 0, done.stderr


def test_the_wait_gives_up_when_nothing_moves_for_its_patience():
    done = wait(lambda n: {**CAUGHT_UP, "metrics": queued(3), **MARKS_BEFORE}, patience=0.6)
    assert done.returncode == 1
    assert json.loads(done.stderr)["state"] == "files catching up"
