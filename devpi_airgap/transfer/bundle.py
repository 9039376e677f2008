"""`inv bundle`: one file to carry across the gap, complete, intact and provably ours.

An uncompressed tar (wheels are zips already), streamed member by member so
memory stays flat however large it is: manifest.json first (every file with
its sha256, size and targets, each target's lock, the tool's version, the
creation time), then the locks, then the wheels. Beside it a sha256sum-style
checksum file and, optionally, an SSH signature (`ssh-keygen -Y sign`).

Bundles are deltas by default: wheelhouse/.shipped.json remembers every file
any bundle carried, and only the others go into the next one.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devpi_airgap import __version__
from devpi_airgap.core.advisories import Snapshot
from devpi_airgap.core.audit import AuditReport
from devpi_airgap.core.console import human_bytes
from devpi_airgap.core.errors import FetchError, ResolutionError, VerificationError
from devpi_airgap.core.files import atomic_write, scratch_prefix
from devpi_airgap.core.inventory import Inventory, Target
from devpi_airgap.core.lock import LockedFile, lock_changes, nothing_downloaded, read_lock, versions_by_name
from devpi_airgap.core.pip_versions import clients_pip_problems
from devpi_airgap.core.platforms import target_platform
from devpi_airgap.core.requirements import hash_problems, resolution_sets, served_wheel_problems
from devpi_airgap.core.runlock import wheelhouse_lock
from devpi_airgap.core.wheelhouse import Wheelhouse
from devpi_airgap.transfer.bundle_check import CHUNK, MANIFEST, NAMESPACE, BundleError
from devpi_airgap.transfer.evidence import build_evidence, render_html, to_json
from devpi_airgap.transfer.parts import PartedFile

_SHIPPED = ".shipped.json"
ADVISORIES = "advisories/osv.json"  # the advisory snapshot inside a bundle
_BUNDLED = ".bundled.json"  # each target's projects and versions as the last bundle left them


def inventory_id(inventory: Inventory) -> str:
    """Which inventory a bundle belongs to: its targets' names, platforms and Pythons."""
    shape = sorted((t.name, t.platforms, t.python) for t in inventory.targets.values())
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]


def _shipped_path(inventory: Inventory) -> Path:
    return inventory.wheelhouse / _SHIPPED


def _load_shipped(inventory: Inventory) -> dict[str, str]:
    return _load_json(_shipped_path(inventory))


def shipped_sha256s(inventory: Inventory) -> set[str]:
    """The sha256 of every file an earlier bundle carried: the next delta leaves them out."""
    return set(_load_shipped(inventory))


@dataclass(frozen=True)
class _Collected:
    """Every downloaded target's lock, read once: its bytes, its files, and the files by name across targets."""

    files: dict[str, dict]  # by file name, as the manifest lists each: name, sha256, size, targets
    locks: dict[str, bytes]  # by target: the lock file as it is on disk
    locked: dict[str, list[LockedFile]]  # by target: the lock's files


def _collect(inventory: Inventory, wheelhouse: Wheelhouse) -> _Collected:
    """Every locked file of every downloaded target, checked against its lock's sha256."""
    collected = _Collected({}, {}, {})
    for target in inventory.targets.values():
        lock_path = inventory.lock_path(target)
        if not lock_path.exists():
            continue
        collected.locks[target.name] = lock_path.read_bytes()
        _, collected.locked[target.name] = read_lock(lock_path, collected.locks[target.name])
        for f in collected.locked[target.name]:
            if wheelhouse.sha256(wheelhouse.pool / f.filename) != f.sha256:
                raise VerificationError(
                    f"{f.filename} in {wheelhouse.pool} is missing or does not match "
                    f"{lock_path.name}; run `inv download --target {target.name}` first"
                )
            size = (wheelhouse.pool / f.filename).stat().st_size
            entry = collected.files.setdefault(
                f.filename, {"name": f.filename, "sha256": f.sha256, "size": size, "targets": []}
            )
            entry["targets"].append(target.name)
    if not collected.locks:
        raise nothing_downloaded(inventory.targets)
    return collected


def _chosen(files: dict[str, dict], shipped: dict[str, str], full: bool) -> list[dict]:
    """The files the next bundle carries: those no earlier bundle did, or all of them (`full`)."""
    return [f for f in files.values() if full or f["sha256"] not in shipped]


