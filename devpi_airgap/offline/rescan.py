"""Re-check what the live index already serves against a newer advisory snapshot; `fab audit`.

A bundle may carry nothing but a snapshot (`inv bundle --advisories`). Its
import stores the snapshot on the server and reports which files on the index
it newly affects; `fab audit` repeats the check against the stored snapshot
at any time. Neither changes the index: a recall is a person's decision.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import parse_wheel_filename

from devpi_airgap.core import advisories
from devpi_airgap.core.advisories import AdvisoryFinding, Snapshot
from devpi_airgap.core.errors import RemoteError
from devpi_airgap.core.files import sha256_file
from devpi_airgap.core.inventory import Server
from devpi_airgap.core.policy import AdvisoryPolicy
from devpi_airgap.offline.devpi_api import DevpiClient
from devpi_airgap.offline.health import wait_healthy
from devpi_airgap.offline.index_steps import devpi_api
from devpi_airgap.offline.layout import ADVISORIES
from devpi_airgap.offline.remote import Host
from devpi_airgap.offline.steps import Step


@dataclass
class Rescan:
    source: str
    fetched: str
    files: int  # release files on the index
    findings: list[AdvisoryFinding] = field(default_factory=list)
    new: set[tuple[str, str, str]] = field(default_factory=set)  # (id, name, version) the previous snapshot lacked

    @property
    def blocked(self) -> list[AdvisoryFinding]:
        return [f for f in self.findings if f.verdict == advisories.BLOCKED]


def stored_snapshot(host: Host) -> Snapshot | None:
    result = host.run(f"cat {ADVISORIES}", step="read advisory snapshot", check=False)
    return Snapshot.from_dict(json.loads(result.stdout)) if result.ok and result.stdout.strip() else None


def rescan(
    client: DevpiClient, server: Server, snapshot: Snapshot, policy: AdvisoryPolicy, previous: Snapshot | None = None
) -> Rescan:
    filenames = client.index_files(server.user, server.index)
    packages = sorted(
        {(str(n), str(v)) for n, v, _, _ in (parse_wheel_filename(f) for f in filenames if f.endswith(".whl"))}
    )
    today = datetime.date.today()
    report = Rescan(
        snapshot.source, snapshot.fetched, len(filenames), advisories.judge(snapshot, packages, policy, today)
    )
    before = (
        {(f.id, f.name, f.version) for f in advisories.judge(previous, packages, policy, today)} if previous else set()
    )
    report.new = {(f.id, f.name, f.version) for f in report.findings} - before
    return report


class StoreSnapshot(Step):
    """The carried snapshot on the server, where `fab audit` reads it."""

    name = "advisory snapshot"

    def __init__(self, local: Path, snapshot: Snapshot):
        self.local = local
        self.snapshot = snapshot

    def read(self, host: Host) -> str:
        return host.run(f"sha256sum {ADVISORIES} 2>/dev/null", step=self.name, check=False).stdout.split(" ")[0]

    def diff(self, stored: str) -> list[str]:
        if stored == sha256_file(self.local):
            return []
        return [f"snapshot from {self.snapshot.source} ({self.snapshot.fetched}) stored in {ADVISORIES}"]

    def apply(self, host: Host, stored: str) -> None:
        host.put(self.local, ADVISORIES, step=self.name)


def require_snapshot(host: Host) -> Snapshot:
    snapshot = stored_snapshot(host)
    if snapshot is None:
        raise RemoteError(
            f"audit: {host.name} holds no advisory snapshot yet; on the online side run "
            "`inv bundle --advisories` and deploy that bundle with `fab deploy --bundle`"
        )
    return snapshot


def audit_live(host: Host, server: Server, policy: AdvisoryPolicy | None) -> Rescan:
    """`fab audit`: every file on the live index against the snapshot stored there; reads only."""
    host.become_root()
    snapshot = require_snapshot(host)
    wait_healthy(host, server.port)
    with devpi_api(host, server, serving=True) as (_, client):
        return rescan(client, server, snapshot, policy or AdvisoryPolicy())
