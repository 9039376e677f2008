"""`inv audit`: the license and advisory policy over the current locks, before anything is bundled."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from packaging.utils import parse_wheel_filename

from devpi_airgap.core.advisories import Snapshot
from devpi_airgap.core.audit import AuditReport, audit_files
from devpi_airgap.core.errors import UsageError
from devpi_airgap.core.files import write_if_changed
from devpi_airgap.core.inventory import Inventory, Target
from devpi_airgap.core.licenses import LicenseCache
from devpi_airgap.core.lock import nothing_downloaded, read_lock
from devpi_airgap.core.wheelhouse import POOL
from devpi_airgap.online.osv import snapshot_for


def locked_wheels(inventory: Inventory, targets: list[Target]) -> dict[str, list[Path]]:
    """Each downloaded target's locked files, in the pool where every file is kept once; an error if none is."""
    pool = inventory.wheelhouse / POOL
    found = {
        t.name: [pool / f.filename for f in read_lock(inventory.lock_path(t))[1]]
        for t in targets
        if inventory.lock_path(t).exists()
    }
    if not found:  # an audit of nothing would pass, and `inv bundle` would print that pass before it stopped
        raise nothing_downloaded(t.name for t in targets)
    return found


def audit_inventory(
    inventory: Inventory, targets: list[Target] | None = None, today: datetime.date | None = None
) -> AuditReport:
    """Read every locked wheel's license and, when policy.advisories is set, ask the advisory source once."""
    files = locked_wheels(inventory, targets if targets is not None else list(inventory.targets.values()))
    snapshot = None
    if inventory.policy.advisories is not None:
        packages = sorted(
            {
                (str(n), str(v))
                for paths in files.values()
                for n, v, _, _ in map(parse_wheel_filename, (p.name for p in paths))
            }
        )
        snapshot = snapshot_for(inventory.policy.advisories, packages)
    known = LicenseCache(inventory.wheelhouse / POOL / LICENSES)
    report = audit_files(inventory.policy, files, snapshot, today, known)
    known.save()
    save_findings(inventory, report)
    return report


AUDITED = ".audit.json"  # in the wheelhouse: the last audit's findings, which `inv report` shows
LICENSES = ".licenses.json"  # in the pool: each wheel's license as read from its METADATA


def save_findings(inventory: Inventory, report: AuditReport) -> None:
    """What `inv report` shows of the audit, so that the report itself stays offline and instant."""
    licenses = {f.filename: f.license.expression or "unknown" for t in report.targets for f in t.licenses}
    advisories: dict[str, list[str]] = {}
    for t in report.targets:
        for f in t.advisories:
            line = f"{f.id} ({f.version}, {f.severity or 'unknown'}, {f.verdict})"
            if line not in advisories.setdefault(f.name, []):
                advisories[f.name].append(line)
    body = {"advisories_checked": report.snapshot is not None, "licenses": licenses, "advisories": advisories}
    write_if_changed(inventory.wheelhouse / AUDITED, json.dumps(body, indent=1, sort_keys=True))


def rescan_snapshot(inventory: Inventory) -> Snapshot:
    """Every advisory of every project the wheelhouse ever held, whatever version: for re-scanning a live index.

    The index keeps versions that later locks dropped, so the snapshot asks by
    project, not by locked version; the offline side matches each version.
    """
    policy = inventory.policy.advisories
    if policy is None:
        raise UsageError(
            f"{inventory.path} has no policy.advisories: set osv_url or osv_zip there to bundle an advisory snapshot"
        )
    names = {str(parse_wheel_filename(p.name)[0]) for p in (inventory.wheelhouse / POOL).glob("*.whl")}
    return snapshot_for(policy, [(name, None) for name in sorted(names)])
