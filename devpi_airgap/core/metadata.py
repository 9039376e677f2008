"""What a wheel says about itself: its METADATA, read straight from the archive.

Licenses and a server's Python floor are both taken from here rather than from
the index, so that the offline side can re-read them from the very files it
is about to serve.
"""

from __future__ import annotations

import email.parser
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from devpi_airgap.core.errors import VerificationError


class MetadataError(VerificationError):
    """A wheel's METADATA is missing or cannot be read."""


def read_metadata(wheel: Path) -> Message:
    """The wheel's core metadata; headers keep their order and may repeat (Classifier)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            # The dist-info directory sits at the top of the archive; a vendored
            # package's own dist-info deeper down is not this wheel's metadata.
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise MetadataError(
                    f"{wheel.name} has {len(names) or 'no'} top-level .dist-info/METADATA; "
                    "the file is not a valid wheel: delete it and run `inv download` again"
                )
            text = archive.read(names[0]).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError) as exc:
        raise MetadataError(
            f"{wheel.name} cannot be opened as a wheel ({exc}); delete it and run `inv download` again"
        ) from None
    return email.parser.Parser().parsestr(text, headersonly=True)


@dataclass(frozen=True)
class DeclaredNeeds:
    """What an sdist says, without being built, that the wheel built from it needs."""

    requires_dist: tuple[str, ...]
    requires_python: str | None
    provides_extras: tuple[str, ...]


# Fields a PKG-INFO of Metadata-Version 2.2 or later may leave to the build (Dynamic, PEP 643).
_NEEDS = {"requires-dist", "requires-python", "provides-extra"}


def sdist_needs(sdist: Path) -> DeclaredNeeds | None:
    """What the sdist declares it needs: from a static PKG-INFO (2.2 or later, PEP 643), else from setuptools'
    egg-info (requires.txt), which old sdists such as pyramid-chameleon's carry; None when it says nothing sure.

    A declaration only: the caller takes it as a hint, and the wheel built from the sdist has the last word.
    """
    try:
        with tarfile.open(sdist) as archive:
            members = {m.name: m for m in archive.getmembers() if m.isfile()}
            top = sorted({name.split("/", 1)[0] for name in members})
            if len(top) != 1:
                return None
            pkg_info = _text(archive, members.get(f"{top[0]}/PKG-INFO"))
            if pkg_info is None:
                return None
            headers = email.parser.Parser().parsestr(pkg_info, headersonly=True)
            if _version(headers.get("Metadata-Version")) >= (2, 2):
                if _NEEDS & {field.lower() for field in headers.get_all("Dynamic") or ()}:
                    return None
                return _declared(headers.get_all("Requires-Dist") or (), headers)
            egg_info = [n for n in members if n.count("/") == 2 and n.split("/")[1].endswith(".egg-info")]
            if not any(n.endswith("/PKG-INFO") for n in egg_info):
                return None
            requires = next((n for n in egg_info if n.endswith("/requires.txt")), None)
            text = _text(archive, members.get(requires)) if requires else ""
            return _from_requires_txt(text, headers) if text is not None else None
    except (OSError, tarfile.TarError, UnicodeDecodeError, ValueError):
        return None


def _text(archive: tarfile.TarFile, member: tarfile.TarInfo | None) -> str | None:
    handle = archive.extractfile(member) if member is not None else None
    return handle.read().decode("utf-8") if handle is not None else None


def _version(text: str | None) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in (text or "").strip().split("."))
    except ValueError:
        return ()


def _from_requires_txt(text: str, headers: Message) -> DeclaredNeeds | None:
    """setuptools' requires.txt: plain lines, then `[extra]`, `[:marker]` or `[extra:marker]` sections."""
    requires: list[str] = []
    extras: list[str] = []
    condition = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _, marker = line[1:-1].partition(":")
            if extra:
                extras.append(extra)
            parts = [f"({marker})" if marker and extra else marker, f'extra == "{extra}"' if extra else ""]
            condition = " and ".join(part for part in parts if part)
            continue
        if ";" in line:  # setuptools moves markers into the section's name: a line with its own is not its writing
            return None
        requires.append(f"{line}; {condition}" if condition else line)
    return _declared(requires, headers, tuple(extras))


def needs_in(headers: Message) -> DeclaredNeeds:
    """What a METADATA or PKG-INFO says the project needs, as written."""
    return DeclaredNeeds(
        tuple(headers.get_all("Requires-Dist") or ()),
        headers.get("Requires-Python"),
        tuple(headers.get_all("Provides-Extra") or ()),
    )


def _declared(requires: Iterable[str], headers: Message, extras: tuple[str, ...] | None = None) -> DeclaredNeeds | None:
    try:
        parsed = tuple(str(Requirement(r)) for r in requires)
    except InvalidRequirement:
        return None
    said = needs_in(headers)
    return DeclaredNeeds(parsed, said.requires_python, said.provides_extras if extras is None else extras)
