"""freshness: a page's fingerprint changes with its list of files, and only then."""

from __future__ import annotations

import pytest

from devpi_airgap.online import freshness
from devpi_airgap.online.freshness import FreshnessRecord, page_fingerprints
from testing.fakeindex import Dist, add_release, build_index, serve_index


@pytest.fixture
def index(tmp_path):
    with serve_index(build_index(tmp_path / "index", [Dist("lib", "1.0"), Dist("app", "1.0")])) as served:
        yield served


def recorded(tmp_path, index):
    record = FreshnessRecord(tmp_path / "freshness.json")
    record.record("t", "inputs", page_fingerprints(index, {"lib", "app"}, {}))
    record.save()
    return FreshnessRecord(tmp_path / "freshness.json")


def test_identical_bytes_are_not_parsed_again(tmp_path, index, monkeypatch):
    record = recorded(tmp_path, index)

    def parse(content_type, body):
        raise AssertionError(f"a page was parsed although its bytes had not changed: {body[:80]!r}")

    monkeypatch.setattr(freshness, "page_filenames", parse)
    current = page_fingerprints(index, {"lib", "app"}, record.pages("t"))
    assert record.unchanged("t", "inputs", current)


def test_new_bytes_with_the_same_files_are_still_fresh(tmp_path, index):
    record = recorded(tmp_path, index)
    page = index.root / "simple" / "lib" / "index.html"
    page.write_text(page.read_text().replace("Links for lib", "Links for lib, served again"))
    current = page_fingerprints(index, {"lib", "app"}, record.pages("t"))
    assert current["lib"][2] != record.pages("t")["lib"][2]
    assert record.unchanged("t", "inputs", current)


def test_a_yank_on_an_html_page_makes_the_target_stale(tmp_path, index):
    record = recorded(tmp_path, index)
    page = index.root / "simple" / "lib" / "index.html"
    assert page.read_text().count("<a href=") == 1
    page.write_text(page.read_text().replace("<a href=", '<a data-yanked="broken" href='))
    assert not record.unchanged("t", "inputs", page_fingerprints(index, {"lib", "app"}, record.pages("t")))


def test_a_new_file_makes_the_target_stale(tmp_path, index):
    record = recorded(tmp_path, index)
    add_release(index.root, Dist("lib", "1.1"))
    assert not record.unchanged("t", "inputs", page_fingerprints(index, {"lib", "app"}, record.pages("t")))


def test_a_page_that_cannot_be_read_proves_nothing(tmp_path, index):
    record = recorded(tmp_path, index)
    current = page_fingerprints(index, {"lib", "app"}, record.pages("t"))
    current["app"] = None
    assert not record.unchanged("t", "inputs", current)
