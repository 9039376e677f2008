"""Download files in parallel, each checked against the sha256 the index published."""

from __future__ import annotations

import hashlib
import itertools
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from devpi_airgap.core.errors import FetchError
from devpi_airgap.core.files import replace
from devpi_airgap.online.http_get import Session, TransferError
from devpi_airgap.online.resolve import FileRef

CHUNK = 1 << 20
RETRIES = 3
WORKERS = 8
STOP_GRACE = 2  # seconds a running download gets to notice Ctrl-C and clean up after itself


class _Stopped(BaseException):
    """The run is being stopped (Ctrl-C): not a failure to retry."""


def _pieces(session: Session, ref: FileRef, buffer: memoryview) -> Iterator[memoryview | bytes]:
    """The file's bytes, from a file:// index or over HTTP; each piece is good until the next is asked for."""
    if ref.url.startswith("file://"):
        with open(unquote(urlsplit(ref.url).path), "rb") as src:
            while n := src.readinto(buffer):
                yield buffer[:n]
        return
    # Wheels and sdists are compressed already: asked for as they are, they arrive as they are.
    with session.get(ref.url, {"Accept-Encoding": "identity"}, buffer) as pieces:
        yield from pieces


def remove_partials(directory: Path) -> None:
    """Remove every partial download in `directory`: only for a run that holds its wheelhouse's lock.

    Each then belongs to that run, or to one that died without removing its own (SIGKILL, a power cut).
    """
    for partial in directory.glob(".*.part"):
        partial.unlink(missing_ok=True)


def _download(
    session: Session,
    ref: FileRef,
    dest: Path,
    buffer: memoryview,
    on_bytes: Callable[[int], None],
    stop: threading.Event,
) -> None:
    """Write ref to dest through a temporary file, so a failure never leaves a half file under the real name."""
    partial = dest.with_name(f".{dest.name}.{threading.get_ident()}.part")
    digest = hashlib.sha256()
    written = 0
    try:
        with open(partial, "wb") as out:
            for piece in _pieces(session, ref, buffer):
                if stop.is_set():
                    raise _Stopped
                out.write(piece)
                digest.update(piece)
                written += len(piece)
                on_bytes(len(piece))
        if digest.hexdigest() != ref.sha256:
            raise FetchError(
                f"{ref.filename}: sha256 {digest.hexdigest()} does not match the index's {ref.sha256} "
                f"({ref.url}); the download was corrupted or the file was replaced. Nothing was kept; re-run to retry."
            )
        replace(partial, dest)
    except BaseException:
        on_bytes(-written)
        partial.unlink(missing_ok=True)
        raise


