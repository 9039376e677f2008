"""Known vulnerabilities, as OSV records, matched to locked files and judged against the policy.

A snapshot is the set of OSV records one check used, with the source it came
from and what that source said affects what. It travels in the bundle, so the
offline side can judge with its own policy, and later re-check the live index
against a newer snapshot without reaching anything.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from devpi_airgap.core.policy import SEVERITIES, AdvisoryPolicy, Waiver

BLOCKED, WAIVED, BELOW = "blocked", "waived", "below threshold"

# GitHub's advisory database says "moderate" where CVSS says "medium".
_LABELS = {"low": "low", "moderate": "medium", "medium": "medium", "high": "high", "critical": "critical"}


def key(name: str, version: str) -> str:
    return f"{canonicalize_name(name)}=={version}"


@dataclass
class Snapshot:
    """The OSV records a check used; `hits` holds what the source itself said affects each name==version."""

    source: str
    fetched: str
    vulns: dict[str, dict] = field(default_factory=dict)
    hits: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"source": self.source, "fetched": self.fetched, "vulns": self.vulns, "hits": self.hits}

    @classmethod
    def from_dict(cls, data: dict) -> Snapshot:
        return cls(data["source"], data["fetched"], dict(data.get("vulns", {})), dict(data.get("hits", {})))


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(version: Version, events: list[dict]) -> bool:
    """OSV's ECOSYSTEM range: affected from each `introduced` until the next `fixed` (or through `last_affected`)."""
    affected = False
    for event in sorted(events, key=lambda e: _version(next(iter(e.values()))) or Version("0")):
        if "introduced" in event:
            start = Version("0") if event["introduced"] == "0" else _version(event["introduced"])
            if start is not None and version >= start:
                affected = True
        elif "fixed" in event and (fixed := _version(event["fixed"])) is not None and version >= fixed:
            affected = False
        elif "last_affected" in event and (last := _version(event["last_affected"])) is not None and version > last:
            affected = False
    return affected


def affects(record: dict, name: str, version: str) -> bool:
    wanted = canonicalize_name(name)
    parsed = _version(version)
    for affected in record.get("affected", []):
        package = affected.get("package", {})
        if package.get("ecosystem") != "PyPI" or canonicalize_name(package.get("name", "")) != wanted:
            continue
        if version in affected.get("versions", []):
            return True
        if parsed is not None and any(
            r.get("type") == "ECOSYSTEM" and _in_range(parsed, r.get("events", [])) for r in affected.get("ranges", [])
        ):
            return True
    return False


def fixed_versions(record: dict, name: str) -> list[str]:
    wanted = canonicalize_name(name)
    return sorted(
        {
            event["fixed"]
            for affected in record.get("affected", [])
            if canonicalize_name(affected.get("package", {}).get("name", "")) == wanted
            for r in affected.get("ranges", [])
            for event in r.get("events", [])
            if "fixed" in event
        },
        key=lambda v: _version(v) or Version("0"),
    )


def _from_vector(kind: str, vector: str) -> str | None:
    try:
        if kind == "CVSS_V4":
            return CVSS4(vector).severity.lower()
        if kind == "CVSS_V3":
            return CVSS3(vector).severities()[0].lower()
        if kind == "CVSS_V2":
            score = float(CVSS2(vector).scores()[0])
            return "low" if score < 4 else "medium" if score < 7 else "high"
    except (CVSSError, ValueError, IndexError):
        return None
    return None


def severity(record: dict) -> str | None:
    """The highest severity the record states: from its CVSS vectors, else from the database's own label."""
    found = [
        s for entry in record.get("severity", []) if (s := _from_vector(entry.get("type", ""), entry.get("score", "")))
    ]
    labels = [record.get("database_specific", {}).get("severity")]
    labels += [a.get("database_specific", {}).get("severity") for a in record.get("affected", [])]
    found += [_LABELS[label.lower()] for label in labels if isinstance(label, str) and label.lower() in _LABELS]
    found = [s for s in found if s != "none"]
    return max(found, key=SEVERITIES.index) if found else None


@dataclass(frozen=True)
class AdvisoryFinding:
    name: str
    version: str
    id: str
    aliases: tuple[str, ...]
    summary: str
    severity: str | None
    fixed: tuple[str, ...]
    verdict: str  # blocked, waived or below threshold
    note: str = ""  # the waiver applied, or the one that expired

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "id": self.id,
            "aliases": list(self.aliases),
            "summary": self.summary,
            "severity": self.severity,
            "fixed": list(self.fixed),
            "verdict": self.verdict,
            "note": self.note,
        }


def _waiver(policy: AdvisoryPolicy, record: dict, name: str) -> Waiver | None:
    ids = {record["id"], *record.get("aliases", [])}
    return next((w for w in policy.waivers if w.id in ids and w.package == canonicalize_name(name)), None)


def judge(
    snapshot: Snapshot, packages: list[tuple[str, str]], policy: AdvisoryPolicy, today: datetime.date
) -> list[AdvisoryFinding]:
    """Every advisory affecting one of `packages` (name, version), with its verdict under `policy`."""
    findings = []
    for name, version in sorted(set(packages)):
        ids = set(snapshot.hits.get(key(name, version), []))
        ids |= {vid for vid, record in snapshot.vulns.items() if affects(record, name, version)}
        for vid in sorted(ids):
            record = snapshot.vulns.get(vid, {"id": vid})
            level = severity(record)
            waiver = _waiver(policy, record, name)
            note = ""
            if waiver and waiver.applies(today):
                verdict, note = WAIVED, f"waived until {waiver.until} by {waiver.by}: {waiver.reason}"
            else:
                verdict = BLOCKED if policy.blocks(level) else BELOW
                if waiver:
                    note = f"the waiver by {waiver.by} expired on {waiver.until}"
            findings.append(
                AdvisoryFinding(
                    canonicalize_name(name),
                    version,
                    vid,
                    tuple(record.get("aliases", [])),
                    record.get("summary", "") or record.get("details", "")[:200],
                    level,
                    tuple(fixed_versions(record, name)),
                    verdict,
                    note,
                )
            )
    return findings
