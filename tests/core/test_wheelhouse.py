"""Wheelhouse: the pool's hash cache survives the wheelhouse's own links, and nothing else."""

from __future__ import annotations

import json
import time

import pytest

from devpi_airgap.core import wheelhouse as module
from devpi_airgap.core.files import sha256_file
from devpi_airgap.core.wheelhouse import Wheelhouse


@pytest.fixture
def pooled(tmp_path):
    wheelhouse = Wheelhouse(tmp_path / "wheelhouse")
    wheelhouse.pool.mkdir(parents=True)
    path = wheelhouse.pool / "one-1.0-py3-none-any.whl"
    path.write_bytes(b"one wheel")
    wheelhouse.record(path, sha256_file(path))
    return wheelhouse, path


def test_a_link_keeps_a_known_hash_without_reading_the_file_again(pooled, monkeypatch):
    wheelhouse, path = pooled
    digest = sha256_file(path)
    assert wheelhouse.link(wheelhouse.root / "win313", [path.name]) == [path.name]

    def read(path):
        raise AssertionError(f"{path} was read again after a link")

    monkeypatch.setattr(module, "sha256_file", read)
    assert wheelhouse.sha256(path) == digest


def test_a_rewrite_of_the_same_size_is_hashed_again(pooled):
    wheelhouse, path = pooled
    time.sleep(0.02)  # the kernel stamps ctime at its clock tick
    path.write_bytes(b"two wheel")
    wheelhouse.link(wheelhouse.root / "win313", [path.name])
    assert wheelhouse.sha256(path) == sha256_file(path)


def test_two_writers_of_the_cache_keep_each_others_entries(pooled):
    """A verify's Wheelhouse and the download's write the same cache: neither loses what the other hashed."""
    download, one = pooled
    verify = Wheelhouse(download.root)  # read before the download saved anything
    two = download.pool / "two-1.0-py3-none-any.whl"
    two.write_bytes(b"two wheel")
    download.record(two, sha256_file(two))
    download.save()
    verify.sha256(one)
    verify.save()  # after the download's save, from a cache read before it
    assert set(json.loads((download.pool / ".sha256.json").read_text())) == {one.name, two.name}


def test_an_entry_that_no_longer_matches_its_file_is_dropped_on_save(pooled):
    wheelhouse, path = pooled
    wheelhouse.save()
    later = Wheelhouse(wheelhouse.root)  # holds the entry as it was
    time.sleep(0.01)
    path.write_bytes(b"one wheel, rewritten")  # moves its ctime: the recorded hash no longer describes it
    later.save()
    assert json.loads((wheelhouse.pool / ".sha256.json").read_text()) == {}
    assert Wheelhouse(wheelhouse.root).sha256(path) == sha256_file(path)
