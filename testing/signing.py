"""Signing keys and bundle helpers for the bundle tests on both sides of the gap."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path


def make_keys(directory: Path, name: str = "key") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f", str(directory / name)], check=True
    )
    public = (directory / f"{name}.pub").read_text().strip()
    (directory / "allowed_signers").write_text(f"ops@example {public}\n")


def manifest_of(bundle: Path) -> dict:
    """The manifest, the first member: of a bundle carried in parts, read from the first part."""
    first = bundle if bundle.exists() else bundle.with_name(bundle.name + ".001")
    with tarfile.open(first, mode="r|") as tar:
        member = tar.next()
        assert member is not None and member.name == "manifest.json"
        return json.loads(tar.extractfile(member).read())


def resign(bundle: Path, key: Path) -> None:
    from devpi_airgap.transfer.bundle_check import sha256_of

    bundle.with_name(bundle.name + ".sha256").write_text(f"{sha256_of(bundle)}  {bundle.name}\n")
    bundle.with_name(bundle.name + ".sig").unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", "devpi-airgap", str(bundle)], check=True)
