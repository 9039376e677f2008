"""The wheelhouse on disk: one shared pool of files, a directory per target, a lock per target.

Each file is stored once in `wheelhouse/.pool/` and hard-linked into every
target directory that needs it, so a wheel several targets share costs one
download and one copy of disk. Target directories only ever gain files: an
offline index may still serve an older version someone pinned.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from devpi_airgap.core.errors import AirgapError

POOL = ".pool"
SDISTS = ".sdists"
_HASH_CACHE = ".sha256.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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
        """sha256 of a pool file, re-hashed only when its size or mtime changed since we last did."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        key = str(path.relative_to(self.pool))
        cached = self._hashes.get(key)
        if cached and cached[0] == st.st_size and cached[1] == st.st_mtime_ns:
            return cached[2]
        digest = sha256_file(path)
        self._hashes[key] = [st.st_size, st.st_mtime_ns, digest]
        return digest

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
        self.pool.mkdir(parents=True, exist_ok=True)
        tmp = self._cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._hashes, sort_keys=True))
        os.replace(tmp, self._cache_path)

    def target_dir(self, target_name: str) -> Path:
        return self.root / target_name

    def link(self, target_name: str, filenames: list[str]) -> list[str]:
        """Place pool files into the target's directory; returns those that were new there."""
        directory = self.target_dir(target_name)
        directory.mkdir(parents=True, exist_ok=True)
        added = []
        for filename in filenames:
            source, dest = self.pool / filename, directory / filename
            if dest.exists():
                if os.path.samefile(source, dest):
                    continue
                dest.unlink()
            try:
                os.link(source, dest)
            except OSError:
                # A wheelhouse on a filesystem without hard links (some USB disks) gets copies.
                shutil.copy2(source, dest)
            added.append(filename)
        return added


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


def write_lock(path: Path, header: dict, files: list[LockedFile]) -> bool:
    """Write the lock atomically; returns False when it already said exactly this."""
    body = dict(header, packages=[asdict(f) for f in sorted(files, key=lambda f: (f.name, f.version, f.filename))])
    text = json.dumps(body, indent=1, sort_keys=True) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True


def read_lock(path: Path) -> tuple[dict, list[LockedFile]]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        files = [LockedFile(**dict(entry, sets=tuple(entry.get("sets", ())))) for entry in body.pop("packages")]
    except FileNotFoundError:
        raise AirgapError(f"{path}: no lock file; run `inv download` without --locked first to create it") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise AirgapError(f"{path}: the lock file is damaged ({exc}); restore it from version control or re-resolve") from None
    return body, files