def _last_bundled(inventory: Inventory) -> dict[str, dict[str, list[str]]]:
    """Each target's projects and versions as the last bundle left them; a target no bundle carried is absent."""
    return _load_json(inventory.wheelhouse / _BUNDLED)


def _changes_since(before: dict[str, dict[str, list[str]]], locked: dict[str, list[LockedFile]]) -> dict[str, dict]:
    """Each target's packages new, updated and removed since `before`: what the evidence says changed."""
    return {name: lock_changes(before.get(name, {}), versions_by_name(files)) for name, files in locked.items()}


@dataclass(frozen=True)
class BundlePlan:
    """What the next bundle would carry, as `inv bundle --check` shows it."""

    files: list[dict]  # each as the manifest lists it: name, sha256, size, targets
    left_out: int  # locked files that an earlier bundle carried, which a delta leaves out
    changes: dict[str, dict[str, list[str]]]  # by target: new, updated, removed since the last bundle
    first: set[str]  # the targets no bundle carried yet, whose every package is new
    part_size: int | None = None  # bundles.part_size: a larger bundle is carried in parts

    @property
    def size(self) -> int:
        return sum(f["size"] for f in self.files)


def planned_bundle(inventory: Inventory, *, full: bool = False) -> BundlePlan:
    """What write_bundle would carry now, with the checks it makes before writing; writes nothing, not even a cache.

    The audit is left out: `inv audit` shows it, and saves its findings as it does.
    """
    collected = _collect(inventory, Wheelhouse(inventory.wheelhouse))
    chosen = _chosen(collected.files, _load_shipped(inventory), full)
    _clients_can_see(inventory, collected.locked)  # raises as a bundle would
    for name, target_files in collected.locked.items():
        _hash_pinned_sets(inventory.targets[name], target_files)  # likewise
    before = _last_bundled(inventory)
    changes, first = _changes_since(before, collected.locked), set(collected.locked) - set(before)
    return BundlePlan(chosen, len(collected.files) - len(chosen), changes, first, inventory.bundles.part_size)


def write_bundle(inventory: Inventory, audit: AuditReport, *, full: bool = False) -> Path | None:
    """Write the next bundle, with `audit` as its evidence; None when every file was shipped before (and not --full).

    A policy failure in `audit` stops it before anything is written.
    """
    audit.check()
    with wheelhouse_lock(inventory.wheelhouse):
        return _write_bundle(inventory, audit, full=full)


def _clients_can_see(inventory: Inventory, locked: dict[str, list[LockedFile]]) -> None:
    """Raise (exit 4) when a target's clients' pip cannot see one of its wheels, as verify would now.

    The download verified that against the inventory as it read then; oldest_pip may have been lowered since.
    """
    for name, files in locked.items():
        target = inventory.targets[name]
        problems = clients_pip_problems(target, target_platform(target).tag_ranks, (f.filename for f in files))
        if problems:
            raise VerificationError(
                f"target {name!r}: {problems[0]}. No bundle was written: once that is done, run "
                f"`inv download --target {name}` (its verify checks the same) and bundle again"
            )


def _documents(
    inventory: Inventory, audit: AuditReport, bundle_id: str, created: str, locked: dict[str, list[LockedFile]]
) -> dict[str, bytes]:
    """The evidence pack: evidence.json and .html, an SBOM per target, and the advisory snapshot used."""
    # Here, not at the top: cyclonedx takes 0.13 s to import, and every `inv` task (a no-op
    # download among them) loads this module; only a bundle writes an SBOM.
    from devpi_airgap.transfer.sbom import target_sbom

    findings = {f.filename: f for t in audit.targets for f in t.licenses}
    documents = {
        f"sbom/{name}.cdx.json": target_sbom(inventory.targets[name], files, findings).encode()
        for name, files in locked.items()
    }
    signer = (
        (inventory.bundles.identity or inventory.bundles.sign_key.name) if inventory.bundles.sign_key else "unsigned"
    )
    evidence = build_evidence(
        bundle_id=bundle_id,
        created=created,
        signer=signer,
        report=audit,
        target_changes=_changes_since(_last_bundled(inventory), locked),
        sboms={name: f"sbom/{name}.cdx.json" for name in locked},
        hash_pinned={name: _hash_pinned_sets(inventory.targets[name], files) for name, files in locked.items()},
    )
    documents["evidence.json"] = to_json(evidence)
    documents["evidence.html"] = render_html(evidence).encode()
    if audit.snapshot is not None:
        documents[ADVISORIES] = json.dumps(audit.snapshot.as_dict(), sort_keys=True).encode()
    return documents


