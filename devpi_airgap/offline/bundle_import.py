"""`fab deploy --bundle FILE`: check a carried bundle here and on the server, then deploy from it.

Nothing changes on the server until both checks pass. The checked files are
laid out as a wheelhouse (hard links per target) and the ordinary deploy runs
on that, so a bundle import and a wheelhouse deploy cannot drift apart.
Uploads skip what the index holds, so bundles apply in any order, or twice.
The import is recorded on the server only after the whole deploy succeeded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from devpi_airgap.core.advisories import Snapshot
from devpi_airgap.core.audit import AuditReport, audit_files
from devpi_airgap.core.console import ProgressFactory, no_progress
from devpi_airgap.core.errors import BundleError, RemoteError
from devpi_airgap.core.files import scratch_prefix
from devpi_airgap.core.inventory import Inventory, Server
from devpi_airgap.core.policy import AdvisoryPolicy, PolicyError
from devpi_airgap.offline.client_config import trusted_host, user_url
from devpi_airgap.offline.credentials import Credentials
from devpi_airgap.offline.deploy import DeployResult, deploy
from devpi_airgap.offline.health import service_active, wait_healthy
from devpi_airgap.offline.index_steps import devpi_api
from devpi_airgap.offline.layout import IMPORTED, INCOMING
from devpi_airgap.offline.programs import record_import
from devpi_airgap.offline.recall import RecordRecall, RemoveRecalled, read_recall
from devpi_airgap.offline.remote import Host
from devpi_airgap.offline.rescan import StoreSnapshot, rescan, stored_snapshot
from devpi_airgap.offline.steps import Runner, Step
from devpi_airgap.transfer import bundle_check
from devpi_airgap.transfer.bundle import ADVISORIES, inventory_id
from devpi_airgap.transfer.parts import join_parts, whole_name


def _lay_out(manifest: dict, checked: Path, view: Path) -> None:
    for f in manifest["files"]:
        for target in f["targets"]:
            dest = view / target / f["name"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(checked / "wheels" / f["name"], dest)


def check_on_server(host: Host, inventory: Inventory, bundle: Path) -> None:
    """The server checks its own copy with the same checker, so a file damaged in the last hop is caught too."""
    settings = inventory.bundles
    host.run(f"install -d -m 0700 {INCOMING}", step="copy bundle")
    companions = [
        p for p in (bundle.with_name(bundle.name + ".sha256"), bundle.with_name(bundle.name + ".sig")) if p.exists()
    ]
    for path in [bundle, *companions]:
        host.put(path, f"{INCOMING}/{path.name}", step="copy bundle")
    signers = ""
    if settings.allowed_signers:
        signers = f"{INCOMING}/allowed_signers"
        host.put(settings.allowed_signers, signers, step="copy bundle")
    staging = f"{INCOMING}/{bundle.stem}.check"
    try:
        result = host.run_program(
            bundle_check,
            f"{INCOMING}/{bundle.name}",
            staging,
            signers,
            settings.identity or "",
            "1" if settings.require_signature else "0",
            step="check bundle on server",
            check=False,
        )
    finally:
        host.run(f"rm -rf {staging}", step="check bundle on server", check=False)
    if not result.ok:
        raise RemoteError(f"check bundle on server: {host.name} refused {bundle.name}: {result.stderr.strip()}")


def check_policy(inventory: Inventory, manifest: dict, checked: Path) -> AuditReport:
    """This side's policy over the bundle's own wheels, before anything reaches the server.

    Licenses are read again from the wheels; advisories are judged from the
    snapshot the bundle carries, with this inventory's threshold and waivers.
    """
    files: dict[str, list[Path]] = {}
    for f in manifest["files"]:
        for target in f["targets"]:
            files.setdefault(target, []).append(checked / "wheels" / f["name"])
    snapshot_file = checked / ADVISORIES
    snapshot = Snapshot.from_dict(json.loads(snapshot_file.read_text())) if snapshot_file.is_file() else None
    if inventory.policy.advisories is not None and snapshot is None:
        raise PolicyError(
            f"{manifest['bundle_id']} carries no advisory snapshot, but {inventory.path} sets policy.advisories; "
            "nothing was uploaded. Set policy.advisories on the online side too and bundle again"
        )
    report = audit_files(inventory.policy, files, snapshot)
    report.check()
    return report


def evidence_summary(report: AuditReport) -> dict:
    """What `fab status` shows of an import's evidence: counts and the open review items."""
    return {
        "licenses checked": sum(len(t.licenses) for t in report.targets),
        "advisories": sum(len(t.advisories) for t in report.targets),
        "waived": sum(f.verdict == "waived" for t in report.targets for f in t.advisories),
        "review": [f"{f.filename}: {f.license.expression or f.license.raw or 'no license'}" for f in report.review()],
    }


