"""What the online tasks print: one table a run, so a scheduled job's log says what changed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.markup import escape

from devpi_airgap.core.advisories import BLOCKED
from devpi_airgap.core.audit import AuditReport
from devpi_airgap.core.console import err, human_bytes, out, table
from devpi_airgap.core.licenses import DENIED, REVIEW
from devpi_airgap.online.download import TargetChanges, TargetReport
from devpi_airgap.online.refresh import RefreshPlan
from devpi_airgap.online.report import EXTRA, MISSING, PRESENT, TOTAL_LABELS, Matrix, cell, totals
from devpi_airgap.online.verify import VerifyReport
from devpi_airgap.transfer.bundle import BundlePlan
from devpi_airgap.transfer.parts import listed_parts


def print_download(reports: list[TargetReport], seconds: float) -> None:
    rows = [
        [
            r.name,
            r.packages,
            r.files,
            r.new_files,
            human_bytes(r.new_bytes),
            f"{r.seconds:.1f}",
            "updated" if r.lock_changed else "unchanged",
        ]
        for r in reports
    ]
    out.print(table("downloaded", ["target", "packages", "files", "new files", "new bytes", "seconds", "lock"], rows))
    if not any(r.new_files or r.lock_changed for r in reports):
        out.print(f"no changes: every target's wheelhouse was already complete ({seconds:.1f} s)")
    else:
        total = sum(r.new_bytes for r in reports)
        out.print(f"{sum(r.new_files for r in reports)} new files, {human_bytes(total)}, in {seconds:.1f} s")


def print_download_check(planned: list[TargetChanges]) -> None:
    rows = [
        [
            c.name,
            "anew" if c.resolved_anew else "lock current",
            sum(map(len, c.packages.values())) or "-",
            f"{c.fetch_files}, {human_bytes(c.fetch_bytes)}" if c.fetch_files else "-",
            len(c.builds) or "-",
            c.link_files or "-",
        ]
        for c in planned
    ]
    columns = ["target", "resolved", "packages changing", "files to fetch", "sdists to build", "files to link"]
    out.print(table("download --check", columns, rows, right_from=2))
    for c in planned:
        _print_package_changes(c.name, c.packages, None if c.has_lock else "no lock yet; {} packages to lock")
    changing = [c.name for c in planned if c.changes]
    if not changing:
        out.print("no changes: every target's wheelhouse is complete and its lock current")
    else:
        out.print(f"{len(changing)} target(s) would change: {', '.join(changing)} (--check: nothing was changed)")


def print_bundle_check(plan: BundlePlan) -> None:
    targets = sorted(plan.changes)
    rows = []
    for name in targets:
        carried = [f for f in plan.files if name in f["targets"]]
        counts = [len(plan.changes[name][kind]) or "-" for kind in ("new", "updated", "removed")]
        size = human_bytes(sum(f["size"] for f in carried)) if carried else "-"
        rows.append([name, len(carried) or "-", size, *counts])
    columns = ["target", "files to carry", "bytes", "new", "updated", "removed"]
    out.print(table("bundle --check: since the last bundle", columns, rows, right_from=1))
    for name in targets:
        first = "in no bundle yet; {} packages, all new" if name in plan.first else None
        _print_package_changes(name, plan.changes[name], first)
    if not plan.files:
        out.print(
            "nothing new: every file was in an earlier bundle (use --full for all) (--check: nothing was written)"
        )
        return
    left_out = f"; {_files(plan.left_out)} left out, as an earlier bundle carried them" if plan.left_out else ""
    if plan.part_size and plan.size > plan.part_size:  # the files alone: the whole, with its documents, is larger
        left_out += f"; in {-(-plan.size // plan.part_size)} or more parts of {human_bytes(plan.part_size)}"
    out.print(
        f"the next bundle would carry {_files(len(plan.files))}, {human_bytes(plan.size)}{left_out} "
        "(--check: nothing was written)",
        highlight=False,
    )


def _print_package_changes(name: str, changes: dict[str, list[str]], all_new: str | None) -> None:
    """One line for each package new, updated or removed; or, where `all_new` says every package is new, that line
    with their number instead: the names would bury the changes of the other targets."""
    if all_new is not None:
        out.print(f"  {name}: {all_new.format(len(changes['new']))}", highlight=False)
        return
    for kind, packages in changes.items():
        for package in packages:
            out.print(f"  {name}: {kind} {package}", highlight=False)


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def print_verify(reports: list[VerifyReport]) -> None:
    rows = [[r.name, r.sets, r.native, "ok" if r.ok else "FAILED"] for r in reports]
    out.print(
        table("verified offline", ["target", "resolution sets", "native pip install", "result"], rows, right_from=1)
    )
    failed = [r for r in reports if not r.ok]
    for r in failed:
        for problem in r.problems:
            err.print(f"[bold red]{r.name}[/]: {problem}", markup=True, highlight=False)


def print_refresh_check(plan: RefreshPlan) -> None:
    print_download_check(plan.targets)
    built = f", and {plan.builds} wheel(s) to build from sdists" if plan.builds else ""
    if not plan.bundle_files and not plan.builds:
        out.print("its bundle: nothing new, every file was in an earlier bundle (--check: nothing was changed)")
    else:
        out.print(
            f"its bundle would carry {_files(plan.bundle_files)}, {human_bytes(plan.bundle_bytes)}{built} "
            "(--check: nothing was changed)",
            highlight=False,
        )


def print_bundle_written(path: Path | None, nothing: str) -> None:
    """The bundle's path, last, as scripts read it; a bundle carried in parts names them first."""
    if path is None:
        print(nothing)  # noqa: T201
        return
    parts = sorted(listed_parts(path))
    if parts:
        beside = " and .sig" if path.with_name(path.name + ".sig").exists() else ""
        err.print(
            f"cut into {len(parts)} parts by bundles.part_size: {parts[0]} to {parts[-1]}; carry them all, with "
            f"{path.name}.sha256{beside}, and give `fab deploy --bundle` the bundle's own name below"
        )
    print(path)  # noqa: T201