def _hash_pinned_sets(target: Target, locked: list[LockedFile]) -> list[str]:
    """The target's sets whose requirements pin with --hash, once each file its lock takes is one they allow.

    The download checked that, against the requirements as they read then; they may have changed since.
    """
    pinned = [s for s in resolution_sets(target) if s.hashes]
    problems = []
    for resolution in pinned:
        taken = [(f.name, f.version, *_source(f)) for f in locked if resolution.label in f.sets]
        problems += hash_problems(resolution, taken) + served_wheel_problems(resolution, locked)
    if problems:
        raise ResolutionError(
            f"target {target.name!r}: its lock takes files that the --hash values of its requirements, as they "
            "read now, do not allow:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
            + f"\nNo bundle was written. Run `inv download --target {target.name}` again: it resolves with these "
            "hashes, and says what they still do not allow."
        )
    return [s.label for s in pinned]


def _source(f: LockedFile) -> tuple[str, str]:
    """The file name and sha256 a lock entry was taken as: the sdist's, for a wheel built from one."""
    return (f.built_from["filename"], f.built_from["sha256"]) if f.built_from else (f.filename, f.sha256)


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _write_bundle(inventory: Inventory, audit: AuditReport, *, full: bool) -> Path | None:
    wheelhouse = Wheelhouse(inventory.wheelhouse)
    collected = _collect(inventory, wheelhouse)
    wheelhouse.save()
    shipped = _load_shipped(inventory)
    chosen = _chosen(collected.files, shipped, full)
    if not chosen:
        return None
    created = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    content = hashlib.sha256("".join(sorted(f["sha256"] for f in chosen)).encode()).hexdigest()[:8]
    bundle_id = f"{created}-{content}"
    _clients_can_see(inventory, collected.locked)
    documents = _documents(inventory, audit, bundle_id, created, collected.locked)
    manifest: dict[str, Any] = {
        "format": 1,
        "bundle_id": bundle_id,
        "created": created,
        "tool": f"devpi-airgap {__version__}",
        "full": full,
        "inventory_id": inventory_id(inventory),
        "files": sorted(chosen, key=lambda f: f["name"]),
        "locks": {name: hashlib.sha256(data).hexdigest() for name, data in collected.locks.items()},
        "documents": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(documents.items())},
    }
    directory = inventory.bundles.directory
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"devpi-airgap-{bundle_id}.tar"
    # Named for this run: a run killed outright leaves its pieces, and the next bundle into this directory removes them.
    prefix = scratch_prefix(str(directory), ".devpi-airgap-partial-")
    written = PartedFile(path, inventory.bundles.part_size, prefix)
    size_limit = False
    try:
        with written:
            try:
                _write_tar(written, manifest, documents, collected.locks, inventory.wheelhouse / ".pool")
                pieces = written.finish()
            except OSError as exc:
                # judged before the pieces go: on a full disk, their removal frees what they took
                size_limit = _file_size_limit(exc, directory)
                raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC and not size_limit:
            # The write names no file, and the remedy is where the bundle goes.
            raise FetchError(
                f"{directory}: the disk is full ({exc.strerror}); it took {human_bytes(written.position)} of the "
                "bundle and no more. Nothing half-written was kept. Free space there, or point bundles.dir at a "
                "disk with room, and run again"
            ) from None
        if size_limit:
            parts = (
                "lower bundles.part_size below that"
                if inventory.bundles.part_size
                else ("set bundles.part_size (such as 4G) to carry bundles in parts")
            )
            raise FetchError(
                f"{directory}: the file system there took no more of one file at {human_bytes(written.in_piece)}, "
                f"a limit on the size of one file (FAT32 takes none of 4 GiB); nothing half-written was kept. To "
                f"fix it, {parts}, or write bundles (bundles.dir) to an NTFS, exFAT or ext4 disk"
            ) from None
        raise
    # The whole bundle's sha256 first, then each part's, if any: `sha256sum -c --ignore-missing` checks either.
    sums = [(path, written.digest.hexdigest()), *((p, d) for p, d in pieces.items() if p != path)]
    path.with_name(path.name + ".sha256").write_text("".join(f"{d}  {p.name}\n" for p, d in sums))
    if inventory.bundles.sign_key:
        sign_bundle(path, inventory.bundles.sign_key, list(pieces))
    shipped.update({f["sha256"]: bundle_id for f in chosen})
    atomic_write(_shipped_path(inventory), json.dumps(shipped, indent=1, sort_keys=True))
    now = {t: versions_by_name(files) for t, files in collected.locked.items()}
    atomic_write(inventory.wheelhouse / _BUNDLED, json.dumps(now, indent=1, sort_keys=True))
    return path


