"""`fab backup` and `fab restore`: devpi-export into a dated directory, kept here and there.

devpi-export and devpi-import need the server's storage to themselves, so the
service stops for the export and restarts after it, whatever happened. A
restore sets the current data aside first and puts it back if the import or
the restarted service fails, so a failed restore loses nothing. A file
recalled on the server since the backup was made stays off the index: the
restore leaves it out of what it imports.
"""

from __future__ import annotations

import json
import shlex
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from devpi_airgap.core.errors import RemoteError, UsageError
from devpi_airgap.core.inventory import Server
from devpi_airgap.offline.devpi_api import DevpiClient
from devpi_airgap.offline.health import service_active, wait_healthy
from devpi_airgap.offline.layout import BACKUPS, RESTORES, SERVERDIR, SERVICE_USER, UNIT_NAME, VENV
from devpi_airgap.offline.programs import without_recalled
from devpi_airgap.offline.recall import active_recalls, recall_log
from devpi_airgap.offline.remote import Host

BACKUPS_KEPT = 7


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _beyond(backups: list, keep: int) -> list:
    """The oldest of these backups, all but the newest `keep` (names sort by time)."""
    return sorted(backups)[: max(len(backups) - keep, 0)]


def _local_backups(directory: Path) -> list[Path]:
    return list(directory.glob("devpi-*.tar"))


def _check_keep(keep: int) -> None:
    if keep < 1:
        raise UsageError("backup: --keep must be at least 1")


def backup(host: Host, server: Server, destination: Path, keep: int = BACKUPS_KEPT) -> Path:
    """Export the server's data, bring it here, keep the newest `keep` on both sides; returns the local file."""
    _check_keep(keep)
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
    for old in _beyond(_local_backups(local.parent), keep):
        old.unlink()
    if was_active:
        wait_healthy(host, server.port)
    return local


@dataclass(frozen=True)
class BackupPlan:
    """What `backup` would do, read without changing anything (`fab backup --check`)."""

    host: str
    stops_service: bool  # devpi runs there, and devpi-export needs its storage to itself
    data_bytes: int  # what the export reads, and so what decides how long the service is stopped
    written_to: Path
    removed_here: list[Path]
    removed_there: list[str]


def planned_backup(host: Host, destination: Path, keep: int = BACKUPS_KEPT) -> BackupPlan:
    """What a backup would stop, write and remove, here and on the server."""
    _check_keep(keep)
    host.become_root()
    there = host.run(f"ls -1 {BACKUPS}/devpi-*.tar 2>/dev/null", step="backup", check=False).stdout.split()
    size = host.run(f"du -sb {SERVERDIR} 2>/dev/null | cut -f1", step="backup", check=False).stdout.strip()
    here = destination / host.name
    return BackupPlan(
        host=host.name,
        stops_service=service_active(host),
        data_bytes=int(size) if size.isdigit() else 0,
        written_to=here,
        removed_here=_beyond(_local_backups(here), keep - 1),  # one more comes in
        removed_there=[Path(p).name for p in _beyond(there, keep - 1)],
    )


@dataclass(frozen=True)
class RestorePlan:
    """What `restore` would do, read without changing anything (`fab restore --check`)."""

    backup: str
    index: str  # user/index
    in_backup: dict[str, str]  # filename -> sha256 of the index's files in the backup
    now: dict[str, str] | None  # the same on the live index; None while devpi is not running
    recalled: frozenset[str]  # recalled on this server: a restore leaves them out

    @property
    def left_out(self) -> list[str]:
        return sorted(set(self.in_backup) & self.recalled)

    @property
    def restored(self) -> dict[str, str]:
        return {name: sha for name, sha in self.in_backup.items() if name not in self.recalled}

    @property
    def dropped(self) -> list[str]:
        """On the index now, and not with these bytes in what a restore puts in place."""
        restored = self.restored
        return sorted(name for name, sha in (self.now or {}).items() if restored.get(name) != sha)

    @property
    def returned(self) -> list[str]:
        """In what a restore puts in place, and gone from the index now."""
        return [] if self.now is None else sorted(set(self.restored) - set(self.now))


@dataclass(frozen=True)
class Restored:
    host: str
    aside: str  # where the data the restore replaced is kept on the server
    left_out: list[str]  # recalled files the backup held, kept off the index


def backup_files(source: Path, index: str) -> dict[str, str]:
    """filename -> sha256 of `index`'s files in a backup made by `backup`, read here from its devpi-export.

    Read before anything on the server changes: a file that is no such backup, or a damaged one, stops here
    with a usage error (exit 2), as a wrong --from is the user's input, not a step on the server.
    """
    if not source.is_file():
        raise UsageError(
            f"restore: {source} does not exist (or is no file); give --from a backup made by `fab backup`, "
            "which keeps them in its --to directory (backups/ by default) as devpi-STAMP.tar. Nothing was changed."
        )
    if not source.name.startswith("devpi-") or source.suffix != ".tar":
        raise UsageError(
            f"restore: {source} is not a backup file made by `fab backup` (devpi-STAMP.tar). Nothing was changed."
        )
    member = f"{source.stem}/dataindex.json"
    try:
        with tarfile.open(source) as tar:
            handle = tar.extractfile(member)
            if handle is None:
                raise KeyError(member)
            data = json.load(handle)
        files = data["indexes"].get(index, {}).get("files", [])
        return {
            f["relpath"].rsplit("/", 1)[-1]: f["entrymapping"]["hashes"]["sha256"]
            for f in files
            if f.get("type") == "releasefile"
        }
    except (OSError, tarfile.TarError, KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"restore: {source} holds no readable devpi-export ({type(exc).__name__}: {exc}); it is not a backup "
            "made by `fab backup`, or it is damaged. Nothing was changed; restore from another backup."
        ) from None


def _not_a_replica(server: Server) -> None:
    """A replica holds its primary's data: imported into, it would be a server of its own that follows nothing."""
    if server.is_replica:
        raise UsageError(
            f"restore: {server.name} is a replica of {server.primary}, and follows its data. Restore "
            f"{server.primary} (`fab -H {server.primary} restore --from ...`), then deploy both "
            f"(`fab -H {server.primary},{server.name} deploy`), which sets {server.name} up anew from it. "
            "Nothing was changed."
        )


def planned_restore(host: Host, server: Server, source: Path) -> RestorePlan:
    """What `restore` would put in place and what it would drop, against the live index where devpi runs."""
    _not_a_replica(server)
    index = f"{server.user}/{server.index}"
    in_backup = backup_files(source, index)
    host.become_root()
    recalled = frozenset(active_recalls(recall_log(host)))
    now = None
    if service_active(host):
        with host.http(server.port) as base_url, DevpiClient(base_url) as client:
            now = client.index_files(server.user, server.index)
    return RestorePlan(source.name, index, in_backup, now, recalled)


def restore(host: Host, server: Server, source: Path) -> Restored:
    """Replace the server's data with a backup made by `backup`, leaving out what was recalled since."""
    _not_a_replica(server)
    stage = f"{server.user}/{server.index}"
    backup_files(source, stage)
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
    left_out: list[str] = []
    recalled = sorted(active_recalls(recall_log(host)))
    if recalled:
        left_out = host.run_program(
            without_recalled, f"{work}/dataindex.json", stage, json.dumps(recalled), step="restore", user=SERVICE_USER
        ).stdout.split()
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
    return Restored(host.name, aside, left_out)
