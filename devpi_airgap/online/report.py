"""The wheelhouse matrix: which version of each package every target carries, and what is missing.

One matrix feeds two views: a terminal table and a self-contained HTML file
that someone on either side of the gap can open without network access.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from devpi_airgap.core.console import human_bytes
from devpi_airgap.core.errors import VerificationError
from devpi_airgap.core.files import atomic_write
from devpi_airgap.core.inventory import Inventory
from devpi_airgap.core.lock import read_lock
from devpi_airgap.core.wheelhouse import POOL
from devpi_airgap.online.audit import AUDITED

NOT_NEEDED = "—"
NOT_DOWNLOADED = "not downloaded"

# A version's state in one target directory.
PRESENT, MISSING, EXTRA = "present", "missing", "extra"


@dataclass
class Column:
    """One target: its lock, checked against the files actually in wheelhouse/TARGET/."""

    name: str
    downloaded: bool  # False: no lock yet, so nothing can be said about its packages
    versions: dict[str, dict[str, str]] = field(default_factory=dict)  # package -> version -> state
    files: int = 0
    bytes: int = 0
    missing_files: list[str] = field(default_factory=list)

    @property
    def packages(self) -> int:
        return sum(1 for states in self.versions.values() if any(s != EXTRA for s in states.values()))


@dataclass
class Matrix:
    columns: list[Column]
    packages: list[str]
    pool_files: int
    pool_bytes: int
    licenses: dict[str, str] = field(default_factory=dict)  # package -> its files' licenses, from the last audit
    advisories: dict[str, str] = field(default_factory=dict)  # package -> advisories found by the last audit
    audited: str = "not audited yet: run `inv audit`"  # or what the last audit covered


def _version_key(version: str):
    try:
        return (0, Version(version), "")
    except InvalidVersion:
        return (1, Version("0"), version)


def _column(inv: Inventory, target) -> Column:
    lock = inv.lock_path(target)
    if not lock.exists():
        return Column(target.name, downloaded=False)
    _, locked = read_lock(lock)
    directory = inv.target_dir(target)
    on_disk = set(os.listdir(directory)) if directory.is_dir() else set()
    column = Column(target.name, downloaded=True, files=len(locked), bytes=sum(f.size for f in locked))
    for f in locked:
        states = column.versions.setdefault(f.name, {})
        if f.filename in on_disk:
            states.setdefault(f.version, PRESENT)
        else:
            # One absent file makes the version missing, even if a sibling wheel of it is there.
            states[f.version] = MISSING
            column.missing_files.append(f.filename)
    # Target directories keep older files the lock no longer names, and deploy
    # uploads them too, so they are part of what the offline index will serve.
    for filename in sorted(on_disk - {f.filename for f in locked}):
        try:
            name, version, _, _ = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            continue
        column.versions.setdefault(name, {}).setdefault(str(version), EXTRA)
    return column


def _pool_totals(inv: Inventory) -> tuple[int, int]:
    """Distinct files and bytes: each is stored once in the pool however many targets link it."""
    pool = inv.wheelhouse / POOL
    if not pool.is_dir():
        return 0, 0
    # Dot-entries are our own bookkeeping (hash cache, built sdists), not files a target carries.
    sizes = [entry.stat().st_size for entry in os.scandir(pool) if entry.is_file() and not entry.name.startswith(".")]
    return len(sizes), sum(sizes)


def build_matrix(inv: Inventory) -> Matrix:
    columns = [_column(inv, target) for target in inv.targets.values()]
    packages = sorted({name for column in columns for name in column.versions})
    matrix = Matrix(columns, packages, *_pool_totals(inv))
    _add_audit(inv, matrix)
    return matrix


def _add_audit(inv: Inventory, matrix: Matrix) -> None:
    """The license and advisory columns, from the findings the last audit saved; nothing is read anew."""
    try:
        audit = json.loads((inv.wheelhouse / AUDITED).read_text())
    except (FileNotFoundError, ValueError):
        return
    by_package: dict[str, set[str]] = {}
    for filename, expression in audit["licenses"].items():
        try:
            name = str(parse_wheel_filename(filename)[0])
        except InvalidWheelFilename:
            continue
        by_package.setdefault(name, set()).add(expression)
    matrix.licenses = {name: ", ".join(sorted(found)) for name, found in by_package.items()}
    matrix.advisories = {name: "; ".join(lines) for name, lines in audit["advisories"].items()}
    matrix.audited = (
        "licenses and advisories from the last audit"
        if audit["advisories_checked"]
        else ("licenses from the last audit; advisories not checked (no policy.advisories)")
    )


def cell(column: Column, package: str) -> list[tuple[str, str]]:
    """(text, state) pieces of one cell; state is a version state or '' for a placeholder."""
    if not column.downloaded:
        return [(NOT_DOWNLOADED, "")]
    states = column.versions.get(package)
    if not states:
        return [(NOT_NEEDED, "")]
    return [
        (f"{state} {version}" if state != PRESENT else version, state)
        for version, state in sorted(states.items(), key=lambda item: _version_key(item[0]))
    ]


def totals(column: Column) -> list[str]:
    """The footer cells of one column: packages, files, bytes, missing files."""
    if not column.downloaded:
        return [NOT_DOWNLOADED] * 4
    return [str(column.packages), str(column.files), human_bytes(column.bytes), str(len(column.missing_files))]


TOTAL_LABELS = ["packages", "files", "size", "missing files"]


_CSS = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
thead th { background: #f0f0f0; cursor: pointer; user-select: none; position: sticky; top: 0; }
thead th[aria-sort=ascending]::after { content: " \\25B2"; }
thead th[aria-sort=descending]::after { content: " \\25BC"; }
tbody tr:nth-child(even) { background: #fafafa; }
tfoot td { background: #f0f0f0; font-weight: bold; }
.missing { color: #c00; font-weight: bold; }
.extra, .placeholder { color: #999; }
.alert { color: #c00; font-weight: bold; }
"""