class RecordImport(Step):
    """The bundle in the server's record of imports, which `fab status` lists."""

    name = "record import"

    def __init__(self, manifest: dict, evidence: dict | None = None):
        self.manifest = manifest
        self.evidence = evidence

    def read(self, host: Host) -> list[str]:
        return [b["bundle_id"] for b in imported_bundles(host)]

    def diff(self, recorded: list[str]) -> list[str]:
        bundle_id = self.manifest["bundle_id"]
        return [] if bundle_id in recorded else [f"{bundle_id} recorded in {IMPORTED}"]

    def apply(self, host: Host, recorded: list[str]) -> None:
        m = self.manifest
        entry = {
            "bundle_id": m["bundle_id"],
            "sha256": m["sha256"],
            "files": len(m["files"]),
            "full": m["full"],
            "signature": m["signature"],
            "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "evidence": self.evidence,
        }
        host.run_program(record_import, IMPORTED, json.dumps(entry), step=self.name)


def imported_bundles(host: Host) -> list[dict]:
    result = host.run(f"cat {IMPORTED}", step="status", check=False)
    return json.loads(result.stdout) if result.ok and result.stdout.strip() else []


def deploy_bundle(
    runner: Runner,
    inventory: Inventory,
    server: Server,
    credentials: Credentials | None,
    bundle: Path,
    *,
    progress: ProgressFactory = no_progress,
    on_checked=lambda where, name, manifest: None,
) -> DeployResult:
    """Check `bundle` here, then (unless runner.check) on the server, then deploy its files.

    `on_checked(where, bundle name, manifest)` tells the task layer each check passed, so it can say so as it happens.
    """
    bundle = whole_name(bundle)
    host = runner.host
    settings = inventory.bundles
    with tempfile.TemporaryDirectory(prefix=scratch_prefix(None, "airgap-bundle-")) as tmp:
        if not bundle.is_file():  # carried in parts: joined here, not beside them, where the size limit may hold
            (joined := Path(tmp) / "joined").mkdir()
            bundle = join_parts(bundle, joined)
        checked = Path(tmp) / "checked"
        manifest = bundle_check.check_bundle(
            bundle,
            checked,
            allowed_signers=str(settings.allowed_signers or "") or None,
            identity=settings.identity,
            required=settings.require_signature,
        )
        if manifest["inventory_id"] != inventory_id(inventory):
            raise BundleError(
                f"{bundle.name} was made for a different inventory (its targets differ from "
                f"{inventory.path}'s); use the inventory it was made with"
            )
        kind = manifest.get("kind", "wheels")
        recall = read_recall(checked) if kind == "recall" else None
        evidence = evidence_summary(check_policy(inventory, manifest, checked)) if kind == "wheels" else None
        on_checked("here", bundle.name, manifest)
        host.become_root()
        if not runner.check:  # the server's check copies the bundle over: a change --check must not make
            check_on_server(host, inventory, bundle)
            on_checked(host.name, bundle.name, manifest)
        if recall:
            return apply_recall(runner, server, credentials, manifest, recall)
        if kind == "advisories":
            return apply_snapshot(runner, inventory, server, manifest, checked / ADVISORIES)
        view = Path(tmp) / "wheelhouse"
        _lay_out(manifest, checked, view)
        shutil.copytree(checked / "locks", Path(tmp) / "locks")
        carried = dataclasses.replace(inventory, wheelhouse=view, locks=Path(tmp) / "locks")
        return deploy(
            runner,
            carried,
            server,
            credentials,
            progress=progress,
            from_bundle=True,
            after=[RecordImport(manifest, evidence)],
        )


def apply_recall(
    runner: Runner, server: Server, credentials: Credentials | None, manifest: dict, recall: dict
) -> DeployResult:
    """Take the recalled files off the index and record the recall (or record a lift); replicas follow devpi."""
    host = runner.host
    serving = not runner.check or service_active(host)
    if not runner.check:
        wait_healthy(host, server.port)
    with devpi_api(host, server, serving=serving) as (_, client):
        runner.run(RemoveRecalled(client, server, credentials, recall))
    runner.run(RecordRecall(manifest["bundle_id"], recall))
    runner.run(RecordImport(manifest))
    return DeployResult(host.name, runner.check, runner.outcomes, user_url(host, server), trusted_host(host, server))


def apply_snapshot(runner: Runner, inventory: Inventory, server: Server, manifest: dict, carried: Path) -> DeployResult:
    """Store the carried advisory snapshot and re-check the live index against it; the index is not changed."""
    host = runner.host
    snapshot = Snapshot.from_dict(json.loads(carried.read_text()))
    previous = stored_snapshot(host)
    if not runner.check:
        wait_healthy(host, server.port)
    with devpi_api(host, server, serving=not runner.check or service_active(host)) as (_, client):
        report = (
            rescan(client, server, snapshot, inventory.policy.advisories or AdvisoryPolicy(), previous)
            if client
            else None
        )
    runner.run(StoreSnapshot(carried, snapshot))
    runner.run(RecordImport(manifest))
    return DeployResult(
        host.name, runner.check, runner.outcomes, user_url(host, server), trusted_host(host, server), rescan=report
    )
