"""A target's lock file: every file its wheelhouse holds, with its URL, sha256 and resolution sets.

Users commit locks in their own inventory repository, so the text is stable:
sorted keys and packages, one format for every writer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from devpi_airgap.core.errors import AirgapError, VerificationError
from devpi_airgap.core.files import write_if_changed


@dataclass(frozen=True)
class LockedFile:
    name: str
    version: str
    filename: str
    url: str
    sha256: str
    size: int
    built_from: dict | None = None  # the sdist (filename, url, sha256) a pure wheel was built from
    sets: tuple[str, ...] = ()  # the resolution sets that need this file, e.g. "devpi server"


def nothing_downloaded(targets: Iterable[str]) -> VerificationError:
    """The error for a task that needs a lock when none of its targets has one yet (exit 4: no locked file)."""
    names = ", ".join(targets) or "(none)"
    return VerificationError(
        f"no target has been downloaded yet ({names}: no lock file); run `inv download` first. Nothing was written."
    )


def write_lock(path: Path, header: dict, files: list[LockedFile]) -> bool:
    """Write the lock atomically; returns False when it already said exactly this."""
    body = dict(header, packages=[asdict(f) for f in sorted(files, key=lambda f: (f.name, f.version, f.filename))])
    return write_if_changed(path, json.dumps(body, indent=1, sort_keys=True) + "\n")


def read_lock(path: Path, data: bytes | None = None) -> tuple[dict, list[LockedFile]]:
    """The lock's header and files; from `data` when the caller has read the file already (it keeps the bytes too)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8") if data is None else data.decode("utf-8"))
        files = [LockedFile(**dict(entry, sets=tuple(entry.get("sets", ())))) for entry in body.pop("packages")]
    except FileNotFoundError:
        raise AirgapError(f"{path}: no lock file; run `inv download` without --locked first to create it") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise AirgapError(
            f"{path}: the lock file is damaged ({exc}); restore it from version control or re-resolve"
        ) from None
    return body, files


class Versioned(Protocol):
    """A release of a project: a lock's file, or a resolution's pin."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...


def versions_by_name(files: Iterable[Versioned]) -> dict[str, list[str]]:
    """Each project in a lock (or a resolution) with its versions, sorted: what "changed" is measured on."""
    found: dict[str, set[str]] = {}
    for f in files:
        found.setdefault(f.name, set()).add(f.version)
    return {name: sorted(v) for name, v in sorted(found.items())}


def lock_changes(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, list[str]]:
    """New, updated and removed projects between two versions_by_name maps."""
    return {
        "new": [f"{n} {', '.join(v)}" for n, v in after.items() if n not in before],
        "updated": [
            f"{n} {', '.join(before[n])} -> {', '.join(v)}" for n, v in after.items() if n in before and before[n] != v
        ],
        "removed": [f"{n} {', '.join(v)}" for n, v in before.items() if n not in after],
    }
