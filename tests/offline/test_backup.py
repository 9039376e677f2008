"""backup.py's checks of what it is given, on this machine, before anything on a server changes.

The backups and restores themselves run against a booted host in test_deploy.py and test_replica.py.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from devpi_airgap.core.errors import ExitCode, UsageError
from devpi_airgap.core.inventory import Server
from devpi_airgap.offline.backup import backup, backup_files, planned_backup, planned_restore, restore


def _backup_tar(path, dataindex: bytes):
    with tarfile.open(path, "w") as tar:
        member = tarfile.TarInfo(f"{path.stem}/dataindex.json")
        member.size = len(dataindex)
        tar.addfile(member, io.BytesIO(dataindex))
    return path


def test_a_backups_files_of_the_index_are_read_here(tmp_path):
    release = {"type": "releasefile", "relpath": "+f/abc/app-1.0-py3-none-any.whl"}
    release["entrymapping"] = {"hashes": {"sha256": "ab" * 32}}
    other = {"type": "doczip", "relpath": "+f/abc/app-1.0.doc.zip", "entrymapping": {"hashes": {"sha256": "cd" * 32}}}
    data = {"indexes": {"airgap/prod": {"files": [release, other]}, "airgap/other": {"files": []}}}
    source = _backup_tar(tmp_path / "devpi-20260101T000000Z.tar", json.dumps(data).encode())
    assert backup_files(source, "airgap/prod") == {"app-1.0-py3-none-any.whl": "ab" * 32}
    assert backup_files(source, "airgap/missing") == {}


@pytest.mark.parametrize(
    "name, content, said",
    [
        ("devpi-20260101T000000Z.tar", None, "does not exist"),
        ("pins.txt", b"app==1.0\n", "is not a backup file made by `fab backup`"),
        ("devpi-20260101T000000Z.tar", b"cut short", "holds no readable devpi-export"),
        ("devpi-20260101T000000Z.tar", "not json", "holds no readable devpi-export"),
    ],
    ids=["missing", "another file", "not a tar", "no export in it"],
)
def test_what_is_no_backup_is_the_users_input_and_changes_nothing(tmp_path, name, content, said):
    """A wrong --from exits 2, as bad input does, before any step on the server: not 6, a failed server step."""
    source = tmp_path / name
    if content == "not json":
        _backup_tar(source, b"{cut")
    elif content is not None:
        source.write_bytes(content)
    with pytest.raises(UsageError) as raised:
        backup_files(source, "airgap/prod")
    message = " ".join(str(raised.value).split())
    assert raised.value.exit_code == ExitCode.USAGE
    assert str(source) in message and said in message and "Nothing was changed" in message


class NoServer:
    def __getattr__(self, name):
        raise AssertionError(f"the server was asked for {name}")


def test_keeping_no_backup_is_refused_before_the_server_is_asked_anything():
    with pytest.raises(UsageError, match="--keep must be at least 1"):
        backup(NoServer(), NoServer(), Path("backups"), keep=0)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="--keep must be at least 1"):
        planned_backup(NoServer(), Path("backups"), keep=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("restoring", [restore, planned_restore], ids=["restore", "restore --check"])
def test_a_replica_is_never_restored_into_its_primary_is(tmp_path, restoring):
    """Imported into, a replica would be a devpi of its own that follows nothing; the remedy is its primary's."""
    replica = Server("devpi-replica", "server", role="replica", primary="devpi-host")
    with pytest.raises(UsageError) as raised:
        restoring(NoServer(), replica, tmp_path / "devpi-20260101T000000Z.tar")  # type: ignore[arg-type]
    message = " ".join(str(raised.value).split())
    assert "devpi-replica is a replica of devpi-host" in message
    assert "`fab -H devpi-host restore --from ...`" in message and "`fab -H devpi-host,devpi-replica deploy`" in message
