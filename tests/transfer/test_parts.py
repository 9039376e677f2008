"""A bundle cut into parts for a medium with a size limit, and joined again on the other side."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from devpi_airgap.core.errors import BundleError
from devpi_airgap.transfer import parts
from devpi_airgap.transfer.parts import join_parts, split_bundle, whole_name


def _bundle(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    bundle = tmp_path / "out" / "devpi-airgap-X.tar"
    bundle.parent.mkdir()
    bundle.write_bytes(data)
    bundle.with_name(bundle.name + ".sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  {bundle.name}\n")
    bundle.with_name(bundle.name + ".sig").write_text("signature over the whole\n")
    return bundle, data


def test_parts_join_into_the_bundle_byte_for_byte_and_sha256sum_checks_each(tmp_path):
    bundle, data = _bundle(tmp_path, 2_500_123)
    parts = split_bundle(bundle, 1_000_000)
    assert [p.name for p in parts] == [f"devpi-airgap-X.tar.00{n}" for n in (1, 2, 3)]
    assert [p.stat().st_size for p in parts] == [1_000_000, 1_000_000, 500_123] and not bundle.exists()
    checked = subprocess.run(["sha256sum", "-c", "--ignore-missing", bundle.name + ".sha256"], cwd=bundle.parent,
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0 and checked.stdout.count(": OK") == 3, checked.stdout + checked.stderr
    (tmp_path / "into").mkdir()
    joined = join_parts(whole_name(parts[0]), tmp_path / "into")  # the user may name the first part
    assert joined == tmp_path / "into" / bundle.name and joined.read_bytes() == data
    assert joined.with_name(bundle.name + ".sha256").read_text().split()[0] == hashlib.sha256(data).hexdigest()
    assert joined.with_name(bundle.name + ".sig").read_text() == "signature over the whole\n"


def test_a_bundle_within_the_size_stays_whole(tmp_path):
    bundle, data = _bundle(tmp_path, 1000)
    assert split_bundle(bundle, 1000) == [] and bundle.read_bytes() == data


@pytest.mark.parametrize("damage", ["missing", "altered"])
def test_a_part_missing_or_altered_is_named_and_nothing_is_joined(tmp_path, damage):
    bundle, _ = _bundle(tmp_path, 3_000_000)
    parts = split_bundle(bundle, 1_000_000)
    if damage == "missing":
        parts[1].unlink()
    else:
        with open(parts[1], "r+b") as part:
            part.seek(500)
            part.write(b"\xff")
    (tmp_path / "into").mkdir()
    with pytest.raises(BundleError) as refused:
        join_parts(bundle, tmp_path / "into")
    message = " ".join(str(refused.value).split())
    assert parts[1].name in message and "nothing was imported" in message.lower()
    assert list((tmp_path / "into").iterdir()) == []


def test_a_bundle_neither_whole_nor_in_listed_parts_says_what_to_copy(tmp_path):
    (tmp_path / "into").mkdir()
    with pytest.raises(BundleError, match="no such bundle file"):
        join_parts(tmp_path / "devpi-airgap-Y.tar", tmp_path / "into")


def test_a_cut_stopped_midway_leaves_the_whole_bundle_and_no_part(tmp_path, monkeypatch):
    bundle, data = _bundle(tmp_path, 3_000_000)
    checksum = bundle.with_name(bundle.name + ".sha256").read_text()
    renamed = []

    def stopped_at_the_second(source, dest):
        if renamed:
            raise KeyboardInterrupt
        renamed.append(dest)
        os.replace(source, dest)

    monkeypatch.setattr(parts, "replace", stopped_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        split_bundle(bundle, 1_000_000)
    assert bundle.read_bytes() == data and bundle.with_name(bundle.name + ".sha256").read_text() == checksum
    assert sorted(p.name for p in bundle.parent.iterdir()) == [
        bundle.name,
        bundle.name + ".sha256",
        bundle.name + ".sig",
    ]
