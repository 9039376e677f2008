"""One audit: every file's license and every advisory against one policy, on either side of the gap.

The online side audits its locks before it bundles; the offline side audits
the bundle's own wheels with its own policy before it imports. Both read the
licenses from the wheels themselves and judge advisories from a snapshot.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import parse_wheel_filename

from devpi_airgap.core import advisories, licenses
from devpi_airgap.core.advisories import AdvisoryFinding, Snapshot
from devpi_airgap.core.licenses import LicenseFinding
from devpi_airgap.core.policy import Policy, PolicyError


@dataclass
class TargetAudit:
    target: str
    licenses: list[LicenseFinding] = field(default_factory=list)
    advisories: list[AdvisoryFinding] = field(default_factory=list)


@dataclass
class AuditReport:
    policy: Policy
    targets: list[TargetAudit]
    snapshot: Snapshot | None = None

    def blocking_licenses(self) -> list[tuple[str, LicenseFinding]]:
        return [(t.target, f) for t in self.targets for f in licenses.blocking(t.licenses, self.policy.licenses)]

    def blocking_advisories(self) -> list[tuple[str, AdvisoryFinding]]:
        return [(t.target, f) for t in self.targets for f in t.advisories if f.verdict == advisories.BLOCKED]

    def review(self) -> list[LicenseFinding]:
        """Files a person should look at: each once, however many targets carry it."""
        seen: dict[str, LicenseFinding] = {}
        for t in self.targets:
            for f in t.licenses:
                if f.verdict == licenses.REVIEW and self.policy.licenses is not None:
                    seen.setdefault(f.filename, f)
        return sorted(seen.values(), key=lambda f: f.filename)

    def expired_waivers(self) -> list[str]:
        return sorted(
            {f"{f.id} for {f.name}: {f.note}" for t in self.targets for f in t.advisories if "expired" in f.note}
        )

    def failure(self) -> str | None:
        """One message naming every file that breaks the policy, or None if none does."""
        lines = [
            f"  - {f.name} {f.version} (target {target}): license {f.license.expression or f.license.raw or 'unknown'}"
            f" is {'denied' if f.verdict == licenses.DENIED else 'not allowed and unknown: block is set'}"
            for target, f in self.blocking_licenses()
        ]
        lines += [
            f"  - {f.name} {f.version} (target {target}): {f.id} ({f.severity or 'severity unknown'})"
            f"{', fixed in ' + ', '.join(f.fixed) if f.fixed else ', no fixed version'}"
            f"{'; ' + f.note if f.note else ''}"
            for target, f in self.blocking_advisories()
        ]
        if not lines:
            return None
        return (
            "the policy refuses these files:\n" + "\n".join(dict.fromkeys(lines)) + "\nNothing was bundled or "
            "uploaded. Remedy: pin a version that passes (a fixed version for an advisory), or, after review, "
            "add a license exception or an advisory waiver with its reason under policy: in the inventory."
        )

    def check(self) -> None:
        message = self.failure()
        if message:
            raise PolicyError(message)


def audit_files(
    policy: Policy,
    files: dict[str, list[Path]],
    snapshot: Snapshot | None,
    today: datetime.date | None = None,
    known: licenses.LicenseCache | None = None,
) -> AuditReport:
    """Judge `files` (target -> wheel paths); each distinct wheel's METADATA is read once, or not at all if known."""
    today = today or datetime.date.today()
    read: dict[str, LicenseFinding] = {}
    report = AuditReport(policy, [], snapshot)
    for target, paths in files.items():
        audit = TargetAudit(target)
        wheels = [p for p in paths if p.name.endswith(".whl")]
        for path in wheels:
            if path.name not in read:
                read[path.name] = licenses.judge(path, policy.licenses, known)
            audit.licenses.append(read[path.name])
        if snapshot is not None and policy.advisories is not None:
            packages = [(str(n), str(v)) for n, v, _, _ in map(parse_wheel_filename, (p.name for p in wheels))]
            audit.advisories = advisories.judge(snapshot, packages, policy.advisories, today)
        report.targets.append(audit)
    return report
