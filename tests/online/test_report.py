"""`inv report` on a fabricated project: no network, locks and wheel files written by hand."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser

import pytest

from devpi_airgap.core.wheelhouse import POOL
from testing.tasks import run_task

INVENTORY = """
targets:
  win313:
    platform: win_amd64
    python: "3.13"
    requirements: [req.txt]
  server:
    platform: manylinux_2_28_x86_64
    python: "3.11"
    requirements: [req.txt]
  mac312:
    platform: macosx_14_0_arm64
    python: "3.12"
    requirements: [req.txt]
"""

# (name, version, filename, size) per target; mac312 has no lock at all.
LOCKED = {
    "win313": [
        ("colorama", "0.4.6", "colorama-0.4.6-py2.py3-none-any.whl", 700),
        ("requests", "2.32.0", "requests-2.32.0-py3-none-any.whl", 1200),
        ("setuptools", "79.0.1", "setuptools-79.0.1-py3-none-any.whl", 3000),
        ("setuptools", "80.9.0", "setuptools-80.9.0-py3-none-any.whl", 3100),
        ("setuptools", "81.0.0", "setuptools-81.0.0-py3-none-any.whl", 3200),
    ],
    "server": [
        ("requests", "2.32.0", "requests-2.32.0-py3-none-any.whl", 1200),
        ("setuptools", "81.0.0", "setuptools-81.0.0-py3-none-any.whl", 3200),
        ("uvloop", "0.21.0", "uvloop-0.21.0-cp311-cp311-manylinux_2_28_x86_64.whl", 4000),
    ],
}
# Locked for server, but never made it into wheelhouse/server/.
ABSENT = {("server", "uvloop-0.21.0-cp311-cp311-manylinux_2_28_x86_64.whl")}


def fabricate(root):
    (root / "req.txt").write_text("requests\nsetuptools\n")
    (root / "inventory.yaml").write_text(INVENTORY)
    pool = root / "wheelhouse" / POOL
    pool.mkdir(parents=True)
    (pool / ".sha256.json").write_text("{}")  # bookkeeping, not a carried file
    for target, files in LOCKED.items():
        directory = root / "wheelhouse" / target
        directory.mkdir()
        packages = []
        for name, version, filename, size in files:
            packages.append(
                {
                    "name": name,
                    "version": version,
                    "filename": filename,
                    "size": size,
                    "url": f"https://index.invalid/files/{filename}",
                    "sha256": "0" * 64,
                    "built_from": None,
                    "sets": ["req.txt"],
                }
            )
            if (target, filename) in ABSENT:
                continue
            if not (pool / filename).exists():
                (pool / filename).write_bytes(b"x" * size)
            os.link(pool / filename, directory / filename)
        (root / "locks").mkdir(exist_ok=True)
        (root / "locks" / f"{target}.lock.json").write_text(
            json.dumps({"implementation": "cp", "index_url": None, "packages": packages})
        )


class Cells(HTMLParser):
    """The text of every table cell, row by row, and the sections they sit in."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {"thead": [], "tbody": [], "tfoot": []}
        self.section = None
        self.in_cell = False
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.rows:
            self.section = tag
        elif tag == "tr":
            self.rows[self.section].append([])
        elif tag in ("td", "th"):
            self.in_cell = True
            self.rows[self.section][-1].append("")
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.in_cell = False

    def handle_data(self, data):
        if self.in_cell:
            self.rows[self.section][-1][-1] += data


@pytest.fixture
def project(tmp_path):
    fabricate(tmp_path)
    return tmp_path


