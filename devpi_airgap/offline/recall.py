"""A recall bundle applied: its files taken off the index, the recall recorded, and never uploaded again.

devpi keeps uploads immutable on a non-volatile index; a recall deletes with
`force`, the one deliberate exception. Replicas follow through devpi's own
replication, which carries deletions like uploads. The record on the server
(recalls.json) is a log of recalls and lifts; a file stays recalled until a
later signed bundle lifts it, and every upload checks the log first.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from devpi_airgap.core.errors import BundleError
from devpi_airgap.core.inventory import Server
from devpi_airgap.offline.credentials import Credentials
from devpi_airgap.offline.devpi_api import DevpiClient
from devpi_airgap.offline.layout import RECALLS
from devpi_airgap.offline.programs import record_import
from devpi_airgap.offline.remote import Host
from devpi_airgap.offline.steps import Step


def recall_log(host: Host) -> list[dict]:
    result = host.run(f"cat {RECALLS}", step="read recalls", check=False)
    return json.loads(result.stdout) if result.ok and result.stdout.strip() else []


def active_recalls(log: list[dict]) -> dict[str, dict]:
    """filename -> the recall that took it back, for every file no later lift released."""
    active: dict[str, dict] = {}
    for entry in log:
        for f in entry["files"]:
            if entry["action"] == "recall":
                active[f["filename"]] = entry
            else:
                active.pop(f["filename"], None)
    return active


def refuse_recalled(host: Host, filenames: list[str]) -> None:
    """Stop before anything is uploaded if any of these files was recalled on this server."""
    active = active_recalls(recall_log(host))
    hit = sorted(set(filenames) & set(active))
    if hit:
        first = active[hit[0]]
        raise BundleError(
            f"{len(hit)} file{'s' if len(hit) != 1 else ''} here {'were' if len(hit) != 1 else 'was'} recalled on "
            f"{host.name}: {', '.join(hit[:5])} ({first['name']}=={first['version']}: {first['reason']}); nothing "
            "was uploaded. Pin away from the recalled version and download again, or lift the recall with "
            f"`inv recall {first['name']}=={first['version']} --lift --reason TEXT` and deploy that bundle first"
        )


class RemoveRecalled(Step):
    """The recalled files, off the index."""

    name = "recall"

    def __init__(self, client: DevpiClient | None, server: Server, credentials: Credentials | None, recall: dict):
        self.client = client
        self.server = server
        self.credentials = credentials
        self.recall = recall

    def read(self, host: Host) -> set[str]:
        return set(self.client.index_files(self.server.user, self.server.index)) if self.client else set()

    def diff(self, on_index: set[str]) -> list[str]:
        if self.recall["action"] != "recall":
            return []
        gone = [f["filename"] for f in self.recall["files"] if f["filename"] in on_index]
        return [f"remove {name} from {self.server.user}/{self.server.index}" for name in gone]

    def apply(self, host: Host, on_index: set[str]) -> list[str]:
        self.client.login(self.server.user, self.credentials.user_password)
        removed = [
            f["filename"]
            for f in self.recall["files"]
            if f["filename"] in on_index and self.client.remove_file(self.server.user, self.server.index, f["filename"])
        ]
        return [f"removed {name}" for name in removed]


class RecordRecall(Step):
    """The recall (or lift) in the server's log, which uploads and `fab status` read."""

    name = "record recall"

    def __init__(self, bundle_id: str, recall: dict):
        self.bundle_id = bundle_id
        self.recall = recall

    def read(self, host: Host) -> list[str]:
        return [entry["bundle_id"] for entry in recall_log(host)]

    def diff(self, recorded: list[str]) -> list[str]:
        r = self.recall
        return (
            []
            if self.bundle_id in recorded
            else [f"{r['action']} of {r['name']}=={r['version']} recorded in {RECALLS}"]
        )

    def apply(self, host: Host, recorded: list[str]) -> None:
        entry = dict(self.recall, bundle_id=self.bundle_id, applied=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        host.run_program(record_import, RECALLS, json.dumps(entry), step=self.name)


def read_recall(checked: Path) -> dict:
    return json.loads((checked / "recall.json").read_text())
