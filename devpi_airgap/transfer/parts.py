"""Bundles in parts, for media and portals that take no file past a size (FAT32 none of 4 GiB, a DVD 4.7 GB).

The parts are plain slices of the bundle: joined in order they are the bundle byte
for byte, and its sha256 and signature, made over the whole, are checked as for
any bundle. Each part's sha256 is listed after the bundle's in NAME.tar.sha256,
so a part damaged or left behind on the way is named before the join, and
`sha256sum -c --ignore-missing` checks the parts on any machine.
"""

from __future__ import annotations

import errno
import hashlib
import io
import re
import shutil
from pathlib import Path
from typing import Any, BinaryIO

from devpi_airgap.core.errors import BundleError
from devpi_airgap.core.files import CHUNK, replace

_PART = re.compile(r"\.(\d{3})$")
MAX_PARTS = 999


def part_path(bundle: Path, number: int) -> Path:
    return bundle.with_name(f"{bundle.name}.{number:03d}")


def whole_name(path: Path) -> Path:
    """The bundle a path names: NAME.tar for NAME.tar.001, as a user may point at the first part."""
    return path.with_name(_PART.sub("", path.name))


class PartedFile(io.RawIOBase):
    """A write-only file that lands as NAME.tar, or past part_size as NAME.tar.001, .002, ...: written once.

    Cut as it is written, a bundle in parts needs room for itself once, not twice, and is
    not read again to be cut. The whole and each part are hashed as the bytes pass. Until
    finish(), every piece sits under a partial name that starts with `prefix`; leaving the
    `with` block by an exception removes them all.
    """

    def __init__(self, path: Path, part_size: int | None, prefix: str):
        self.path, self.part_size, self.prefix = path, part_size, prefix
        self.digest = hashlib.sha256()
        self.position = 0
        self.pieces: list[tuple[Path, Any]] = []  # partial path, its sha256 so far
        self.landed: list[Path] = []
        self._out: BinaryIO | None = None
        self._left = 0

    def __exit__(self, kind, exc, tb) -> None:
        if self._out is not None:
            try:
                self._out.close()
            except OSError:  # its buffer's flush failed as the write did (a full disk, a size limit)
                if kind is None:
                    raise
        if kind is not None:
            for path in [partial for partial, _ in self.pieces] + self.landed:
                path.unlink(missing_ok=True)
        super().__exit__(kind, exc, tb)

    def writable(self) -> bool:
        return True

    @property
    def in_piece(self) -> int:
        """Bytes written into the piece being written: where a limit on one file's size stopped it."""
        return self.position - (len(self.pieces) - 1) * (self.part_size or 0) if self.pieces else 0

    def tell(self) -> int:
        return self.position

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        while view:
            if not self._left:
                self._next_piece()
            n = min(len(view), self._left)
            assert self._out is not None
            self._out.write(view[:n])
            self.pieces[-1][1].update(view[:n])
            view, self._left, self.position = view[n:], self._left - n, self.position + n
        return len(data)

    def _next_piece(self) -> None:
        if self._out is not None:
            self._out.close()
        number = len(self.pieces) + 1
        if number > MAX_PARTS:
            raise BundleError(
                f"bundles.part_size ({self.part_size} bytes) cuts {self.path.name} into more than {MAX_PARTS} "
                "parts; raise it. Nothing was kept."
            )
        partial = self.path.with_name(f"{self.prefix}{self.path.name}.{number:03d}.part")
        self._out = open(partial, "wb")  # noqa: SIM115 (closed by the next piece, or on leaving)
        self.pieces.append((partial, hashlib.sha256()))
        self._left = self.part_size or 1 << 62  # without a part size, one piece takes everything

    def finish(self) -> dict[Path, str]:
        """Put the pieces under their names: {the bundle: sha256}, or each part's, in order, for more than one."""
        if not self.pieces:  # nothing written: the empty file that open() would have left
            self._next_piece()
        assert self._out is not None
        self._out.close()
        self._out = None
        if len(self.pieces) == 1:
            named = {self.path: self.pieces[0][0]}
        else:
            named = {part_path(self.path, n): partial for n, (partial, _) in enumerate(self.pieces, 1)}
        digests = {partial: digest.hexdigest() for partial, digest in self.pieces}
        for final, partial in named.items():
            replace(partial, final)
            self.landed.append(final)
        return {final: digests[partial] for final, partial in named.items()}


def listed_parts(bundle: Path) -> dict[str, str]:
    """Part name -> sha256, as the bundle's .sha256 lists them; empty for a bundle in one piece."""
    checksum = bundle.with_name(bundle.name + ".sha256")
    if not checksum.is_file():
        return {}
    lines = [line.split() for line in checksum.read_text().splitlines()[1:]]
    return {name: digest for digest, name in (line for line in lines if len(line) == 2) if _PART.search(name)}


_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


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
    try:
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
    except OSError as exc:
        if exc.filename is not None or exc.errno not in _NO_ROOM:
            raise
        # a write refused for room names no file: it is the joined one, in `into`, that needs the room
        raise OSError(exc.errno, exc.strerror, str(joined)) from None
    for beside in (".sha256", ".sig"):
        if (source := bundle.with_name(bundle.name + beside)).is_file():
            shutil.copyfile(source, joined.with_name(joined.name + beside))
    return joined
