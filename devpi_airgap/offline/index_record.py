"""The files an index held at one state of its server, so that a server which has not changed is not listed again.

devpi has no listing of all of an index's files with their hashes: it takes one request per project, about
2 ms of the server's time each. For bench.upload's 138 projects that is 0.26-0.31 s, nearly all of a no-op
re-sync, however many client threads ask.

devpi commits every change to its database under the next serial, and /+status names the server's uuid,
its serial and the time of its last commit. While all three are as they were, so is every index of that
server, and the files listed at that state are still its files.
- The state is read before the listing. A change between the two then leaves the older state on the
  record, which the next run finds changed; never the newer state with the older listing.
- The commit time guards a server directory restored from a copy. It keeps its uuid and goes back to
  an older serial, and may count up to the recorded serial again with other changes, but not at the
  same times.

The record only saves time. One that cannot be read is ignored, and one that cannot be written is not
kept: either way the next run lists the index again.

Only deploy's upload step reads through it: after that step, deploy resolves every target from the live
index, which would fail on a file wrongly taken as present. `fab upload`, a recall and the live audit list
the index afresh: nothing after them would notice a missed file.
"""

from __future__ import annotations

import json
from pathlib import Path

from devpi_airgap.core.files import atomic_write
from devpi_airgap.offline.devpi_api import DevpiClient


def _state(status: dict) -> list:
    return [status.get("serial"), status.get("last-commit-timestamp")]


class IndexRecord:
    """What each index looked like at its server's last known state, kept in one JSON file on this machine."""

    def __init__(self, path: Path):
        self.path = path
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        entries = data.items() if isinstance(data, dict) else ()
        self._entries: dict[str, dict] = {
            key: entry
            for key, entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("state"), list) and isinstance(entry.get("files"), dict)
        }

    def files(self, client: DevpiClient, user: str, index: str) -> dict[str, str]:
        """filename -> sha256 of every file on user/index, as DevpiClient.index_files gives them."""
        status = client.status()
        key = f"{status.get('uuid')} {user}/{index}"
        state = _state(status)
        entry = self._entries.get(key)
        if entry is not None and entry["state"] == state:
            return dict(entry["files"])
        files = client.index_files(user, index)
        self._entries[key] = {"state": state, "files": files}
        try:
            atomic_write(self.path, json.dumps(self._entries, sort_keys=True))
        except OSError:
            pass  # see the module's docstring: the next run lists the index again
        return files