def test_report_shows_versions_missing_files_and_totals(project):
    html_path = project / "out" / "report.html"
    result = run_task(
        "report",
        "--inventory",
        str(project / "inventory.yaml"),
        "--html",
        str(html_path),
        env=dict(os.environ, COLUMNS="200"),
    )
    text = result.stdout
    # A missing locked file means the wheelhouse cannot be trusted: exit 4, naming the file.
    assert result.returncode == 4, result.stdout + result.stderr
    assert "uvloop-0.21.0-cp311-cp311-manylinux_2_28_x86_64.whl" in result.stderr
    assert "inv download --locked --target server" in result.stderr

    # The license and advisory columns stay empty until an audit has run (tests/online/test_audit.py fills them).
    cells_of = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in text.splitlines()
        if line.startswith("│")
    }
    assert all(cells[:2] == ["", ""] for cells in cells_of.values())
    rows = {name: cells[2:] for name, cells in cells_of.items()}
    assert "not audited yet: run `inv audit`" in text
    assert rows["setuptools"] == ["79.0.1, 80.9.0, 81.0.0", "81.0.0", "not downloaded"]
    assert rows["colorama"] == ["0.4.6", "—", "not downloaded"]
    assert rows["uvloop"] == ["—", "missing 0.21.0", "not downloaded"]
    assert rows["packages"] == ["3", "3", "not downloaded"]
    assert rows["files"] == ["5", "3", "not downloaded"]
    assert rows["size"] == ["11.2 kB", "8.4 kB", "not downloaded"]
    assert rows["missing files"] == ["0", "1", "not downloaded"]
    # Shared files are counted once: colorama, requests, three setuptools, none of the absent uvloop.
    assert "pool: 5 distinct files, 11.2 kB" in text
    assert "not downloaded yet: mac312" in text

    page = html_path.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)\s*=|https?://|@import|url\(", page), "the page must work offline"
    assert 'addEventListener("click"' in page and "aria-sort" in page
    cells = Cells()
    cells.feed(page)
    assert cells.scripts == 1
    assert cells.rows["thead"] == [["package", "license", "advisories", "win313", "server", "mac312"]]
    body = {row[0]: row[3:] for row in cells.rows["tbody"]}
    assert body == {
        "colorama": ["0.4.6", "—", "not downloaded"],
        "requests": ["2.32.0", "2.32.0", "not downloaded"],
        "setuptools": ["79.0.1, 80.9.0, 81.0.0", "81.0.0", "not downloaded"],
        "uvloop": ["—", "missing 0.21.0", "not downloaded"],
    }
    foot = {row[0]: row[3:] for row in cells.rows["tfoot"]}
    assert foot["files"] == ["5", "3", "not downloaded"]
    assert foot["missing files"] == ["0", "1", "not downloaded"]
    assert '<span class="missing">missing 0.21.0</span>' in page


def test_complete_wheelhouse_exits_0_and_html_can_be_disabled(project):
    # Supply the absent file, and leave an older file the lock no longer names.
    server = project / "wheelhouse" / "server"
    (server / "uvloop-0.21.0-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"x" * 4000)
    (server / "requests-2.31.0-py3-none-any.whl").write_bytes(b"x" * 10)
    result = run_task(
        "report",
        "--inventory",
        str(project / "inventory.yaml"),
        "--html",
        "",
        cwd=project,
        env=dict(os.environ, COLUMNS="200"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "missing" not in result.stdout.replace("missing files", "")
    requests_row = next(line for line in result.stdout.splitlines() if line.startswith("│ requests "))
    assert "extra 2.31.0, 2.32.0" in requests_row
    assert not list(project.rglob("*.html"))


def test_the_html_goes_into_the_inventorys_wheelhouse_wherever_inv_runs(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    env = dict(os.environ, COLUMNS="400")  # the path on one line
    result = run_task("report", "--inventory", str(project / "inventory.yaml"), cwd=elsewhere, env=env)
    assert result.returncode == 4, result.stdout + result.stderr  # the fabricated wheelhouse lacks a file
    written = project / "wheelhouse" / "report.html"
    assert written.is_file() and "<table" in written.read_text(encoding="utf-8")
    assert list(elsewhere.iterdir()) == []
    assert f"HTML report: {written}" in result.stdout