# Sorts by the clicked column; a second click reverses. Numeric-aware so 10.0 follows 9.0.
_JS = """
document.querySelectorAll("thead th").forEach(function (th, index) {
  th.addEventListener("click", function () {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    document.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = th.closest("table").tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index].textContent, y = b.cells[index].textContent;
      return (ascending ? 1 : -1) * x.localeCompare(y, undefined, {numeric: true, sensitivity: "base"});
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def render_html(matrix: Matrix) -> str:
    e = html.escape

    def td(pieces: list[tuple[str, str]]) -> str:
        spans = ", ".join(f'<span class="{state or "placeholder"}">{e(text)}</span>' for text, state in pieces)
        return f"<td>{spans}</td>"

    head = "".join(
        f"<th>{e(name)}</th>" for name in ["package", "license", "advisories", *(c.name for c in matrix.columns)]
    )
    body = "\n".join(
        f"<tr><td>{e(package)}</td><td>{e(matrix.licenses.get(package, ''))}</td>"
        f"<td>{e(matrix.advisories.get(package, ''))}</td>{''.join(td(cell(c, package)) for c in matrix.columns)}</tr>"
        for package in matrix.packages
    )

    def total_td(column: Column, i: int) -> str:
        alert = ' class="missing"' if i == 3 and column.missing_files else ""
        return f"<td{alert}>{e(totals(column)[i])}</td>"

    foot = "\n".join(
        f"<tr><td>{label}</td><td></td><td></td>{''.join(total_td(c, i) for c in matrix.columns)}</tr>"
        for i, label in enumerate(TOTAL_LABELS)
    )
    missing = sum(len(c.missing_files) for c in matrix.columns)
    status = (
        f'<p class="alert">{missing} file(s) missing: run <code>inv download --locked</code></p>' if missing else ""
    )
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>wheelhouse matrix</title>
<style>{_CSS}</style></head>
<body>
<h1>wheelhouse matrix</h1>
<p>Generated {when}. Click a column header to sort. {e(NOT_NEEDED)} = not needed by that target;
<span class="missing">missing</span> = in the lock but not in the target directory;
<span class="extra">extra</span> = in the target directory but no longer in the lock.</p>
{status}
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody>
<tfoot>
{foot}
</tfoot>
</table>
<p>pool: {matrix.pool_files} distinct files, {e(human_bytes(matrix.pool_bytes))}; {e(matrix.audited)}</p>
<script>{_JS}</script>
</body></html>
"""


def write_html(matrix: Matrix, html_path: str | Path) -> Path:
    path = Path(html_path)
    atomic_write(path, render_html(matrix))
    return path


def check_complete(matrix: Matrix) -> None:
    """Fail (exit 4) when any locked file is missing from its target directory."""
    incomplete = [c for c in matrix.columns if c.missing_files]
    if incomplete:
        raise VerificationError(
            f"{sum(len(c.missing_files) for c in incomplete)} locked file(s) missing from the wheelhouse: "
            + "; ".join(f"{c.name}: {', '.join(c.missing_files)}" for c in incomplete)
            + f"; run `inv download --locked --target {','.join(c.name for c in incomplete)}`"
        )
