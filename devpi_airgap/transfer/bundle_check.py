"""Check a bundle before anything is taken from it; stdlib only.

This module runs twice: where `fab` runs, and on the server itself (its source
is sent over ssh's stdin to the server's python3), so the server trusts no
copy but its own. It refuses a bundle whose checksum, signature, manifest or
member names are wrong, and only then extracts, verifying every file's sha256
on the way into a staging directory that is removed if anything fails.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

NAMESPACE = "devpi-airgap"
MANIFEST = "manifest.json"
CHUNK = 1 << 20


try:
    from devpi_airgap.core.errors import BundleError
except ImportError:  # shipped alone to the server, where only the standard library is at hand

    class BundleError(Exception):  # type: ignore[no-redef]
        pass


# The server runs this module with the standard library alone, so it keeps its own
# copy of core.files.sha256_file rather than importing it.
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_checksum(bundle: Path) -> str:
    checksum_file = bundle.with_name(bundle.name + ".sha256")
    if not checksum_file.is_file():
        raise BundleError(f"{bundle.name}: no checksum file {checksum_file.name} beside it; copy both across")
    expected = checksum_file.read_text().split()[0]
    actual = sha256_of(bundle)
    if actual != expected:
        raise BundleError(
            f"{bundle.name}: sha256 {actual} does not match {checksum_file.name} ({expected}); "
            "the bundle is truncated or altered. Copy it again; nothing was imported."
        )
    return actual


def check_signature(bundle: Path, allowed_signers: str | None, identity: str | None, required: bool) -> str:
    signature = bundle.with_name(bundle.name + ".sig")
    if not signature.is_file():
        if required:
            raise BundleError(
                f"{bundle.name}: unsigned, but this inventory requires signed bundles; "
                "sign it with `inv bundle` and a sign_key, then copy the .sig file too"
            )
        return "unsigned"
    if not allowed_signers:
        if required:
            raise BundleError("signatures are required but no allowed_signers file is configured")
        return "signed, not checked (no allowed_signers configured)"
    with open(bundle, "rb") as data:
        result = subprocess.run(
            [
                "ssh-keygen",
                "-Y",
                "verify",
                "-f",
                allowed_signers,
                "-I",
                identity or "",
                "-n",
                NAMESPACE,
                "-s",
                str(signature),
            ],
            stdin=data,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
        )
    if result.returncode != 0:
        raise BundleError(
            f"{bundle.name}: signature does not verify against {allowed_signers} for {identity!r}: "
            f"{(result.stderr or result.stdout).strip().rstrip('.')}; nothing was imported"
        )
    return f"signed by {identity}"


def _file_of(tar: tarfile.TarFile, member: tarfile.TarInfo):
    """A member's content; only plain files have one, and only plain files get this far."""
    content = tar.extractfile(member)
    if content is None:
        raise BundleError(f"{member.name!r} is not a plain file")
    return content


class _StagingFailed(Exception):
    """Writing into staging failed (a full disk, say): the bundle may be sound, so it is not refused for it."""

    def __init__(self, error: OSError, staging: Path):
        self.error = OSError(error.errno, error.strerror, str(staging))  # a write's own error names no file


