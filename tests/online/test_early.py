"""EarlyWork: files fetched and built as resolutions name them; guesses the final pins drop leave nothing behind."""

from __future__ import annotations

import shutil
import time

import pytest

from devpi_airgap.core.files import sha256_file
from devpi_airgap.core.lock import LockedFile
from devpi_airgap.core.wheelhouse import Wheelhouse
from devpi_airgap.online.early import EarlyWork
from devpi_airgap.online.resolve import FileRef, Pin
from testing.fakeindex import Dist, build_index, serve_index

DISTS = [Dist("one", "1.0"), Dist("two", "1.0"), Dist("three", "1.0"), Dist("plain", "1.0", sdist=True, wheel=False)]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    with serve_index(build_index(tmp_path_factory.mktemp("index"), DISTS)) as url:
        yield url


def pin(index, filename: str) -> Pin:
    path = index.root / "files" / filename
    name, version = filename.split("-")[:2]
    ref = FileRef(filename, f"{index.files_url}/{filename}", sha256_file(path), path.stat().st_size)
    return Pin(name, version.removesuffix(".tar.gz"), ref)


def run(index, wheelhouse, rounds, wanted, build=lambda pin: None):
    with EarlyWork(wheelhouse, index, build) as early:
        for pins, final in rounds:
            early.hand_over(pins, final)
        return early, early.finish(wanted, {p.name for p in rounds[-1][0]})


def test_a_guess_the_final_round_drops_leaves_the_pool(index, tmp_path):
    wheelhouse = Wheelhouse(tmp_path / "wheelhouse")
    one, two, three = (pin(index, f"{n}-1.0-py3-none-any.whl") for n in ("one", "two", "three"))
    early, fingerprints = run(
        index, wheelhouse, [([one, two], False), ([two, three], True)], {two.file.filename, three.file.filename}
    )
    assert sorted(p.name for p in wheelhouse.pool.glob("*.whl")) == [three.file.filename, two.file.filename]
    assert set(early.arrived) == {one.file.filename, two.file.filename, three.file.filename}
    # Each file arrived checked: the wheelhouse knows its sha256 without reading it again.
    assert wheelhouse._hashes[two.file.filename][3] == two.file.sha256
    assert set(fingerprints) == {"two", "three"} and all(fingerprints.values())


def test_a_file_the_pool_had_before_is_never_removed(index, tmp_path):
    wheelhouse = Wheelhouse(tmp_path / "wheelhouse")
    one = pin(index, "one-1.0-py3-none-any.whl")
    wheelhouse.pool.mkdir(parents=True)
    shutil.copy(index.root / "files" / one.file.filename, wheelhouse.pool)
    index.clear()
    early, _ = run(index, wheelhouse, [([one], False), ([], True)], set())
    assert (wheelhouse.pool / one.file.filename).is_file() and index.file_requests() == []


@pytest.mark.parametrize("made_here", [True, False])
def test_a_wheel_built_from_a_dropped_sdist_goes_only_if_this_run_built_it(index, tmp_path, made_here):
    wheelhouse = Wheelhouse(tmp_path / "wheelhouse")
    plain = pin(index, "plain-1.0.tar.gz")
    built = wheelhouse.pool / "plain-1.0-py3-none-any.whl"

    def build(p: Pin) -> LockedFile | None:
        assert (wheelhouse.sdists / p.file.filename).is_file(), "built before its sdist arrived"
        built.write_bytes(b"a wheel")
        return LockedFile(p.name, p.version, built.name, "", sha256_file(built), 7) if made_here else None

    run(index, wheelhouse, [([plain], False), ([], True)], set(), build)
    assert built.exists() != made_here
    assert not (wheelhouse.sdists / plain.file.filename).exists()


def test_a_selection_is_fetched_on_its_pages_word_and_the_page_read_once(index, tmp_path):
    """What uv's resolver selects while it runs: fetched at once; one reading of its page serves every target
    and gives the page's fingerprint too."""
    wheelhouse = Wheelhouse(tmp_path / "wheelhouse")
    one = pin(index, "one-1.0-py3-none-any.whl")
    index.clear()
    with EarlyWork(wheelhouse, index, lambda pin: None) as early:
        early.guess("win313", "one", "1.0", one.file.filename)
        early.guess("win313", "one", "0.9", "one-0.9-py3-none-any.whl")  # backtracking: not taken
        early.guess("mac312", "one", "1.0", one.file.filename)  # another target, the same release: no page again
        early.guess("win313", "three", "1.0", "three-1.0-py3-none-any.whl")  # a guess the final pins drop
        early.guess("win313", "two", "9.9", "two-9.9-py3-none-any.whl")  # a file its page does not list
        early.guess("win313", "plain", "1.0", "plain-1.0.tar.gz")  # an sdist: the prebuild's and the pins'
        deadline = time.monotonic() + 30
        while one.file.filename not in early.arrived and time.monotonic() < deadline:
            time.sleep(0.01)
        assert one.file.filename in early.arrived  # before any round's pins were handed over
        early.hand_over([one], True)
        fingerprints = early.finish({one.file.filename}, {"one"})
    assert sorted(p.name for p in wheelhouse.pool.iterdir() if not p.name.startswith(".")) == [one.file.filename]
    assert fingerprints["one"] and index.counts["/simple/one/"] == 1
    assert sorted(index.file_requests()) == sorted([f"/files/{one.file.filename}", "/files/three-1.0-py3-none-any.whl"])
    assert "/simple/plain/" not in index.counts
