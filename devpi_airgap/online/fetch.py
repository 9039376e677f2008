"""Download files in parallel, each checked against the sha256 the index published."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from devpi_airgap.core.errors import FetchError
from devpi_airgap.online.resolve import FileRef

CHUNK = 1 << 20
RETRIES = 3
WORKERS = 8


def _download(client: httpx.Client, ref: FileRef, dest: Path, on_bytes: Callable[[int], None]) -> None:
    """Write ref to dest through a temporary file, so a failure never leaves a half file under the real name."""
    partial = dest.with_name(f".{dest.name}.{threading.get_ident()}.part")
    digest = hashlib.sha256()
    written = 0
    try:
        with open(partial, "wb") as out:
            if ref.url.startswith("file://"):
                with open(unquote(urlsplit(ref.url).path), "rb") as src:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        on_bytes(len(chunk))
            else:
                with client.stream("GET", ref.url) as response:
                    response.raise_for_status()
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        on_bytes(len(chunk))
        if digest.hexdigest() != ref.sha256:
            raise FetchError(
                f"{ref.filename}: sha256 {digest.hexdigest()} does not match the index's {ref.sha256} "
                f"({ref.url}); the download was corrupted or the file was replaced. Nothing was kept; re-run to retry."
            )
        os.replace(partial, dest)
    except BaseException:
        on_bytes(-written)
        partial.unlink(missing_ok=True)
        raise


def fetch_all(
    refs: Iterable[FileRef],
    dest_dir: Path,
    *,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_done: Callable[[FileRef], None] = lambda ref: None,
    workers: int = WORKERS,
) -> None:
    """Download every ref into dest_dir/<filename>; raise FetchError naming each file that failed."""
    refs = list(refs)
    if not refs:
        return
    dest_dir.mkdir(parents=True, exist_ok=True)
    _check_space(refs, dest_dir)
    failures: list[str] = []
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=15.0), limits=limits, follow_redirects=True) as client:

        def one(ref: FileRef) -> FileRef:
            for attempt in range(1, RETRIES + 1):
                try:
                    _download(client, ref, dest_dir / ref.filename, on_bytes)
                    return ref
                except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                    status = getattr(getattr(exc, "response", None), "status_code", 0)
                    if attempt == RETRIES or 400 <= status < 500:
                        raise FetchError(f"{ref.filename}: download from {ref.url} failed: {exc}") from None
                    time.sleep(attempt)
            raise AssertionError("unreachable")

        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(one, ref) for ref in refs]
            for future in as_completed(futures):
                try:
                    on_done(future.result())
                except OSError as exc:
                    failures.append(
                        f"writing into {dest_dir} failed: {exc}; free space or fix permissions, then re-run"
                    )
                except FetchError as exc:
                    failures.append(str(exc))
    if failures:
        raise FetchError(
            f"{len(failures)} of {len(refs)} downloads failed:\n" + "\n".join(f"  - {f}" for f in failures)
        )


def _check_space(refs: list[FileRef], dest_dir: Path) -> None:
    needed = sum(ref.size or 0 for ref in refs)
    free = shutil.disk_usage(dest_dir).free
    if needed > free:
        raise FetchError(
            f"{dest_dir}: {needed / 1e6:.1f} MB to download but only {free / 1e6:.1f} MB free; "
            "free some space and re-run (files already downloaded are kept)"
        )
