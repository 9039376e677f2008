"""The logins a user keeps for index hosts in a netrc file, read as pip, uv and curl read them.

An index that wants credentials (a company's Artifactory or Nexus mirror) would otherwise need
them written into index_url, and so into inventory.yaml, which a team keeps in version control.
uv reads the same file for its own requests, so one place serves both.
"""

from __future__ import annotations

import netrc
import os
import threading
from pathlib import Path

from devpi_airgap.core.errors import UsageError

_read: dict[tuple[str, int], netrc.netrc] = {}
_reading = threading.Lock()


def where_credentials_go(host: str | None) -> str:
    """The remedy for an index that asks for credentials, for its messages."""
    return (
        f"give them in a netrc file (~/.netrc: `machine {host} login USER password TOKEN`), which uv reads too, "
        "rather than in index_url, which inventory.yaml would keep"
    )


def netrc_file() -> Path | None:
    """NETRC where set; else ~/.netrc, or ~/_netrc as Windows tools name it; None when there is none."""
    if os.environ.get("NETRC"):
        return Path(os.environ["NETRC"])
    try:
        home = Path.home()
    except (RuntimeError, KeyError):  # no HOME, and a user id without a passwd entry (a container's, say)
        return None
    return next((path for path in (home / ".netrc", home / "_netrc") if path.is_file()), None)


def login_for(host: str | None) -> tuple[str, str] | None:
    """(login, password) the netrc file gives `host` (by name, whatever the port), else None.

    A file that cannot be parsed is a usage error naming it and its line (Python's netrc module also
    refuses a ~/.netrc that others may read, as ftp does): silently unread, it would only surface as
    the index's 401 later.
    """
    path = netrc_file()
    if host is None or path is None:
        return None
    try:  # one look at the file for each request: a file edited during a run is read again
        key = (str(path), path.stat().st_mtime_ns)
    except OSError:  # NETRC names a file that is not there
        return None
    with _reading:
        if key not in _read:
            try:
                _read[key] = netrc.netrc(str(path))
            except (netrc.NetrcParseError, OSError) as exc:
                raise UsageError(
                    f"{path}: cannot read this netrc file ({exc}); fix it (lines such as `machine HOST login "
                    "USER password TOKEN`) and run again"
                ) from None
        found = _read[key]
    entry = found.authenticators(host)
    return (entry[0], entry[2] or "") if entry else None