def print_refresh(report: dict[str, dict[str, list]]) -> None:
    rows = [[target, "; ".join(c["new"]) or "-", "; ".join(c["updated"]) or "-"] for target, c in report.items()]
    out.print(table("refresh", ["target", "new", "updated"], rows, right_from=3))


_STYLE = {PRESENT: "", MISSING: "bold red", EXTRA: "dim", "": "dim"}


def print_matrix(matrix: Matrix) -> None:
    def styled(text: str, state: str) -> str:
        style = _STYLE[state]
        return f"[{style}]{escape(text)}[/]" if style else escape(text)

    rows = [
        [
            package,
            escape(matrix.licenses.get(package, "")),
            escape(matrix.advisories.get(package, "")),
            *(", ".join(styled(*piece) for piece in cell(c, package)) for c in matrix.columns),
        ]
        for package in matrix.packages
    ]
    columns = ["package", "license", "advisories", *(c.name for c in matrix.columns)]
    # Versions read best left-aligned, like the package names beside them.
    t = table("wheelhouse matrix", columns, rows, right_from=len(columns))
    # A shortened package name is a wrong one; let the version cells wrap instead.
    t.columns[0].no_wrap = True
    t.columns[0].min_width = max(map(len, matrix.packages), default=7)
    t.add_section()
    for i, label in enumerate(TOTAL_LABELS):
        t.add_row(
            f"[bold]{label}[/]",
            "",
            "",
            *(
                styled(totals(c)[i], "" if not c.downloaded else MISSING if i == 3 and c.missing_files else PRESENT)
                for c in matrix.columns
            ),
        )
    out.print(t)
    out.print(f"pool: {matrix.pool_files} distinct files, {human_bytes(matrix.pool_bytes)}; {escape(matrix.audited)}")


def print_report(matrix: Matrix, html: Path | None) -> None:
    print_matrix(matrix)
    if html:
        out.print(f"HTML report: {html}")
    pending = [c.name for c in matrix.columns if not c.downloaded]
    if pending:
        out.print(f"not downloaded yet: {', '.join(pending)} (run `inv download --target {','.join(pending)}`)")


def print_audit(report: AuditReport) -> None:
    rows = []
    for t in report.targets:
        verdicts = Counter(f.verdict for f in t.licenses)
        blocking = sum(f.verdict == BLOCKED for f in t.advisories)
        rows.append(
            [
                t.target,
                len(t.licenses),
                verdicts.get(DENIED, 0),
                verdicts.get(REVIEW, 0) if report.policy.licenses else "-",
                len(t.advisories) if report.policy.advisories else "-",
                blocking if report.policy.advisories else "-",
            ]
        )
    out.print(table("audit", ["target", "files", "denied", "license review", "advisories", "blocking"], rows))
    if report.policy.licenses is None:
        out.print("licenses read but not judged: the inventory has no policy.licenses")
    if report.snapshot is None:
        out.print("advisories not checked: the inventory has no policy.advisories")
    else:
        out.print(f"advisories: {len(report.snapshot.vulns)} records from {escape(report.snapshot.source)}")
    for f in report.review():
        out.print(
            f"needs review: {escape(f.filename)}: {escape(f.license.expression or f.license.raw or 'no license')} ({escape(f.reason)})"
        )
    for line in report.expired_waivers():
        err.print(f"expired waiver: {escape(line)}")
