"""Wheels made on the spot, small and valid, for tests that need files to upload."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path

MIT_HEADERS = (
    ("Requires-Python", ">=3.8"),
    ("Classifier", "Programming Language :: Python :: 3"),
    ("Classifier", "License :: OSI Approved :: MIT License"),
)


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    payload: str = "",
    headers: Sequence[tuple[str, str]] = MIT_HEADERS,
    tag: str = "py3-none-any",
) -> Path:
    """Write a minimal valid wheel ``name-version-TAG.whl``; headers go into its METADATA."""
    directory.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    extra = "".join(f"{key}: {value}\n" for key, value in headers)
    files = {
        f"{name}/__init__.py": f"VALUE = {payload!r}\n".encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\nSummary: test wheel {name}\n{extra}\n"
            f"Long description of {name}.\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: devpi-airgap-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
    }
    record = []
    for arcname, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append(f"{arcname},sha256={digest.decode()},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in files.items():
            zf.writestr(arcname, data)
    return path
