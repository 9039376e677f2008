"""End-of-task summaries: one table a run, so a scheduled job's log says what changed."""

from __future__ import annotations

from devpi_airgap.core.console import err, human_bytes, out, table
from devpi_airgap.online.download import TargetReport
from devpi_airgap.core.errors import VerificationError
from devpi_airgap.online.verify import VerifyReport


def print_download(reports: list[TargetReport], seconds: float) -> None:
    rows = [[r.name, r.packages, r.files, r.new_files, human_bytes(r.new_bytes), f"{r.seconds:.1f}",
             "updated" if r.lock_changed else "unchanged"] for r in reports]
    out.print(table("downloaded", ["target", "packages", "files", "new files", "new bytes", "seconds", "lock"], rows))
    if not any(r.new_files or r.lock_changed for r in reports):
        out.print(f"no changes: every target's wheelhouse was already complete ({seconds:.1f} s)")
    else:
        total = sum(r.new_bytes for r in reports)
        out.print(f"{sum(r.new_files for r in reports)} new files, {human_bytes(total)}, in {seconds:.1f} s")


def print_verify(reports: list[VerifyReport]) -> None:
    rows = [[r.name, r.sets, r.native, "ok" if r.ok else "FAILED"] for r in reports]
    out.print(table("verified offline", ["target", "resolution sets", "native pip install", "result"], rows, right_from=1))
    failed = [r for r in reports if not r.ok]
    for r in failed:
        for problem in r.problems:
            err.print(f"[bold red]{r.name}[/]: {problem}", markup=True, highlight=False)
    if failed:
        raise VerificationError(
            f"{len(failed)} target(s) cannot install offline from their wheelhouse: "
            f"{', '.join(r.name for r in failed)} (details above); re-run `inv download` for them"
        )


def print_refresh(report: dict[str, dict[str, list]]) -> None:
    rows = [[target, "; ".join(c["new"]) or "-", "; ".join(c["updated"]) or "-"] for target, c in report.items()]
    out.print(table("refresh", ["target", "new", "updated"], rows, right_from=3))
