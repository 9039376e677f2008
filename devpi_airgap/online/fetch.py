"""Download files in parallel, each checked against the sha256 the index published."""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from devpi_airgap.core.errors import FetchError
from devpi_airgap.online.resolve import FileRef

CHUNK = 1 << 20
RETRIES = 3
WORKERS = 8
STOP_GRACE = 2  # seconds a running download gets to notice Ctrl-C and clean up after itself


class _Stopped(BaseException):
    """The run is being stopped (Ctrl-C): not a failure to retry."""


def _chunks(client: httpx.Client, ref: FileRef) -> Iterator[bytes]:
    """The file's bytes, from a file:// index or over HTTP."""
    if ref.url.startswith("file://"):
        with open(unquote(urlsplit(ref.url).path), "rb") as src:
            while chunk := src.read(CHUNK):
                yield chunk
        return
    with client.stream("GET", ref.url) as response:
        response.raise_for_status()
        yield from response.iter_bytes(CHUNK)


def _download(
    client: httpx.Client, ref: FileRef, dest: Path, on_bytes: Callable[[int], None], stop: threading.Event
) -> None:
    """Write ref to dest through a temporary file, so a failure never leaves a half file under the real name."""
    partial = dest.with_name(f".{dest.name}.{threading.get_ident()}.part")
    digest = hashlib.sha256()
    written = 0
    try:
        with open(partial, "wb") as out:
            for chunk in _chunks(client, ref):
                if stop.is_set():
                    raise _Stopped
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
    stop = threading.Event()
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=15.0), limits=limits, follow_redirects=True) as client:

        def one(ref: FileRef) -> FileRef:
            for attempt in range(1, RETRIES + 1):
                try:
                    _download(client, ref, dest_dir / ref.filename, on_bytes, stop)
                    return ref
                except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                    status = getattr(getattr(exc, "response", None), "status_code", 0)
                    if attempt == RETRIES or 400 <= status < 500:
                        raise FetchError(f"{ref.filename}: download from {ref.url} failed: {exc}") from None
                    time.sleep(attempt)
            raise AssertionError("unreachable")

        # Daemon threads, not a pool: a read stalled on a slow index cannot be woken, and Ctrl-C must not wait for it.
        work: queue.Queue[FileRef] = queue.Queue()
        for ref in refs:
            work.put(ref)
        results: queue.Queue[tuple[FileRef, BaseException | None]] = queue.Queue()

        def worker() -> None:
            while not stop.is_set():
                try:
                    ref = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    results.put((one(ref), None))
                except BaseException as exc:  # reported by the main thread, which decides what it means
                    results.put((ref, exc))

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(workers, len(refs)))]
        for thread in threads:
            thread.start()
        try:
            for _ in refs:
                ref, exc = results.get()
                if exc is None:
                    on_done(ref)
                elif isinstance(exc, OSError):
                    failures.append(
                        f"writing {ref.filename} into {dest_dir} failed: {exc.strerror or exc}; free space or "
                        "fix permissions, then re-run"
                    )
                elif isinstance(exc, FetchError):
                    failures.append(str(exc))
                elif not isinstance(exc, _Stopped):
                    raise exc
        except BaseException:
            # Ctrl-C (or any abort): no new downloads start, running ones stop at their next chunk and remove
            # their partial file; one stuck in a stalled read is left to die with the process, its file removed here.
            stop.set()
            client.close()
            deadline = time.monotonic() + STOP_GRACE
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            for partial in dest_dir.glob(".*.part"):  # this run holds the wheelhouse lock: every one is ours
                partial.unlink(missing_ok=True)
            raise
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
