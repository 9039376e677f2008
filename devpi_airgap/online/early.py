"""Work that starts as soon as uv names a file, while the other resolutions still run.

A cold `inv download` used to resolve everything, then download, then
fingerprint the index pages, then build the sdist-only packages: each phase
waiting for the last. Here each resolution round hands over its pins the
moment uv settles on them (see resolve_set), and three things start at once:

- the download of every file the pool lacks;
- the fingerprint of every project page the pins came from (freshness.py),
  taken as the round returns, seconds after uv read the page, where it used to
  wait for every resolution and download;
- the build of every sdist-only package whose sdist is in the pool.

Sooner still, each wheel uv's resolver selects while it runs (see
resolve_set's on_selected) is fetched on the word of its project's page,
which is read once for that and for its fingerprint. In a cold run of the
sample, the last files came 0.8 s after the last try ended; now 0.2 s.

A round that will be resolved again only guesses, though most of its pins
stay, and so does a selection; `finish` removes from the pool whatever the
final pins do not want, wheels built from unwanted sdists included. An early
build that fails is forgotten: the lock step builds it again and reports the
failure for its target.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from contextlib import ExitStack
from pathlib import Path

from devpi_airgap.core.errors import FetchError
from devpi_airgap.core.lock import LockedFile
from devpi_airgap.core.pools import stoppable_pool
from devpi_airgap.core.wheelhouse import Wheelhouse
from devpi_airgap.online.fetch import Fetcher
from devpi_airgap.online.freshness import page_and_release, page_fingerprints, page_sessions
from devpi_airgap.online.resolve import FileRef, Pin

# Pages read at once for the selections of running tries: uv selects the sample's 127 projects in about a second.
GUESS_READERS = 8


def pool_directory(wheelhouse: Wheelhouse, ref: FileRef) -> Path:
    return wheelhouse.pool if ref.is_wheel else wheelhouse.sdists


class EarlyWork:
    """Used as a context manager: leaving it by an exception (Ctrl-C) stops the downloads and the queued work."""

    def __init__(
        self,
        wheelhouse: Wheelhouse,
        index_url: str | None,
        build: Callable[[Pin], LockedFile | None],
        on_bytes: Callable[[int], None] = lambda n: None,
    ):
        self.wheelhouse = wheelhouse
        self.index_url = index_url
        self.build = build
        self.fetcher = Fetcher(on_bytes=on_bytes, on_done=self._arrived_whole)
        self.stack = ExitStack()
        self.lock = threading.Lock()
        self.queued: set[str] = set()  # file names handed over that this run fetches
        self.present: set[str] = set()  # and those the pool already held
        self.arrived: set[str] = set()  # of the queued, those checked and in place
        self.sdist_pins: dict[str, Pin] = {}  # sdist pins by file name, built as soon as their sdist is in
        self.builds: dict[str, Future[LockedFile | None]] = {}  # by sdist file name
        self.fingerprinted: set[str] = set()
        self.fingerprints: list[Future] = []
        self.guessed: set[tuple[str, str]] = set()  # (target, project) of each selection taken as a guess
        self.releases: dict[str, dict[str, FileRef] | None] = {}  # a release's files by name, None while read
        self.waiting: dict[str, list[tuple[str, str, str, bool]]] = {}  # guesses for a release being read
        self.release_reads: list[Future] = []
        self.read_fingerprints: dict[str, list] = {}  # taken from the pages read for guesses

    def __enter__(self) -> EarlyWork:
        self.stack.enter_context(self.fetcher)
        # one set of connections for every round's pages: each round opened 16 connections of its own before
        self.pages = self.stack.enter_context(page_sessions())
        self.background = self.stack.enter_context(stoppable_pool(1))  # page fingerprints
        self.readers = self.stack.enter_context(stoppable_pool(GUESS_READERS))  # the pages of selections
        self.builder = self.stack.enter_context(stoppable_pool(1))  # a build never waits behind a fingerprint
        return self

    def __exit__(self, *exc_info) -> bool | None:
        return self.stack.__exit__(*exc_info)

    def hand_over(self, pins: Iterable[Pin], final: bool, *, first: bool = False) -> None:
        """One resolution round's pins, final or a guess; thread-safe: every resolution calls it from its thread.

        The files of pins handed over `first` are fetched before all others.
        """
        pins = list(pins)
        with self.lock:
            names = {pin.name for pin in pins} - self.fingerprinted
            if names:
                self.fingerprinted |= names
                self.fingerprints.append(
                    self.background.submit(page_fingerprints, self.index_url, names, {}, self.pages)
                )
            self._take(pins, first)

    def guess(self, target: str, name: str, version: str, filename: str, *, first: bool = False) -> None:
        """A wheel uv's resolver selected for a target while it runs; thread-safe, called as uv's log is read.

        Only a project's first selection for a target is taken: later ones are the resolver backtracking,
        which the sample's first try does through every release of devpi-web. An sdist is left to the
        prebuild (see resolve.Tries) and to the final pins. A release's page is read once for every target:
        each selects its own wheel of it.
        """
        if not filename.endswith(".whl"):
            return
        release = "-".join(filename.split("-", 2)[:2]) + "-"
        with self.lock:
            if (target, name) in self.guessed:
                return
            self.guessed.add((target, name))
            if release not in self.releases:
                self.releases[release] = None
                fingerprint_it = name not in self.fingerprinted  # this reading gives it: hand_over reads it no more
                self.fingerprinted.add(name)
                self.release_reads.append(self.readers.submit(self._read_release, name, release, fingerprint_it))
            files = self.releases[release]
            if files is None:  # being read: taken once it is
                self.waiting.setdefault(release, []).append((name, version, filename, first))
            else:
                self._take_guess(files, name, version, filename, first)

    def _read_release(self, name: str, release: str, fingerprint_it: bool) -> None:
        fingerprint: list | None = None
        files: dict[str, FileRef] = {}
        try:
            with self.pages.session() as session:
                fingerprint, files = page_and_release(session, self.index_url, name, release)
        finally:
            with self.lock:
                if fingerprint_it and fingerprint is not None:
                    self.read_fingerprints[name] = fingerprint
                elif fingerprint_it:  # unread: finish() reads it for the fingerprint, as any page not read yet
                    self.fingerprinted.discard(name)
                self.releases[release] = files
                for waiting in self.waiting.pop(release, []):
                    self._take_guess(files, *waiting)

    def _take_guess(self, files: dict[str, FileRef], name: str, version: str, filename: str, first: bool) -> None:
        if (ref := files.get(filename)) is not None:
            try:
                self._take([Pin(name, version, ref)], first)
            except (FetchError, OSError):
                pass  # no space for a guess: the final pins find that out again, and report it

    def take_locked(self, pins: Iterable[Pin], *, first: bool = False) -> None:
        """Pins a lock gives: their files are fetched, and their pages were fingerprinted when found fresh."""
        with self.lock:
            self._take(pins, first)

    def ready(self, filenames: set[str]) -> bool:
        """Whether each of these files is in the pool, and each wheel to be built from one of them is built.

        A failed download raises at once the fetcher's error, naming every file that failed.
        """
        with self.lock:
            settled = self.present | self.arrived | self.fetcher.failed
            if not filenames <= settled:
                return False
            if filenames & self.fetcher.failed:
                self.fetcher.wait(needed=filenames)
            # a failed build is built again, and reported, by the lock step
            return all(self.builds[name].done() for name in filenames if name in self.builds)

    def wait_arrived(self, filename: str, stopping: threading.Event) -> bool:
        """Wait for a file handed over to be in the pool; False if its download failed.

        Raises KeyboardInterrupt once `stopping` is set: the run is being stopped.
        """
        while not stopping.wait(0.02):
            with self.lock:
                if filename in self.present or filename in self.arrived:
                    return True
                if filename in self.fetcher.failed:
                    return False
        raise KeyboardInterrupt

    def wait_built(self, sdist: str, stopping: threading.Event) -> bool:
        """Wait for an sdist handed over to arrive and its wheel to be built; False if either failed.

        Raises KeyboardInterrupt once `stopping` is set: the run is being stopped.
        """
        if not self.wait_arrived(sdist, stopping):
            return False
        with self.lock:  # queued before the sdist counted as arrived (see _arrived_whole)
            build = self.builds.get(sdist)
        if build is None:  # no sdist a prebuild handed over
            return False
        while not stopping.wait(0.05):
            if build.done():
                return build.exception() is None
        raise KeyboardInterrupt

    def _take(self, pins: Iterable[Pin], first: bool) -> None:
        # sdists first, as their builds wait for them; then the largest wheels, the longest downloads
        for pin in sorted(pins, key=lambda pin: (pin.file.is_wheel, -(pin.file.size or 0))):
            ref = pin.file
            directory = pool_directory(self.wheelhouse, ref)
            if ref.filename in self.present:
                continue
            if ref.filename in self.queued:
                if first:  # a file another target wanted less urgently moves up
                    self.fetcher.add([ref], directory, first=True)
                continue
            if not ref.is_wheel:
                self.sdist_pins[ref.filename] = pin
            if self.wheelhouse.has(directory, ref.filename, ref.sha256):
                self._build_if_sdist(ref)
                self.present.add(ref.filename)
            else:
                self.fetcher.add([ref], directory, first=first)  # may raise (no space): then nothing is queued
                self.queued.add(ref.filename)

    def _arrived_whole(self, ref: FileRef) -> None:
        """The fetcher's report of a file checked and in place (from a download thread)."""
        self.wheelhouse.record(pool_directory(self.wheelhouse, ref) / ref.filename, ref.sha256)
        with self.lock:  # its build is queued before anyone sees it arrived, so ready() waits for the build too
            self._build_if_sdist(ref)
            self.arrived.add(ref.filename)

    def _build_if_sdist(self, ref: FileRef) -> None:
        pin = self.sdist_pins.get(ref.filename)
        if pin is not None:
            self.builds[ref.filename] = self.builder.submit(self.build, pin)

    def finish(self, wanted: set[str], names: set[str]) -> dict[str, list | None]:
        """Wait for the downloads and builds, drop the guesses nobody wants; the fingerprints of `names`' pages.

        Called once every resolution is over, so that no selection comes in after it.
        """
        for read in self.release_reads:
            read.exception()  # a page that could not be read for a guess is read again, and reported, for the pins
        self.fetcher.wait(needed=wanted)
        unwanted = self.queued - wanted
        for sdist, build in self.builds.items():
            # a failed build is built again, and reported, by the lock step; None is an earlier run's wheel
            if build.exception() is None and sdist not in wanted and (made := build.result()) is not None:
                unwanted.add(made.filename)
        for filename in unwanted - wanted:
            (self.wheelhouse.pool / filename).unlink(missing_ok=True)
            (self.wheelhouse.sdists / filename).unlink(missing_ok=True)
        missing = names - self.fingerprinted
        if missing:
            self.fingerprints.append(self.background.submit(page_fingerprints, self.index_url, missing, {}, self.pages))
        found: dict[str, list | None] = dict(self.read_fingerprints)
        for future in self.fingerprints:
            found.update(future.result())
        return {name: found.get(name) for name in names}
