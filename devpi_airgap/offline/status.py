"""`fab status`: what runs on a server, read without changing anything."""

from __future__ import annotations

from dataclasses import dataclass, field

from devpi_airgap.core.inventory import Server
from devpi_airgap.offline.bundle_import import imported_bundles
from devpi_airgap.offline.devpi_api import DevpiClient
from devpi_airgap.offline.layout import SERVERDIR, UNIT_NAME, VENV
from devpi_airgap.offline.programs import reach
from devpi_airgap.offline.programs.wait_replicated import sync_state
from devpi_airgap.offline.recall import active_recalls, recall_log
from devpi_airgap.offline.remote import Host


@dataclass
class ServerStatus:
    host: str
    rows: list[tuple[str, str]] = field(default_factory=list)  # (what, state)
    imported: list[dict] = field(default_factory=list)  # the bundles the server recorded, oldest first
    recalled: dict[str, dict] = field(default_factory=dict)  # filename -> the recall that took it off the index


def read_status(host: Host, server: Server) -> ServerStatus:
    """Unit state, devpi version, the index's projects and files, disk used, and imported bundles."""
    host.become_root()
    state = host.run(
        f"systemctl is-active {UNIT_NAME}; systemctl is-enabled {UNIT_NAME}", step="status", check=False
    ).stdout.split()
    version = (
        host.run(f"{VENV}/bin/devpi-server --version", step="status", check=False).stdout.strip() or "not installed"
    )
    disk = host.run(f"du -sh {SERVERDIR} 2>/dev/null | cut -f1", step="status", check=False).stdout.strip() or "-"
    status = ServerStatus(
        host.name, [("unit", " / ".join(state) or "absent"), ("devpi-server", version), ("data on disk", disk)]
    )
    if state[:1] == ["active"]:
        with host.http(server.port) as base_url, DevpiClient(base_url) as client:
            files = client.index_files(server.user, server.index)
            devpi = client.status()
        projects = {name.split("-")[0].lower() for name in files}
        status.rows.append((f"{server.user}/{server.index}", f"{len(projects)} projects, {len(files)} files"))
        if server.is_replica:
            status.rows.append((f"replica of {server.primary}", _replica_state(host, server, devpi)))
    status.imported = imported_bundles(host)
    status.recalled = active_recalls(recall_log(host))
    return status


def _replica_state(host: Host, server: Server, devpi: dict) -> str:
    """How far the replica follows its primary, and whether the primary still has the data it follows.

    A primary restored from a backup has another uuid, and answers the replica's every request with 400;
    the replica's own status goes on reading "in sync" (see replica.ReplicaInit). So the primary is asked
    for its uuid, from the replica, at the address the replica uses.
    """
    serial, primary_serial = devpi.get("serial"), devpi.get("primary-serial")
    state = f"{sync_state(devpi)}: serial {serial} of {primary_serial}"
    followed, url = devpi.get("primary-uuid"), devpi.get("primary-url")
    if not followed or not url:
        return state
    asked = host.run_program(reach, url, step="status", check=False)
    if not asked.ok:
        return f"{state}, as last heard: its primary does not answer at {url}"
    if asked.stdout.strip() != followed:
        return (
            f"stale: it follows data {server.primary} no longer has (restored or set up anew since), and takes "
            f"no change from it; `fab -H {server.primary},{server.name} deploy` sets it up anew"
        )
    return state
