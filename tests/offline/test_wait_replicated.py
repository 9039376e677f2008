"""A replica's sync state from its /+status: the serial first, then devpi's marks of its files and metadata."""

from __future__ import annotations

import pytest

from devpi_airgap.offline.programs.wait_replicated import sync_state

CAUGHT_UP = {"serial": 7, "primary-serial": 7}


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