def _write_out(src, dest: Path, digest, staging: Path) -> None:
    """Copy a member's content to dest, hashing it on the way; a failed read is the bundle's, and passes through."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = open(dest, "wb")  # not `with`: each write, and the close, can fail on their own
    except OSError as exc:
        raise _StagingFailed(exc, staging) from None
    try:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            try:
                out.write(chunk)
            except OSError as exc:
                raise _StagingFailed(exc, staging) from None
    finally:
        try:
            out.close()  # the last buffered bytes go out here
        except OSError as exc:
            raise _StagingFailed(exc, staging) from None


def _safe_name(name: str) -> bool:
    normal = posixpath.normpath(name)
    return not (name.startswith("/") or normal != name or normal.startswith("..") or "\\" in name)


def extract_checked(bundle: Path, staging: Path) -> dict:
    """Validate every member against the manifest while extracting; returns the manifest."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        with tarfile.open(bundle, mode="r|") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise BundleError(f"{bundle.name}: the first member must be {MANIFEST}")
            manifest = json.loads(_file_of(tar, first).read())
            expected = {f"wheels/{f['name']}": f for f in manifest["files"]}
            expected.update({f"locks/{t}.lock.json": {"sha256": d} for t, d in manifest["locks"].items()})
            # The evidence pack (evidence.json/.html, SBOMs, the advisory snapshot) is covered the same way.
            documents = manifest.get("documents", {})
            if any(name == MANIFEST or name.startswith(("wheels/", "locks/")) for name in documents):
                raise BundleError(f"{bundle.name}: the manifest lists a document among the wheels or locks")
            expected.update({name: {"sha256": d} for name, d in documents.items()})
            seen = set()
            # next(), not iteration: iterating a stream re-yields the members already read.
            while (member := tar.next()) is not None:
                if not _safe_name(member.name) or not member.isfile():
                    raise BundleError(
                        f"{bundle.name}: refused member {member.name!r}: only plain files with "
                        "relative names inside the bundle are allowed"
                    )
                entry = expected.get(member.name)
                if entry is None or member.name in seen:
                    raise BundleError(f"{bundle.name}: member {member.name!r} is not in the manifest")
                seen.add(member.name)
                digest = hashlib.sha256()
                with _file_of(tar, member) as src:
                    _write_out(src, staging / member.name, digest, staging)
                if digest.hexdigest() != entry["sha256"]:
                    raise BundleError(f"{bundle.name}: {member.name} does not match the manifest's sha256")
            missing = sorted(set(expected) - seen)
            if missing:
                raise BundleError(
                    f"{bundle.name}: the manifest lists {len(missing)} file{'s' if len(missing) != 1 else ''} "
                    f"the bundle lacks, such as {missing[0]}"
                )
    except _StagingFailed as failed:  # the place it is checked in, not the bundle: an I/O error (exit 5) names it
        shutil.rmtree(staging, ignore_errors=True)
        raise failed.error from None
    except (tarfile.TarError, EOFError, ValueError, KeyError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(f"{bundle.name}: not a readable bundle ({exc}); copy it again") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def check_bundle(
    bundle: Path,
    staging: Path,
    *,
    allowed_signers: str | None = None,
    identity: str | None = None,
    required: bool = False,
) -> dict:
    """Everything in order, cheapest first; only a bundle that passes all of it leaves files in staging."""
    digest = check_checksum(bundle)
    signature = check_signature(bundle, allowed_signers, identity, required)
    manifest = extract_checked(bundle, staging)
    manifest["sha256"], manifest["signature"] = digest, signature
    return manifest


def main(argv: list[str]) -> int:
    """python3 - BUNDLE STAGING [ALLOWED_SIGNERS IDENTITY REQUIRED]: prints the manifest summary as JSON."""
    bundle, staging = Path(argv[0]), Path(argv[1])
    signers, identity, required = (argv[2:5] + ["", "", "0"])[:3]
    try:
        manifest = check_bundle(
            bundle, staging, allowed_signers=signers or None, identity=identity or None, required=required == "1"
        )
    except BundleError as exc:
        print(str(exc), file=sys.stderr)
        return 1  # the caller on the other side of SSH raises its own BundleError from stderr
    except OSError as exc:  # reading it, or unpacking it to check it (a full disk), failed on this machine
        if exc.filename == str(staging):  # as extract_checked names a write that failed
            said = f"cannot unpack it into {staging} to check it: {exc.strerror}; free space there and run again"
        else:
            said = f"cannot be read here ({exc.filename or bundle}: {exc.strerror or exc}); copy it again"
        print(f"{bundle.name}: {said}", file=sys.stderr)
        return 1
    print(json.dumps({k: manifest[k] for k in ("bundle_id", "sha256", "signature", "inventory_id")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
