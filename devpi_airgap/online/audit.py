"""`inv audit`: the license and advisory policy over the current locks, before anything is bundled."""

from __future__ import annotations

import datetime
from pathlib import Path

from packaging.utils import parse_wheel_filename

from devpi_airgap.core.audit import AuditReport, audit_files
from devpi_airgap.core.inventory import Inventory, Target
from devpi_airgap.core.lock import read_lock
from devpi_airgap.core.wheelhouse import POOL
from devpi_airgap.online.osv import snapshot_for


def locked_wheels(inventory: Inventory, targets: list[Target]) -> dict[str, list[Path]]:
    """Each downloaded target's locked files, in the pool where every file is kept once."""
    pool = inventory.wheelhouse / POOL
    return {
        t.name: [pool / f.filename for f in read_lock(inventory.lock_path(t))[1]]
        for t in targets
        if inventory.lock_path(t).exists()
    }


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
    return audit_files(inventory.policy, files, snapshot, today)
