"""The wheelhouse on disk: one shared pool of files, a directory per target, a lock per target.

Each file is stored once in `wheelhouse/.pool/` and hard-linked into every
target directory that needs it, so a wheel several targets share costs one
download and one copy of disk. Target directories only ever gain files: an
offline index may still serve an older version someone pinned.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from devpi_airgap.core.files import change_stamp, sha256_file, write_if_changed

POOL = ".pool"
SDISTS = ".sdists"
_HASH_CACHE = ".sha256.json"
_SAVING = threading.Lock()  # a read, merge and write of the cache at a time in this process


class Wheelhouse:
    def __init__(self, root: Path):
        self.root = root
        self.pool = root / POOL
        self.sdists = self.pool / SDISTS
        self._cache_path = self.pool / _HASH_CACHE
        self._hashes: dict[str, list] = {}
        if self._cache_path.exists():
            try:
                self._hashes = json.loads(self._cache_path.read_text())
            except ValueError:
                self._hashes = {}

    def sha256(self, path: Path) -> str | None:
        """sha256 of a pool file, re-hashed whenever the file may have been written since we last hashed it.

        The cache key is what no write can leave as it was: size, inode, and the
        change time (ctime). Unlike the modification time, ctime cannot be set
        back: putting an mtime back is itself a change that moves ctime on.
        """
        try:
            stamp = change_stamp(path)
        except FileNotFoundError:
            return None
        key = str(path.relative_to(self.pool))
        cached = self._hashes.get(key)
        if cached and cached[:3] == stamp:
            return cached[3]
        digest = sha256_file(path)
        self._hashes[key] = [*stamp, digest]
        return digest

    def record(self, path: Path, sha256: str) -> None:
        """Remember the sha256 of a pool file just written and checked against it: no need to read it again."""
        self._hashes[str(path.relative_to(self.pool))] = [*change_stamp(path), sha256]

    def has(self, directory: Path, filename: str, sha256: str) -> bool:
        """True when the pool already holds this exact file; a mismatching one is removed so it is fetched again."""
        path = directory / filename
        actual = self.sha256(path)
        if actual == sha256:
            return True
        if actual is not None:
            path.unlink()
        return False

    def save(self) -> None:
        """Write the hash cache, merged with what another Wheelhouse on this pool wrote since this one read it.

        A target's verify reads and writes the cache while the download goes on
        linking and writing it too. Of two entries for a file, the one that still
        matches the file on disk stays; an entry that matches nothing is dropped.
        """
        with _SAVING:
            try:
                on_disk = json.loads(self._cache_path.read_text())
            except (FileNotFoundError, ValueError):
                on_disk = {}
            merged = {}
            for key in self._hashes.keys() | on_disk.keys():
                try:
                    stamp = change_stamp(self.pool / key)
                except FileNotFoundError:
                    continue
                for entry in (self._hashes.get(key), on_disk.get(key)):
                    if entry is not None and entry[:3] == stamp:
                        merged[key] = entry
                        break
            self._hashes = merged
            write_if_changed(self._cache_path, json.dumps(merged, sort_keys=True))

    def link(self, directory: Path, filenames: list[str]) -> list[str]:
        """Place pool files into a target's directory; returns those that were new there."""
        directory.mkdir(parents=True, exist_ok=True)
        added = []
        for filename in filenames:
            source, dest = self.pool / filename, directory / filename
            if dest.exists():
                if os.path.samefile(source, dest):
                    continue
                dest.unlink()
            cached = self._hashes.get(filename)
            known = cached is not None and cached[:3] == change_stamp(source)
            try:
                os.link(source, dest)
            except OSError:
                # A wheelhouse on a filesystem without hard links (some USB disks) gets copies.
                shutil.copy2(source, dest)
            if known and cached is not None:  # a link moves the ctime, not the bytes: the hash still holds
                self._hashes[filename] = [*change_stamp(source), cached[3]]
            added.append(filename)
        return added
