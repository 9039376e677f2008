"""A bundle cut into parts as it is written, for a medium with a size limit, and joined again on the other side."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from devpi_airgap.core.errors import BundleError
from devpi_airgap.transfer import parts
from devpi_airgap.transfer.parts import PartedFile, join_parts, whole_name

PREFIX = ".partial-1-"


def _write(tmp_path: Path, size: int, part_size: int | None, pieces_of: int = 65_536) -> tuple[Path, bytes, dict]:
    """Write `size` random bytes through a PartedFile in pieces of `pieces_of`, as tarfile writes, and finish it."""
    data = os.urandom(size)
    bundle = tmp_path / "out" / "devpi-airgap-X.tar"
    bundle.parent.mkdir(exist_ok=True)
    with PartedFile(bundle, part_size, PREFIX) as out:
        for start in range(0, size, pieces_of):
            out.write(data[start : start + pieces_of])
        assert out.digest.hexdigest() == hashlib.sha256(data).hexdigest() and out.tell() == size
        landed = out.finish()
    return bundle, data, landed


def _checksum(bundle: Path, data: bytes, landed: dict) -> None:
    """The .sha256 as inv bundle writes it: the whole first, then each part."""
    lines = [f"{hashlib.sha256(data).hexdigest()}  {bundle.name}\n"]
    lines += [f"{digest}  {path.name}\n" for path, digest in landed.items() if path != bundle]
    bundle.with_name(bundle.name + ".sha256").write_text("".join(lines))
    bundle.with_name(bundle.name + ".sig").write_text("signature over the whole\n")


def test_parts_join_into_the_bundle_byte_for_byte_and_sha256sum_checks_each(tmp_path):
    bundle, data, landed = _write(tmp_path, 2_500_123, 1_000_000)
    assert [p.name for p in landed] == [f"devpi-airgap-X.tar.00{n}" for n in (1, 2, 3)]
    assert [p.stat().st_size for p in landed] == [1_000_000, 1_000_000, 500_123] and not bundle.exists()
    assert all(hashlib.sha256(p.read_bytes()).hexdigest() == digest for p, digest in landed.items())
    assert sorted(p.name for p in bundle.parent.iterdir()) == [p.name for p in landed]  # no partial left
    _checksum(bundle, data, landed)
    checked = subprocess.run(["sha256sum", "-c", "--ignore-missing", bundle.name + ".sha256"], cwd=bundle.parent,
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0 and checked.stdout.count(": OK") == 3, checked.stdout + checked.stderr
    (tmp_path / "into").mkdir()
    joined = join_parts(whole_name(next(iter(landed))), tmp_path / "into")  # the user may name the first part
    assert joined == tmp_path / "into" / bundle.name and joined.read_bytes() == data
    assert joined.with_name(bundle.name + ".sha256").read_text().split()[0] == hashlib.sha256(data).hexdigest()
    assert joined.with_name(bundle.name + ".sig").read_text() == "signature over the whole\n"


@pytest.mark.parametrize("part_size", [None, 1000, 4000])
def test_a_bundle_within_the_size_stays_whole(tmp_path, part_size):
    bundle, data, landed = _write(tmp_path, 1000, part_size, pieces_of=300)
    assert landed == {bundle: hashlib.sha256(data).hexdigest()} and bundle.read_bytes() == data
    assert [p.name for p in bundle.parent.iterdir()] == [bundle.name]


def test_a_write_across_a_parts_end_is_cut_there(tmp_path):
    """tarfile hands over 1 MiB at a time: a part ends inside a write, not at its end."""
    bundle, data, landed = _write(tmp_path, 3_000_000, 700_000, pieces_of=1 << 20)
    assert [p.stat().st_size for p in landed] == [700_000] * 4 + [200_000]
    assert b"".join(p.read_bytes() for p in landed) == data


@pytest.mark.parametrize("damage", ["missing", "altered"])
def test_a_part_missing_or_altered_is_named_and_nothing_is_joined(tmp_path, damage):
    bundle, data, landed = _write(tmp_path, 3_000_000, 1_000_000)
    _checksum(bundle, data, landed)
    second = list(landed)[1]
    if damage == "missing":
        second.unlink()
    else:
        with open(second, "r+b") as part:
            part.seek(500)
            part.write(b"\xff")
    (tmp_path / "into").mkdir()
    with pytest.raises(BundleError) as refused:
        join_parts(bundle, tmp_path / "into")
    message = " ".join(str(refused.value).split())
    assert second.name in message and "nothing was imported" in message.lower()
    assert list((tmp_path / "into").iterdir()) == []


def test_a_bundle_neither_whole_nor_in_listed_parts_says_what_to_copy(tmp_path):
    (tmp_path / "into").mkdir()
    with pytest.raises(BundleError, match="no such bundle file"):
        join_parts(tmp_path / "devpi-airgap-Y.tar", tmp_path / "into")


def test_a_write_stopped_midway_leaves_nothing(tmp_path):
    bundle = tmp_path / "devpi-airgap-X.tar"
    with pytest.raises(KeyboardInterrupt), PartedFile(bundle, 1000, PREFIX) as out:
        out.write(os.urandom(2500))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_finish_stopped_midway_leaves_nothing(tmp_path, monkeypatch):
    bundle = tmp_path / "devpi-airgap-X.tar"
    renamed = []

    def stopped_at_the_second(source, dest):
        if renamed:
            raise KeyboardInterrupt
        renamed.append(dest)
        os.replace(source, dest)

    monkeypatch.setattr(parts, "replace", stopped_at_the_second)
    with pytest.raises(KeyboardInterrupt), PartedFile(bundle, 1000, PREFIX) as out:
        out.write(os.urandom(2500))
        out.finish()
    assert renamed and list(tmp_path.iterdir()) == []


def test_more_parts_than_names_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(parts, "MAX_PARTS", 3)
    bundle = tmp_path / "devpi-airgap-X.tar"
    with pytest.raises(BundleError, match="more than 3 parts; raise it"), PartedFile(bundle, 1000, PREFIX) as out:
        out.write(os.urandom(3500))
    assert list(tmp_path.iterdir()) == []


def test_nothing_written_lands_as_an_empty_file(tmp_path):
    bundle = tmp_path / "devpi-airgap-X.tar"
    with PartedFile(bundle, 1000, PREFIX) as out:
        assert out.finish() == {bundle: hashlib.sha256(b"").hexdigest()}
    assert [p.name for p in tmp_path.iterdir()] == [bundle.name] and bundle.read_bytes() == b""
