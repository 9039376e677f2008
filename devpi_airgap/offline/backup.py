"""`fab backup` and `fab restore`: devpi-export into a dated directory, kept here and there.

devpi-export and devpi-import need the server's storage to themselves, so the
service stops for the export and restarts after it, whatever happened. A
restore sets the current data aside first and puts it back if the import or
the restarted service fails, so a failed restore loses nothing.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from devpi_airgap.core.errors import RemoteError
from devpi_airgap.core.inventory import Server
from devpi_airgap.offline.health import service_active, wait_healthy
from devpi_airgap.offline.layout import BACKUPS, RESTORES, SERVERDIR, SERVICE_USER, UNIT_NAME, VENV
from devpi_airgap.offline.remote import Host

BACKUPS_KEPT = 7


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _prune_local(directory: Path, keep: int) -> None:
    for old in sorted(directory.glob("devpi-*.tar"))[:-keep]:
        old.unlink()


def backup(host: Host, server: Server, destination: Path, keep: int = BACKUPS_KEPT) -> Path:
    """Export the server's data, bring it here, keep the newest `keep` on both sides; returns the local file."""
    if keep < 1:
        raise RemoteError("backup: --keep must be at least 1")
    host.become_root()
    stamp = _stamp()
    export = f"{BACKUPS}/devpi-{stamp}"
    host.run(f"install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0700 {BACKUPS}", step="backup")
    was_active = service_active(host)
    if was_active:
        host.run(f"systemctl stop {UNIT_NAME}", step="backup")
    try:
        host.run(
            f"runuser -u {SERVICE_USER} -- {VENV}/bin/devpi-export --serverdir {SERVERDIR} {export}",
            step="devpi-export",
        )
    finally:
        if was_active:
            host.run(f"systemctl start {UNIT_NAME}", step="backup", check=False)
    host.run(
        f"tar -C {BACKUPS} -cf {export}.tar devpi-{stamp} && rm -rf {export} && "
        f"ls -1 {BACKUPS}/devpi-*.tar | sort | head -n -{keep} | xargs -r rm -f",
        step="backup",
    )
    local = destination / host.name / f"devpi-{stamp}.tar"
    host.get(f"{export}.tar", local, step="copy backup")
    _prune_local(local.parent, keep)
    if was_active:
        wait_healthy(host, server.port)
    return local


def restore(host: Host, server: Server, source: Path) -> str:
    """Replace the server's data with a backup made by `backup`; returns where the old data was set aside."""
    if not source.is_file() or not source.name.startswith("devpi-") or source.suffix != ".tar":
        raise RemoteError(f"restore: {source} is not a backup file made by `fab backup` (devpi-STAMP.tar)")
    host.become_root()
    name = source.stem
    work = f"{RESTORES}/{name}"
    host.run(f"rm -rf {work} && install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0700 {RESTORES}", step="restore")
    host.put(source, f"{RESTORES}/{source.name}", step="copy backup")
    host.run(
        f"tar -C {RESTORES} -xf {RESTORES}/{source.name} && test -d {work} && "
        f"chown -R {SERVICE_USER}:{SERVICE_USER} {work}",
        step="restore",
    )
    aside = f"{SERVERDIR}.before-restore-{_stamp()}"
    host.run(f"systemctl stop {UNIT_NAME}; mv {SERVERDIR} {aside}", step="restore")
    try:
        host.run(
            f"install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0700 {SERVERDIR} && "
            f"runuser -u {SERVICE_USER} -- {VENV}/bin/devpi-import --serverdir {SERVERDIR} --no-root-pypi {work}",
            step="devpi-import",
        )
        host.run(f"systemctl reset-failed {UNIT_NAME}; systemctl start {UNIT_NAME}", step="restore", check=False)
        wait_healthy(host, server.port)
    except RemoteError as exc:
        host.run(
            f"systemctl stop {UNIT_NAME}; rm -rf {SERVERDIR} && mv {aside} {SERVERDIR} && "
            f"systemctl reset-failed {UNIT_NAME}; systemctl start {UNIT_NAME}",
            step="roll back restore",
            check=False,
        )
        raise RemoteError(f"{exc}\nThe data from before the restore is back in place.") from None
    host.run(f"rm -rf {shlex.quote(work)} {RESTORES}/{shlex.quote(source.name)}", step="restore", check=False)
    return aside
