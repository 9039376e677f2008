"""What an approver allows across the gap: the license and advisory policy, as the tasks use it.

The inventory's `policy:` block parses into these (core/inventory.py owns the
file's shape); core/licenses.py and core/advisories.py judge files against
them, on the online side before a bundle is written and on the offline side
again before a bundle is imported, each with its own inventory's policy.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from devpi_airgap.core.errors import AirgapError, ExitCode

SEVERITIES = ("low", "medium", "high", "critical")
DEFAULT_OSV_URL = "https://api.osv.dev"


class PolicyError(AirgapError):
    """A file breaks the license or advisory policy; nothing was bundled, uploaded or changed."""

    exit_code = ExitCode.POLICY


@dataclass(frozen=True)
class LicenseException:
    package: str  # a canonical project name
    reason: str


@dataclass(frozen=True)
class LicensePolicy:
    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()
    unknown: str = "review"  # or "block": a license neither allowed nor denied, or unreadable
    exceptions: tuple[LicenseException, ...] = ()

    def exception_for(self, package: str) -> LicenseException | None:
        return next((e for e in self.exceptions if e.package == package), None)


@dataclass(frozen=True)
class Waiver:
    id: str
    package: str  # a canonical project name
    until: datetime.date
    by: str
    reason: str

    def applies(self, today: datetime.date) -> bool:
        return today <= self.until


@dataclass(frozen=True)
class AdvisoryPolicy:
    osv_url: str = DEFAULT_OSV_URL
    osv_zip: str | None = None  # an absolute path once parsed; used instead of osv_url when set
    block: str = "high"  # block at or above this severity
    waivers: tuple[Waiver, ...] = ()

    def blocks(self, severity: str | None) -> bool:
        """An advisory of unknown severity blocks: failing closed is the point of the check."""
        return severity is None or SEVERITIES.index(severity) >= SEVERITIES.index(self.block)


@dataclass(frozen=True)
class Policy:
    licenses: LicensePolicy | None = None
    advisories: AdvisoryPolicy | None = None

    @property
    def empty(self) -> bool:
        return self.licenses is None and self.advisories is None