def _write_tar(
    out: PartedFile, manifest: dict[str, Any], documents: dict[str, bytes], locks: dict[str, bytes], pool: Path
) -> None:
    """The bundle's tar: the manifest first, as the offline side reads it before anything else, then the rest."""
    # Sequential writes in 1 MiB copies: tarfile's default 16 KiB copies ran at a sixth of tar's rate.
    # copybufsize is TarFile's own keyword, which open() passes on; typeshed lists only open()'s.
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK) as tar:  # type: ignore[call-overload]
        add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        for name, data in sorted(documents.items()):
            add_bytes(tar, name, data)
        for name, data in sorted(locks.items()):
            add_bytes(tar, f"locks/{name}.lock.json", data)
        for f in manifest["files"]:
            info = tar.gettarinfo(str(pool / f["name"]), arcname=f"wheels/{f['name']}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(pool / f["name"], "rb") as src:
                tar.addfile(info, src)


def _file_size_limit(exc: OSError, directory: Path) -> bool:
    """A write refused for the file's size, not for a full disk: Linux says EFBIG, Windows says the disk is full."""
    if exc.errno == errno.EFBIG:
        return True
    return exc.errno == errno.ENOSPC and shutil.disk_usage(directory).free > 64 * CHUNK


def write_document_bundle(
    inventory: Inventory, kind: str, bundle_id: str, created: str, documents: dict[str, bytes]
) -> Path:
    """A bundle of documents only (a recall, an advisory snapshot): checksummed and signed like any other."""
    manifest = {
        "format": 1,
        "kind": kind,
        "bundle_id": bundle_id,
        "created": created,
        "tool": f"devpi-airgap {__version__}",
        "full": False,
        "inventory_id": inventory_id(inventory),
        "files": [],
        "locks": {},
        "documents": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(documents.items())},
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        for name, data in sorted(documents.items()):
            add_bytes(tar, name, data)
    data = buffer.getvalue()
    path = inventory.bundles.directory / f"devpi-airgap-{bundle_id}.tar"
    atomic_write(path, data)
    path.with_name(path.name + ".sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")
    if inventory.bundles.sign_key:
        sign_bundle(path, inventory.bundles.sign_key)
    return path


def write_advisory_bundle(inventory: Inventory, snapshot: Snapshot) -> Path:
    """A bundle carrying only a newer advisory snapshot, for `fab deploy --bundle` to re-check the live index."""
    created = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    body = json.dumps(snapshot.as_dict(), sort_keys=True).encode()
    bundle_id = f"{created}-advisories-{hashlib.sha256(body).hexdigest()[:8]}"
    return write_document_bundle(inventory, "advisories", bundle_id, created, {ADVISORIES: body})


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def sign_bundle(path: Path, key: Path, pieces: list[Path] | None = None) -> None:
    """Sign the bundle into NAME.tar.sig; a bundle in parts is signed as its parts joined, read in turn.

    ssh-keygen signs what it reads on stdin as it would the file, so the signature is the whole's.
    """
    signature = path.with_name(path.name + ".sig")
    signature.unlink(missing_ok=True)
    command = ["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", NAMESPACE]
    pipe = subprocess.PIPE
    with subprocess.Popen(command, stdin=pipe, stdout=pipe, stderr=pipe) as signing:
        assert signing.stdin is not None
        try:
            for piece in pieces or [path]:
                with open(piece, "rb") as src:
                    shutil.copyfileobj(src, signing.stdin, CHUNK)
        except BrokenPipeError:
            pass  # ssh-keygen stopped early (a key it cannot use): its own words follow
        out, err = signing.communicate()
    if signing.returncode != 0 or not out.startswith(b"-----BEGIN SSH SIGNATURE-----"):
        raise BundleError(
            f"signing {path.name} with {key} failed: {err.decode('utf-8', 'replace').strip()}; "
            "check bundles.sign_key (an SSH private key without a passphrase, or one in ssh-agent)"
        )
    atomic_write(signature, out)
