"""`inv refresh`: the unattended weekly run. Never needs a human unless something is wrong.

It re-resolves every target (new releases within the ranges come in), fetches
only new files, verifies every target, and writes a delta bundle when anything
is new. Its exit code tells a scheduler what happened; a lock keeps two runs
from overlapping, and every run appends to a log file.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from devpi_airgap.core.errors import AirgapError, FetchError, VerificationError
from devpi_airgap.core.inventory import Inventory
from devpi_airgap.core.lock import lock_changes, read_lock, versions_by_name
from devpi_airgap.core.runlock import exclusive, wheelhouse_lock
from devpi_airgap.online.audit import audit_inventory
from devpi_airgap.online.download import TargetChanges, download, planned_changes
from devpi_airgap.online.verify import verify_targets
from devpi_airgap.transfer.bundle import shipped_sha256s, write_bundle

REPORT = "refresh-report.json"
LOG = "refresh.log"


def _versions(inventory: Inventory) -> dict[str, dict[str, list[str]]]:
    return {
        t.name: versions_by_name(read_lock(inventory.lock_path(t))[1]) if inventory.lock_path(t).exists() else {}
        for t in inventory.targets.values()
    }


def log(inventory: Inventory, line: str) -> None:
    with open(inventory.wheelhouse / LOG, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}\n")


def refresh(inventory: Inventory) -> tuple[dict, Path | None]:
    """Returns the per-target changes and the new bundle, if any; raises with the right exit code."""
    lock = inventory.wheelhouse / ".refresh.lock"
    with exclusive(lock, f"another refresh holds {lock}; wait for it to finish"), wheelhouse_lock(inventory.wheelhouse):
        log(inventory, "refresh started")
        try:
            before = _versions(inventory)
            targets = list(inventory.targets.values())
            download(inventory, targets)
            failed = [r for r in verify_targets(inventory, targets, reuse=True) if not r.ok]
            if failed:
                raise VerificationError(
                    "verification failed for " + ", ".join(f"{r.name}: {'; '.join(r.problems)}" for r in failed)
                )
            report = {t: lock_changes(before.get(t, {}), now) for t, now in _versions(inventory).items()}
            bundle = write_bundle(inventory, audit_inventory(inventory))
        except AirgapError as exc:
            log(inventory, f"refresh failed (exit {exc.exit_code}): {' '.join(str(exc).split())}")
            raise
        except OSError as exc:
            log(inventory, f"refresh failed (exit 5): {exc}")
            raise FetchError(f"I/O failure: {exc}; free space or fix permissions and re-run") from exc
        except KeyboardInterrupt:  # Ctrl-C, or a scheduler stopping the run (SIGTERM): the log says so too
            log(inventory, "refresh stopped (exit 130) before it was done; the next run continues from there")
            raise
        summary = {"bundle": str(bundle) if bundle else None, "targets": report}
        (inventory.wheelhouse / REPORT).write_text(json.dumps(summary, indent=1))
        log(inventory, f"refresh done: {'bundle ' + bundle.name if bundle else 'nothing new'}")
        return report, bundle


@dataclass(frozen=True)
class RefreshPlan:
    """What `inv refresh` would do now: each target's download changes, and what its bundle would then carry."""

    targets: list[TargetChanges]
    bundle_files: int  # files no earlier bundle carried, known by their sha256
    bundle_bytes: int
    builds: int  # wheels still to be built from sdists: new to any bundle, their size unknown until built


def planned_refresh(inventory: Inventory) -> RefreshPlan:
    """`inv refresh --check`: the download's check for every target, and the delta bundle that would follow it.

    Writes nothing and takes no lock, as `inv download --check`; verify and the audit are not run.
    """
    targets = planned_changes(inventory, list(inventory.targets.values()))
    files = {sha256: size for t in targets for sha256, size in t.files.items()}
    shipped = shipped_sha256s(inventory)
    new = {sha256: size for sha256, size in files.items() if sha256 not in shipped}
    builds = len({build for t in targets for build in t.builds})
    return RefreshPlan(targets, len(new), sum(new.values()), builds)
