"""Fetcher against the fake index: every file checked against the index's sha256, nothing half-written kept."""

from __future__ import annotations

import gzip
import hashlib
import os
import time

import pytest

from devpi_airgap.core.errors import FetchError
from devpi_airgap.core.files import sha256_file
from devpi_airgap.online.fetch import Fetcher
from devpi_airgap.online.resolve import FileRef
from testing.fakeindex import Dist, build_index, serve_index
from testing.loopback import send, serving


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = build_index(tmp_path_factory.mktemp("index"), [Dist("one", "1.0"), Dist("two", "1.0")])
    with serve_index(root) as url:
        yield root, url


def fetch_all(refs, directory, **callbacks) -> None:
    with Fetcher(**callbacks) as fetcher:
        fetcher.add(refs, directory)
        fetcher.wait()


def ref(root, url, name: str, sha256: str | None = None) -> FileRef:
    path = root / "files" / name
    return FileRef(name, f"{url.files_url}/{name}", sha256 or sha256_file(path), path.stat().st_size)


def test_files_arrive_whole_and_are_reported_done(served, tmp_path):
    root, url = served
    done: list[str] = []
    refs = [ref(root, url, "one-1.0-py3-none-any.whl"), ref(root, url, "two-1.0-py3-none-any.whl")]
    fetch_all(refs, tmp_path, on_done=lambda r: done.append(r.filename))
    assert sorted(done) == sorted(r.filename for r in refs)
    assert all(sha256_file(tmp_path / r.filename) == r.sha256 for r in refs)


def test_a_file_that_does_not_match_the_index_is_not_kept(served, tmp_path):
    root, url = served
    good = ref(root, url, "one-1.0-py3-none-any.whl")
    wrong = ref(root, url, "two-1.0-py3-none-any.whl", sha256="0" * 64)
    with pytest.raises(FetchError, match="1 of 2 downloads failed") as failure:
        fetch_all([good, wrong], tmp_path)
    assert "does not match the index's" in str(failure.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.filename]  # no .part, no wrong file


def test_a_missing_file_names_its_url(served, tmp_path):
    root, url = served
    gone = FileRef("gone-1.0-py3-none-any.whl", f"{url.files_url}/gone-1.0-py3-none-any.whl", "0" * 64, 10)
    with pytest.raises(FetchError, match="gone-1.0-py3-none-any.whl"):
        fetch_all([gone], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_files_added_while_others_arrive_are_fetched_once_each(served, tmp_path):
    root, url = served
    url.clear()
    one, two = ref(root, url, "one-1.0-py3-none-any.whl"), ref(root, url, "two-1.0-py3-none-any.whl")
    done: list[str] = []
    with Fetcher(on_done=lambda r: done.append(r.filename)) as fetcher:
        fetcher.add([one], tmp_path)
        fetcher.add([one, two], tmp_path)  # as a second resolution naming a file the first one named
        fetcher.wait()
    assert sorted(done) == [one.filename, two.filename]
    assert sorted(url.file_requests()) == [f"/files/{one.filename}", f"/files/{two.filename}"]


def test_a_failed_file_nobody_needs_any_more_does_not_fail_the_run(served, tmp_path):
    root, url = served
    good = ref(root, url, "one-1.0-py3-none-any.whl")
    guess = FileRef("gone-1.0-py3-none-any.whl", f"{url.files_url}/gone-1.0-py3-none-any.whl", "0" * 64, 10)
    with Fetcher() as fetcher:
        fetcher.add([good, guess], tmp_path)
        fetcher.wait(needed={good.filename})
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.filename]
    with Fetcher() as fetcher, pytest.raises(FetchError, match="gone-1.0"):
        fetcher.add([guess], tmp_path / "again")
        fetcher.wait(needed={guess.filename})


def test_a_file_added_again_first_moves_up(served, tmp_path):
    root, url = served
    one, two = ref(root, url, "one-1.0-py3-none-any.whl"), ref(root, url, "two-1.0-py3-none-any.whl")
    url.clear()
    url.file_seconds = 0.5  # the one worker is busy with `one` while the others are queued
    try:
        with Fetcher(workers=1) as fetcher:
            fetcher.add([one], tmp_path / "a")
            fetcher.add([two], tmp_path / "a")
            fetcher.add([one], tmp_path / "b")
            fetcher.add([one], tmp_path / "b", first=True)  # as the target this machine runs asks for it
            fetcher.wait()
    finally:
        url.file_seconds = 0
    assert url.file_requests() == [f"/files/{one.filename}", f"/files/{one.filename}", f"/files/{two.filename}"]


def test_of_the_files_waiting_the_largest_goes_first(served, tmp_path):
    """A big file selected last must not wait behind every small one: its target is complete only once it is in."""
    root, url = served
    big = root / "files" / "big-1.0-py3-none-any.whl"
    big.write_bytes(os.urandom(1 << 20))
    one, two = ref(root, url, "one-1.0-py3-none-any.whl"), ref(root, url, "two-1.0-py3-none-any.whl")
    url.clear()
    url.file_seconds = 0.5  # the one worker is busy with `one` while the others are queued
    try:
        with Fetcher(workers=1) as fetcher:
            fetcher.add([one], tmp_path)
            deadline = time.monotonic() + 10
            while not url.file_requests() and time.monotonic() < deadline:  # taken: the rest now wait
                time.sleep(0.01)
            fetcher.add([two], tmp_path)
            fetcher.add([ref(root, url, big.name)], tmp_path)
            fetcher.wait()
    finally:
        url.file_seconds = 0
        big.unlink()
    assert url.file_requests() == [f"/files/{one.filename}", f"/files/{big.name}", f"/files/{two.filename}"]


def test_a_server_that_compresses_anyway_still_gives_the_files_bytes(tmp_path):
    """Files are asked for as they are; a server gzipping them regardless is undone, then checked."""
    content = b"a wheel's bytes " * 1000

    def gzipping(handler, seen):
        send(handler, 200, gzip.compress(content), Content_Encoding="gzip")

    with serving(gzipping) as (host, seen):
        url = f"http://{host}/one-1.0-py3-none-any.whl"
        fetch_all([FileRef("one-1.0-py3-none-any.whl", url, hashlib.sha256(content).hexdigest(), None)], tmp_path)
    asked = [headers.get("Accept-Encoding") for _, _, headers in seen.requests]
    assert asked == ["identity"]
    assert (tmp_path / "one-1.0-py3-none-any.whl").read_bytes() == content
