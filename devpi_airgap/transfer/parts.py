"""Bundles in parts, for media and portals that take no file past a size (FAT32 none of 4 GiB, a DVD 4.7 GB).

The parts are plain slices of the bundle: joined in order they are the bundle byte
for byte, and its sha256 and signature, made over the whole, are checked as for
any bundle. Each part's sha256 is listed after the bundle's in NAME.tar.sha256,
so a part damaged or left behind on the way is named before the join, and
`sha256sum -c --ignore-missing` checks the parts on any machine.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from devpi_airgap.core.errors import BundleError
from devpi_airgap.core.files import CHUNK, replace

_PART = re.compile(r"\.(\d{3})$")
MAX_PARTS = 999


def part_path(bundle: Path, number: int) -> Path:
    return bundle.with_name(f"{bundle.name}.{number:03d}")


def whole_name(path: Path) -> Path:
    """The bundle a path names: NAME.tar for NAME.tar.001, as a user may point at the first part."""
    return path.with_name(_PART.sub("", path.name))


def split_bundle(bundle: Path, part_size: int) -> list[Path]:
    """Cut a bundle larger than part_size into NAME.tar.001, .002, ...; list them in its .sha256; remove the whole."""
    size = bundle.stat().st_size
    if size <= part_size:
        return []
    count = -(-size // part_size)
    if count > MAX_PARTS:
        raise BundleError(f"bundles.part_size cuts {bundle.name} into {count} parts, more than {MAX_PARTS}; raise it")
    parts, sums = [], []
    try:
        with open(bundle, "rb") as whole:
            for number in range(1, count + 1):
                path, digest, left = part_path(bundle, number), hashlib.sha256(), part_size
                partial = path.with_name(path.name + ".partial")
                parts.append(partial)
                with open(partial, "wb") as out:
                    while left and (chunk := whole.read(min(CHUNK, left))):
                        digest.update(chunk)
                        out.write(chunk)
                        left -= len(chunk)
                replace(partial, path)
                parts[-1] = path
                sums.append(f"{digest.hexdigest()}  {path.name}\n")
    except BaseException:  # stopped or refused midway: the whole bundle stays as it was, with no parts beside it
        for written in parts:
            written.unlink(missing_ok=True)
        raise
    checksum = bundle.with_name(bundle.name + ".sha256")
    checksum.write_text(checksum.read_text() + "".join(sums))
    bundle.unlink()
    return parts


def listed_parts(bundle: Path) -> dict[str, str]:
    """Part name -> sha256, as the bundle's .sha256 lists them; empty for a bundle in one piece."""
    checksum = bundle.with_name(bundle.name + ".sha256")
    if not checksum.is_file():
        return {}
    lines = [line.split() for line in checksum.read_text().splitlines()[1:]]
    return {name: digest for digest, name in (line for line in lines if len(line) == 2) if _PART.search(name)}


def join_parts(bundle: Path, into: Path) -> Path:
    """The bundle, joined from the parts beside its name into the directory `into`, with its .sha256 and .sig.

    Each part is checked against its listed sha256 as it is copied, so each is read once: a part that
    does not match stops the join, and the joined file is removed.
    """
    listed = listed_parts(bundle)
    if not listed:
        raise BundleError(
            f"{bundle}: no such bundle file, and no {bundle.name}.sha256 beside it that lists its parts; "
            "copy the bundle (or all its parts) and its .sha256 across"
        )
    missing = [name for name in listed if not (bundle.parent / name).is_file()]
    if missing:
        raise BundleError(
            f"{bundle.name} comes in {len(listed)} parts, and {', '.join(missing)} is not beside the others in "
            f"{bundle.parent}; copy every part across. Nothing was imported."
        )
    joined = into / bundle.name
    with open(joined, "wb") as out:
        for name in sorted(listed):
            digest = hashlib.sha256()
            with open(bundle.parent / name, "rb") as part:
                while chunk := part.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != listed[name]:
                out.close()
                joined.unlink()
                raise BundleError(
                    f"{name}: its sha256 does not match {bundle.name}.sha256; that part is truncated or altered. "
                    "Copy it again; nothing was imported."
                )
    for beside in (".sha256", ".sig"):
        if (source := bundle.with_name(bundle.name + beside)).is_file():
            shutil.copyfile(source, joined.with_name(joined.name + beside))
    return joined