class Fetcher:
    """Downloads that start as soon as their files are known, while the caller still works out the rest.

    `inv download` hands over each resolution's files the moment uv settles on
    them, so the downloads of one set overlap the resolving of the next. Every
    file is fetched once, whoever adds it first. Worker threads are daemons, not
    a pool: a read stalled on a slow index cannot be woken, and Ctrl-C must not
    wait for it. Leaving the `with` block by an exception stops every download
    and removes the partial files; `wait()` reports the failures of the rest.
    `on_done` runs in the download thread, the moment its file is in place.
    """

    def __init__(
        self,
        *,
        on_bytes: Callable[[int], None] = lambda n: None,
        on_done: Callable[[FileRef], None] = lambda ref: None,
        workers: int = WORKERS,
    ):
        self.on_bytes = on_bytes
        self.on_done = on_done
        self.workers = workers
        self.stop = threading.Event()
        self.work: queue.PriorityQueue[tuple[int, int, int, FileRef, Path]] = queue.PriorityQueue()
        self.failed: set[str] = set()  # file names whose download failed, as soon as it did
        self.results: queue.Queue[tuple[FileRef, Path, BaseException | None]] = queue.Queue()
        self.added: set[tuple[str, Path]] = set()
        self.urgent: set[tuple[str, Path]] = set()  # of those, the ones queued `first`
        self.started: set[tuple[str, Path]] = set()
        self.order = itertools.count()  # ties in the queue go by the order added
        self.pending = 0
        self.dirs: set[Path] = set()
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()
        self.sessions: list[Session] = []  # each worker's connections, closed when the fetcher is left

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.stop.set()
        if kind is not None:
            # Ctrl-C (or any abort): no new downloads start, running ones stop at their next chunk and remove
            # their partial file; one stuck in a stalled read is left to die with the process, its file removed here.
            deadline = time.monotonic() + STOP_GRACE
            for thread in self.threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            for directory in self.dirs:  # this run holds the wheelhouse lock: every partial file is ours
                remove_partials(directory)
        with self.lock:
            for session in self.sessions:
                session.close()

    def add(self, refs: Iterable[FileRef], dest_dir: Path, *, first: bool = False) -> None:
        """Queue each ref not queued before, to land in dest_dir/<filename>; safe from any thread.

        Files added `first` go before every file queued without it; within each, the largest first, then in the
        order added: the sample's 56 MB llvmlite, selected last, waited 0.3 s behind about ninety small files for
        a worker, and its target was complete only once it was in. A file queued before and added again `first`
        moves up, unless it has started.
        """
        refs = list(refs)
        with self.lock:
            new = [ref for ref in refs if (ref.filename, dest_dir) not in self.added]
            if first:
                for ref in refs:
                    key = (ref.filename, dest_dir)
                    if key in self.added and key not in self.started and key not in self.urgent:
                        self.urgent.add(key)
                        # the worker skips the later copy
                        self.work.put((0, -(ref.size or 0), next(self.order), ref, dest_dir))
            if not new:
                return
            dest_dir.mkdir(parents=True, exist_ok=True)
            _check_space(new, dest_dir)
            self.dirs.add(dest_dir)
            for ref in new:
                self.added.add((ref.filename, dest_dir))
                if first:
                    self.urgent.add((ref.filename, dest_dir))
                self.work.put((0 if first else 1, -(ref.size or 0), next(self.order), ref, dest_dir))
            self.pending += len(new)
            while len(self.threads) < min(self.workers, self.pending):
                thread = threading.Thread(target=self._worker, daemon=True)
                thread.start()
                self.threads.append(thread)

    def wait(self, needed: set[str] | None = None) -> None:
        """Block until every queued file has arrived; raise FetchError naming each needed file that failed.

        A file queued on a guess that the caller no longer needs may fail without failing the run.
        """
        failures: list[str] = []
        total = 0
        while True:
            with self.lock:
                if not self.pending:
                    break
            ref, dest_dir, exc = self.results.get()
            with self.lock:
                self.pending -= 1
            total += 1
            if exc is None:
                continue
            if needed is not None and ref.filename not in needed and isinstance(exc, (OSError, FetchError)):
                continue
            elif isinstance(exc, OSError):
                failures.append(
                    f"writing {ref.filename} into {dest_dir} failed: {exc.strerror or exc}; free space or "
                    "fix permissions, then re-run"
                )
            elif isinstance(exc, FetchError):
                failures.append(str(exc))
            elif not isinstance(exc, _Stopped):
                raise exc
        if failures:
            raise FetchError(
                f"{len(failures)} of {total} downloads failed:\n" + "\n".join(f"  - {f}" for f in failures)
            )

    def _worker(self) -> None:
        session, buffer = Session(), memoryview(bytearray(CHUNK))
        with self.lock:
            self.sessions.append(session)
        while not self.stop.is_set():
            try:
                *_, ref, dest_dir = self.work.get(timeout=0.1)
            except queue.Empty:
                continue
            with self.lock:
                if (ref.filename, dest_dir) in self.started:
                    continue
                self.started.add((ref.filename, dest_dir))
            try:
                self._one(session, buffer, ref, dest_dir)
                self.on_done(ref)
                self.results.put((ref, dest_dir, None))
            except BaseException as exc:  # reported by the waiting thread, which decides what it means
                self.failed.add(ref.filename)
                self.results.put((ref, dest_dir, exc))

    def _one(self, session: Session, buffer: memoryview, ref: FileRef, dest_dir: Path) -> None:
        for attempt in range(1, RETRIES + 1):
            try:
                _download(session, ref, dest_dir / ref.filename, buffer, self.on_bytes, self.stop)
                return
            except TransferError as exc:
                status = getattr(exc, "status", 0)
                if attempt == RETRIES or 400 <= status < 500:
                    raise FetchError(f"{ref.filename}: download from {ref.url} failed: {exc}") from None
                time.sleep(attempt)


def _check_space(refs: list[FileRef], dest_dir: Path) -> None:
    needed = sum(ref.size or 0 for ref in refs)
    free = shutil.disk_usage(dest_dir).free
    if needed > free:
        raise FetchError(
            f"{dest_dir}: {needed / 1e6:.1f} MB to download but only {free / 1e6:.1f} MB free; "
            "free some space and re-run (files already downloaded are kept)"
        )
