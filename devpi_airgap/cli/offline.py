"""What the offline tasks print: each step as it happens, then what a deploy did and where users point pip."""

from __future__ import annotations

from rich.markup import escape

from devpi_airgap.core.console import err, out, table
from devpi_airgap.offline.backup import BackupPlan, Restored, RestorePlan
from devpi_airgap.offline.deploy import DeployResult
from devpi_airgap.offline.rescan import Rescan
from devpi_airgap.offline.status import ServerStatus
from devpi_airgap.offline.steps import Outcome


def step_printer(check: bool):
    """The Runner's on_outcome: one line a step on stderr, so a log shows every step in order."""

    def show(outcome: Outcome) -> None:
        if not outcome.changes:
            err.print(f"  [green]ok[/] {outcome.step}")
            return
        mark = "[cyan]would change[/]" if check else "[yellow]changed[/]"
        err.print(f"  {mark} {outcome.step}: {', '.join(outcome.changes)}")

    return show


def say_deploying(host_name: str, address: str, what: str, target: str, check: bool) -> None:
    verb = "checking (--check: nothing on the server is touched)" if check else "deploying"
    err.print(f"{verb} {what} on {host_name} ({address}) from target {target!r}")


def say_waiting(why: str) -> None:
    err.print(f"[yellow]waiting:[/] {escape(why)}")


def say_bundle_checked(where: str, name: str, manifest: dict) -> None:
    if where == "here":
        err.print(f"{name}: checksum, manifest and {manifest['signature']} ok here; {len(manifest['files'])} files")
    else:
        err.print(f"{name}: checked on {where} too")


def print_deploy(result: DeployResult) -> None:
    for name, reason in result.conflicts:
        err.print(f"  [red]conflict[/] {name}: {reason}")
    changed = sum(1 for outcome in result.outcomes if outcome.changes)
    if result.check:
        out.print("no changes" if not changed else f"{changed} steps would change something (nothing was changed)")
        return
    out.print("no changes" if not changed else f"{changed} steps changed something")
    if result.user_url:
        trust = f" --trusted-host {result.trusted_host}" if result.trusted_host else ""
        out.print(f"users install with: pip install --index-url {result.user_url}{trust} PACKAGE")
    if result.rescan:
        print_rescan(result.rescan)


def print_rescan(report: Rescan) -> None:
    """Every advisory affecting a file on the live index; the ones this snapshot newly reports are marked."""
    rows = [
        [
            f.name,
            f.version,
            f.id,
            f.severity or "unknown",
            ", ".join(f.fixed) or "-",
            f.verdict,
            "new" if (f.id, f.name, f.version) in report.new else "",
        ]
        for f in report.findings
    ]
    out.print(
        f"advisories from {escape(report.source)} ({escape(report.fetched)}) against {report.files} files on the index"
    )
    out.print(
        table("advisories on the live index", ["project", "version", "id", "severity", "fixed in", "verdict", ""], rows)
        if rows
        else "no file on the index is affected"
    )
    if report.blocked:
        out.print(
            f"{len(report.blocked)} affected at or above the policy's threshold; nothing was changed. "
            "To take a version back: `inv recall NAME==VERSION --reason TEXT` online, then deploy that bundle"
        )


def print_upload(result: DeployResult) -> None:
    for name, reason in result.conflicts:
        err.print(f"  [red]conflict[/] {name}: {reason}")
    if not result.changed:
        out.print("no changes")
    else:
        out.print("files to upload (nothing was changed)" if result.check else "uploaded")


def _names(names: list[str]) -> str:
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def print_backup_check(plan: BackupPlan) -> None:
    data = f"{plan.data_bytes / 1e6:.1f} MB of data"
    if plan.stops_service:
        out.print(
            f"devpi on {plan.host} would stop while devpi-export reads its {data}, and start again after it: "
            "installs from the index fail meanwhile"
        )
    else:
        out.print(f"devpi is not running on {plan.host}: devpi-export would read its {data} without a stop")
    out.print(f"the backup would be copied to {plan.written_to}")
    if plan.removed_here:
        out.print(f"older backups it would remove there: {_names([p.name for p in plan.removed_here])}")
    if plan.removed_there:
        out.print(f"older backups it would remove on {plan.host}: {_names(plan.removed_there)}")
    out.print("(--check: nothing was changed)")


def print_restore_check(plan: RestorePlan) -> None:
    out.print(f"{plan.backup} holds {len(plan.in_backup)} files of {plan.index}")
    if plan.left_out:
        out.print(f"left out, as recalled on this server since: {_names(plan.left_out)}")
    if plan.now is None:
        out.print(f"devpi is not running there: a restore would put {len(plan.restored)} files in place")
    elif not plan.dropped and not plan.returned:
        out.print(f"the index holds the same {len(plan.now)} files: a restore would change none of them")
    else:
        if plan.dropped:
            out.print(
                f"a restore would drop {len(plan.dropped)} files the index holds now (a deploy after it uploads "
                f"those still in the wheelhouse again): {_names(plan.dropped)}"
            )
        if plan.returned:
            out.print(f"a restore would bring back {len(plan.returned)} files removed since: {_names(plan.returned)}")
    out.print("(--check: nothing was changed)")


def print_restored(source: str, restored: Restored, replicas: list[str]) -> None:
    if restored.left_out:
        err.print(f"left out, as recalled on this server since the backup: {_names(restored.left_out)}")
    if replicas:
        err.print(
            f"{', '.join(replicas)} still serve the data from before the restore: deploy them again "
            f"(`fab -H {restored.host},{','.join(replicas)} deploy`), which sets their data aside and follows anew"
        )
    out.print(f"restored {source}; the data it replaced is kept on the server in {restored.aside}")


def print_status(status: ServerStatus) -> None:
    out.print(table(f"devpi on {status.host}", ["what", "state"], [list(row) for row in status.rows], right_from=2))
    rows = [
        [b["bundle_id"], b["files"], "full" if b["full"] else "delta", b["signature"], b["imported"]]
        for b in status.imported
    ]
    out.print(
        table("imported bundles", ["bundle", "files", "kind", "signature", "imported"], rows, right_from=1)
        if rows
        else "no bundles imported yet"
    )
    last = next((b["evidence"] for b in reversed(status.imported) if b.get("evidence")), None)
    if last:
        out.print(
            f"last evidence: {last['licenses checked']} licenses checked, {last['advisories']} advisories "
            f"({last['waived']} waived), {len(last['review'])} open review items"
        )
        for item in last["review"]:
            out.print(f"  needs review: {escape(item)}")
    for filename, entry in sorted(status.recalled.items()):
        out.print(
            f"recalled: {escape(filename)} ({escape(entry['name'])}=={escape(entry['version'])}: {escape(entry['reason'])})"
        )
