"""Wheelhouse: the pool's hash cache survives the wheelhouse's own links, and nothing else."""

from __future__ import annotations

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
