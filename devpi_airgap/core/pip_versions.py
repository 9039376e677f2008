"""Which pip can install a wheel: pip learned the newer platform tags release by release.

A wheel whose only tags for a target are ones the client's pip does not know is
invisible to that pip: on the closed network `pip install` then says "No matching
distribution found", though the wheel is on the index and uv's proof passed. Clients
keep the pip their Python came with unless someone upgrades it, and on a closed
network nobody may have. So a target's clients are taken to have the pip that its
Python's first release bundled, unless the inventory names a newer one (oldest_pip).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from packaging.tags import Tag
from packaging.utils import parse_wheel_filename
from packaging.version import Version

# The pip each Python's first release bundled (its Lib/ensurepip), the oldest a fresh install has.
BUNDLED_PIP = {
    "3.6": "9.0.1",
    "3.7": "10.0.1",
    "3.8": "19.2.3",
    "3.9": "20.2.3",
    "3.10": "21.2.3",
    "3.11": "22.3",
    "3.12": "23.2.1",
    "3.13": "24.2",
    "3.14": "25.2",
}

# The first pip whose tag code yields each family, read from pip's releases (pip/_vendor/packaging/tags.py);
# tests/core/test_pip_versions.py runs the releases on each side of every line.
_FIRST_PIP = (
    (re.compile(r"^manylinux2010_"), "19.0"),
    (re.compile(r"^manylinux2014_"), "19.3"),
    (re.compile(r"^manylinux_\d+_\d+_"), "20.3"),  # PEP 600
    (re.compile(r"^musllinux_"), "21.2"),  # PEP 656
    # macOS 11 numbers its releases by the major version, and brought arm64 and universal2 binaries
    (re.compile(r"^macosx_(1[1-9]|[2-9]\d)_\d+_|^macosx_\d+_\d+_universal2$"), "20.3"),
)


def first_pip_knowing(platform_tag: str) -> Version:
    """The first pip release that installs a wheel with this platform tag (0 for one every pip knows)."""
    for pattern, version in _FIRST_PIP:
        if pattern.match(platform_tag):
            return Version(version)
    return Version("0")


def assumed_pip(python: str, oldest_pip: str | None) -> Version:
    """The oldest pip a target's clients install with: as the inventory says, else what their Python bundled."""
    if oldest_pip:
        return Version(oldest_pip)
    return Version(BUNDLED_PIP.get(python) or max(BUNDLED_PIP.values(), key=Version))  # a newer Python: the newest


@dataclass(frozen=True)
class UnknownToPip:
    """A wheel that an old pip cannot see for the target, and the pip it needs."""

    filename: str
    tag: str  # its best platform tag for the target
    needs: Version

    def __str__(self) -> str:
        return f"{self.filename} (its {self.tag} tag needs pip {self.needs})"


def unknown_to_pip(filenames: Iterable[str], accepted: Iterable[Tag], pip: Version) -> list[UnknownToPip]:
    """The wheels among `filenames` of which no tag the target accepts is one `pip` knows."""
    accepted = set(accepted)
    found = []
    for filename in sorted(filenames):
        if not filename.endswith(".whl"):
            continue
        fitting = [t for t in parse_wheel_filename(filename)[3] if t in accepted]
        if not fitting:
            continue  # not for this target at all: the wheelhouse checks say so
        needed = {t.platform: first_pip_knowing(t.platform) for t in fitting}
        if min(needed.values()) > pip:
            tag = min(needed, key=lambda p: needed[p])
            found.append(UnknownToPip(filename, tag, needed[tag]))
    return found


class ClientsTarget(Protocol):
    """What of an inventory target says which pip its clients have (the inventory reads BUNDLED_PIP from here)."""

    @property
    def name(self) -> str: ...
    @property
    def python(self) -> str: ...
    @property
    def oldest_pip(self) -> str | None: ...


def clients_pip_problems(target: ClientsTarget, accepted: Iterable[Tag], filenames: Iterable[str]) -> list[str]:
    """Wheels the target's clients' pip cannot see, with the remedies: uv and a new pip install them, an old pip
    finds no matching distribution. Empty when there are none."""
    pip = assumed_pip(target.python, target.oldest_pip)
    unseen = unknown_to_pip(filenames, accepted, pip)
    if not unseen:
        return []
    whose = f"oldest_pip {pip}" if target.oldest_pip else f"pip {pip}, the one Python {target.python} came with"
    files = "; ".join(map(str, unseen))
    needed = max(u.needs for u in unseen)
    legacy = (
        "; or give the target legacy manylinux platforms only (such as manylinux2014_x86_64), so that wheels "
        "that also carry the old name are chosen"
        if any(u.tag.startswith("manylinux_") for u in unseen)
        else ""
    )
    return [
        f"the clients' pip ({whose}) cannot see {len(unseen)} wheel(s) of this target, and `pip install` there "
        f"would find no matching distribution: {files}. If every client has pip {needed} or newer, say so with "
        f'oldest_pip: "{needed}" under targets.{target.name}; otherwise put pip in this target\'s requirements, '
        f"have the clients run `python -m pip install --upgrade pip` from the index first, then say so{legacy}"
    ]
