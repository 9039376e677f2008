"""`inv recall NAME==VERSION --reason TEXT`: a small bundle that takes a bad version back out of the index.

It carries no wheels, only recall.json: which files (by name and sha256),
why, and whether it recalls or lifts an earlier recall. It is checksummed and
signed like any bundle, so the offline side trusts it exactly as far as it
trusts a bundle that adds files. Taking a file out is a person's decision:
nothing else writes one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from devpi_airgap.core.errors import UsageError
from devpi_airgap.core.inventory import Inventory
from devpi_airgap.core.wheelhouse import Wheelhouse
from devpi_airgap.transfer.bundle import write_document_bundle

RECALL = "recall.json"


def parse_spec(spec: str) -> tuple[str, str]:
    """NAME==VERSION, exactly one version: a recall names what it takes back."""
    try:
        requirement = Requirement(spec)
    except InvalidRequirement:
        requirement = None
    specifiers = list(requirement.specifier) if requirement else []
    if requirement is None or len(specifiers) != 1 or specifiers[0].operator != "==" or "*" in specifiers[0].version:
        raise UsageError(f"recall: {spec!r} is not NAME==VERSION; name exactly one version, e.g. requests==2.31.0")
    return canonicalize_name(requirement.name), str(Version(specifiers[0].version))


def recalled_files(inventory: Inventory, name: str, version: str, filename: str | None) -> list[dict]:
    """Every file of NAME==VERSION the wheelhouse has ever held (its pool keeps them all), or just `filename`."""
    wheelhouse = Wheelhouse(inventory.wheelhouse)
    found = []
    for path in sorted(wheelhouse.pool.glob("*.whl")):
        wheel_name, wheel_version, _, _ = parse_wheel_filename(path.name)
        if wheel_name == name and str(wheel_version) == version and filename in (None, path.name):
            found.append({"filename": path.name, "sha256": wheelhouse.sha256(path)})
    wheelhouse.save()
    if not found:
        what = filename or f"any file of {name}=={version}"
        raise UsageError(
            f"recall: the wheelhouse at {inventory.wheelhouse} never held {what}; check the spelling, "
            "or recall from the wheelhouse that bundled it"
        )
    return found


def write_recall(
    inventory: Inventory, spec: str, reason: str, *, filename: str | None = None, lift: bool = False
) -> Path:
    """Write a signed recall (or lift) bundle into the bundles directory; returns its path."""
    if not reason.strip():
        raise UsageError("recall: --reason is required: the server records why a version was taken back")
    name, version = parse_spec(spec)
    created = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    recall = {
        "action": "lift" if lift else "recall",
        "name": name,
        "version": version,
        "files": recalled_files(inventory, name, version, filename),
        "reason": reason.strip(),
        "created": created,
    }
    bundle_id = f"{created}-{recall['action']}-{name}-{version}"
    return write_document_bundle(
        inventory, "recall", bundle_id, created, {RECALL: json.dumps(recall, indent=1, sort_keys=True).encode()}
    )
