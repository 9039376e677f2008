"""`inv download`: resolve every target, fetch what is missing, build pure sdists, lock, link; or say what it would."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from importlib.metadata import version

from devpi_airgap import __version__
from devpi_airgap.core.console import ProgressFactory, no_progress
from devpi_airgap.core.errors import ResolutionError
from devpi_airgap.core.files import sha256_file
from devpi_airgap.core.inventory import Inventory, Target
from devpi_airgap.core.lock import LockedFile, lock_changes, read_lock, versions_by_name, write_lock
from devpi_airgap.core.metadata import MetadataError, needs_in, read_metadata, sdist_needs
from devpi_airgap.core.platforms import TargetPlatform, target_platform
from devpi_airgap.core.pools import stoppable_pool
from devpi_airgap.core.requirements import hash_problems, resolution_sets
from devpi_airgap.core.runlock import wheelhouse_lock
from devpi_airgap.core.wheelhouse import Wheelhouse
from devpi_airgap.online.build import build_pure_wheel
from devpi_airgap.online.early import EarlyWork
from devpi_airgap.online.fetch import remove_partials
from devpi_airgap.online.freshness import FreshnessRecord, inputs_digest, page_fingerprints
from devpi_airgap.online.lookups import shared_lookups
from devpi_airgap.online.resolve import BuiltMetadata, FileRef, Pin, Tries, index_listing, resolve_set

RESOLVE_WORKERS = 4
POLL = 0.01  # seconds between looks at which targets are complete


@dataclass
class TargetReport:
    name: str
    packages: int = 0
    files: int = 0
    new_files: int = 0
    new_bytes: int = 0
    seconds: float = 0.0
    lock_changed: bool = False


@dataclass
class TargetChanges:
    """What `download` would change for one target, found without changing anything (`inv download --check`)."""

    name: str
    resolved_anew: bool  # False: its lock is still what a resolution would give (or --locked)
    has_lock: bool  # False: a first download, whose every package is new
    packages: dict[str, list[str]] = field(default_factory=dict)  # its lock's new, updated, removed (lock_changes)
    fetch_files: int = 0  # files the pool lacks
    fetch_bytes: int = 0
    builds: list[str] = field(default_factory=list)  # "project version" of each sdist to build into a wheel
    link_files: int = 0  # files its directory lacks, in the pool or not
    # what its lock would hold, as sha256 -> size; a wheel still to be built from an sdist is in `builds` instead
    files: dict[str, int] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return bool(any(self.packages.values()) or self.fetch_files or self.builds or self.link_files)


def _pins_from_lock(inventory: Inventory, target: Target) -> dict[Pin, set[str]]:
    _, files = read_lock(inventory.lock_path(target))
    pins = {}
    for f in files:
        source = f.built_from or {"filename": f.filename, "url": f.url, "sha256": f.sha256, "size": f.size}
        ref = FileRef(source["filename"], source["url"], source["sha256"], source.get("size"))
        pins[Pin(f.name, f.version, ref)] = set(f.sets)
    return pins


class _FirstTry:
    """One set's first wheels-only try, which the other targets' largest sets wait for.

    A set that needs a project publishing no wheel (the sample's devpi-web needs
    pyramid-chameleon) finds that out by a try that fails. Three targets paid that
    try three times at once, on two cores, and their second tries waited behind
    it. Told what the scout's first try found, each takes such projects as sdists
    in its own first try. A scout stopped by Ctrl-C lets no other try start.
    """

    def __init__(self) -> None:
        self.over = threading.Event()
        self.interrupted = False

    def scout(self, resolve: Callable[..., list[Pin]]) -> list[Pin]:
        try:
            return resolve(after_first_try=self.over.set)
        except KeyboardInterrupt:
            self.interrupted = True
            raise
        finally:
            self.over.set()

    def wait(self) -> None:
        self.over.wait()
        if self.interrupted:
            raise KeyboardInterrupt


class _Resolutions:
    """Every set of every target resolving at once; a target's pins as soon as all of its sets are in.

    uv mostly waits on the network, so the sets run side by side: the target
    this machine can run first (its verify takes longest), and within a target
    the largest set first. With several targets, that first largest set scouts
    for the others (see _FirstTry). Theirs come next, waiting for its first
    try, and the other targets' smaller sets last: queued behind those six
    small sets for the pool's four workers, the three-target sample's largest
    sets started their tries 1.7-2.0 s after the scout's first try had ended.
    """

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        inventory: Inventory,
        platforms: dict[str, TargetPlatform],
        on_round: Callable[[str, list[Pin], bool], None],
        tries: Tries,
        on_selected: Callable[[str, str, str, str], None],
    ):
        order = sorted(platforms, key=lambda name: not platforms[name].runs_natively())
        scout = order[0] if len(order) > 1 else None
        first_try = _FirstTry()
        jobs: list[tuple[int, str, str, Callable[[], list[Pin]]]] = []
        for name in order:
            sets = sorted(resolution_sets(platforms[name].target), key=lambda s: -len(s.lines))
            for rank, s in enumerate(sets):
                resolve = partial(
                    resolve_set,
                    s,
                    platforms[name],
                    inventory.index_url,
                    partial(on_round, name),
                    tries,
                    on_selected=partial(on_selected, name),
                )
                if scout is None or (rank > 0 and name == scout):
                    jobs.append((1, name, s.label, resolve))
                elif rank > 0:
                    jobs.append((3, name, s.label, resolve))
                elif name == scout:
                    jobs.append((0, name, s.label, partial(first_try.scout, resolve)))
                else:
                    jobs.append((2, name, s.label, partial(resolve, before_first_try=first_try.wait)))
        self.futures: dict[str, list[tuple[str, Future[list[Pin]]]]] = {name: [] for name in order}
        for _, name, label, job in sorted(jobs, key=lambda job: job[0]):
            self.futures[name].append((label, pool.submit(job)))

    def pins(self, name: str) -> dict[Pin, set[str]] | None:
        """The target's pins and the sets that need each, or None while a set is still resolving."""
        if not all(future.done() for _, future in self.futures[name]):
            return None
        pins: dict[Pin, set[str]] = {}
        for label, future in self.futures[name]:
            for pin in future.result():
                pins.setdefault(pin, set()).add(label)
        return pins

    def check(self) -> None:
        """Raise the failure of any set that has failed: it fails the run at once, whichever target it is for."""
        for name in self.futures:
            for _, future in self.futures[name]:
                if future.done() and future.exception() is not None:
                    future.result()


def _inputs(inventory: Inventory, platform: TargetPlatform) -> str:
    """Everything besides the index pages that a resolution depends on."""
    sets = [
        [
            s.label,
            s.lines,
            # by their bytes: uv and pip decode them (UTF-16 from PowerShell too); whatever changes them counts
            [hashlib.sha256(c.read_bytes()).hexdigest() for c in s.constraints],
            [[n, sorted(h)] for n, h in s.hashes],
        ]
        for s in resolution_sets(platform.target)
    ]
    return inputs_digest(
        [
            platform.uv_platform,
            platform.platform_tags,
            platform.target.python,
            inventory.index_url,
            sets,
            __version__,
            version("uv"),
        ]
    )


def _still_fresh(
    inventory: Inventory, targets: list[Target], inputs: dict[str, str], record: FreshnessRecord
) -> list[Target]:
    """The targets whose lock is still what a new resolution would give (see freshness.py)."""
    candidates = [t for t in targets if inventory.lock_path(t).exists() and record.inputs(t.name) == inputs[t.name]]
    known: dict[str, list] = {}
    for target in candidates:
        known.update(record.pages(target.name))
    current = page_fingerprints(inventory.index_url, set(known), known) if candidates else {}
    fresh = [t for t in candidates if record.unchanged(t.name, inputs[t.name], current)]
    for target in fresh:  # a page's bytes may change while its files do not: next time, compare the new bytes
        record.record(target.name, inputs[target.name], {name: current[name] for name in record.pages(target.name)})
    return fresh


def _check_hashes(platform: TargetPlatform, pins: dict[Pin, set[str]]) -> None:
    """Raise (exit 3) when a set whose file pins with --hash needs a file its hashes do not allow."""
    problems = []
    for resolution in resolution_sets(platform.target):
        if resolution.hashes:
            taken = [
                (p.name, p.version, p.file.filename, p.file.sha256)
                for p, labels in pins.items()
                if resolution.label in labels
            ]
            problems += hash_problems(resolution, taken)
    if problems:
        target = platform.target
        raise ResolutionError(
            f"target {target.name!r} ({', '.join(target.platforms)}, Python {target.python}) needs files that the "
            "--hash values of its requirements do not allow:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
            + "\nNothing was locked or linked for it. Hashes generated on one platform cover that platform's files "
            "only: generate them for every target (`uv pip compile --universal --generate-hashes`), or add what is "
            "missing with its hashes, then run again. A file whose sha256 differs from an approved one is not the "
            "file that was approved: find out why before you allow it."
        )


def _still_without_wheels(index_url: str | None, built: dict[str, LockedFile]) -> set[str]:
    """Projects earlier runs built from sdists that still publish no wheel: a resolution may take them so at once."""
    names = {f.name for f in built.values()}
    return {name for name in names if not any(f.endswith(".whl") for f in index_listing(index_url, name))}


def _built_metadata(wheelhouse: Wheelhouse, built: dict[str, LockedFile], names: set[str]) -> list[BuiltMetadata]:
    """What the wheels earlier runs built for these projects say they need; a wheel gone from the pool says nothing."""
    found = []
    for wheel in built.values():
        if wheel.name not in names:
            continue
        try:
            metadata = read_metadata(wheelhouse.pool / wheel.filename)
        except MetadataError:
            continue  # uv builds the sdist to read it, as it would without us
        found.append(BuiltMetadata.of(wheel.name, wheel.version, needs_in(metadata)))
    return found


def _built_before(inventory: Inventory, targets: list[Target]) -> dict[str, LockedFile]:
    """Wheels earlier runs built, by the sha256 of their sdist, so a re-run need not build again."""
    built = {}
    for target in targets:
        if inventory.lock_path(target).exists():
            _, files = read_lock(inventory.lock_path(target))
            built.update({f.built_from["sha256"]: f for f in files if f.built_from})
    return built


def download(
    inventory: Inventory,
    targets: list[Target],
    *,
    locked: bool = False,
    progress: ProgressFactory = no_progress,
    on_ready: Callable[[Target], None] = lambda target: None,
    on_stale: Callable[[list[Target]], None] = lambda targets: None,
) -> list[TargetReport]:
    """Bring every target's wheelhouse to its (new or --locked) lock; one run at a time on a wheelhouse.

    on_stale(targets) hears, once the index pages are checked, which targets are resolved anew.
    on_ready(target) hears of each target as soon as its directory and lock are complete, while the
    other targets' files may still be arriving; the target this machine can run is fetched first.
    """
    with wheelhouse_lock(inventory.wheelhouse), shared_lookups():
        return _download(inventory, targets, locked=locked, progress=progress, on_ready=on_ready, on_stale=on_stale)


def planned_changes(inventory: Inventory, targets: list[Target], *, locked: bool = False) -> list[TargetChanges]:
    """What `download` would change, with nothing changed: `inv download --check`.

    The targets whose lock is no longer current are resolved as `download` resolves them (uv reads
    the index, into a cache of the run's own, on scratch), and the pins are compared with each lock,
    the pool and the target's directory. Nothing is downloaded or built, and nothing in the wheelhouse
    or the locks is written, so no wheelhouse lock is taken either: a run beside this one sees no change.
    """
    with shared_lookups():
        wheelhouse = Wheelhouse(inventory.wheelhouse)
        platforms = {t.name: target_platform(t) for t in targets}
        inputs = {t.name: _inputs(inventory, platforms[t.name]) for t in targets}
        record = FreshnessRecord(wheelhouse.pool / ".freshness.json")  # read for _still_fresh, never saved
        current = targets if locked else _still_fresh(inventory, targets, inputs, record)
        pins = {t.name: _pins_from_lock(inventory, t) for t in current}
        stale = {name: p for name, p in platforms.items() if name not in pins}
        # each lock read once: a current target's pins are its lock's
        before = dict(pins)
        before.update(
            (n, _pins_from_lock(inventory, p.target))
            for n, p in stale.items()
            if inventory.lock_path(p.target).exists()
        )
        built = _built_before(inventory, targets)
        if stale:
            pins.update(_resolved(inventory, stale, Tries(*_known_sdist_only(inventory, wheelhouse, built))))
        for name, target_pins in pins.items():
            _check_hashes(platforms[name], target_pins)
        return [
            _changes(inventory, wheelhouse, t, before.get(t.name), pins[t.name], built, t.name in stale)
            for t in targets
        ]


def _known_sdist_only(
    inventory: Inventory, wheelhouse: Wheelhouse, built: dict[str, LockedFile]
) -> tuple[set[str], list[BuiltMetadata]]:
    """The projects earlier runs built that still publish no wheel, and their built wheels' metadata (see Tries)."""
    sdist_only = _still_without_wheels(inventory.index_url, built)
    return sdist_only, _built_metadata(wheelhouse, built, sdist_only)


def _resolved(
    inventory: Inventory, platforms: dict[str, TargetPlatform], tries: Tries
) -> dict[str, dict[Pin, set[str]]]:
    """Each target's pins, as _Resolutions gives them, with nothing fetched or built early.

    Without a prebuild, a try that takes a project as its sdist has uv build it in the run's cache to read it.
    """
    with stoppable_pool(RESOLVE_WORKERS) as pool:
        try:
            resolutions = _Resolutions(pool, inventory, platforms, lambda *round_: None, tries, lambda *guess: None)
            for futures in resolutions.futures.values():
                for _, future in futures:
                    future.result()  # a set that cannot resolve fails the check as it would fail the download
        except BaseException:
            tries.stop()  # before the pool waits for its threads: a try started now would not hear Ctrl-C
            raise
    tries.settle()
    return {name: pins for name in platforms if (pins := resolutions.pins(name)) is not None}


def _changes(
    inventory: Inventory,
    wheelhouse: Wheelhouse,
    target: Target,
    locked: dict[Pin, set[str]] | None,
    pins: dict[Pin, set[str]],
    built: dict[str, LockedFile],
    resolved_anew: bool,
) -> TargetChanges:
    """The difference between the pins and the target's lock (None: it has none), pool and directory; read only."""
    packages = lock_changes(versions_by_name(locked or {}), versions_by_name(pins))
    changes = TargetChanges(target.name, resolved_anew, locked is not None, packages)
    directory = inventory.target_dir(target)
    for pin in pins:
        ref = pin.file
        wheel: str | None = ref.filename
        if ref.is_wheel:
            fetch = wheelhouse.sha256(wheelhouse.pool / ref.filename) != ref.sha256
            changes.files[ref.sha256] = ref.size or 0
        else:  # the wheel an earlier run built from this very sdist serves, as in _built_wheel
            made = built.get(ref.sha256)
            wheel = (
                made.filename if made and wheelhouse.sha256(wheelhouse.pool / made.filename) == made.sha256 else None
            )
            fetch = wheel is None and wheelhouse.sha256(wheelhouse.sdists / ref.filename) != ref.sha256
            if wheel is None:
                changes.builds.append(f"{pin.name} {pin.version}")
            elif made is not None:
                changes.files[made.sha256] = made.size
        if fetch:
            changes.fetch_files += 1
            changes.fetch_bytes += ref.size or 0
        if wheel is None or not (directory / wheel).is_file():
            changes.link_files += 1
    return changes


def _download(
    inventory: Inventory,
    targets: list[Target],
    *,
    locked: bool,
    progress: ProgressFactory,
    on_ready: Callable[[Target], None],
    on_stale: Callable[[list[Target]], None],
) -> list[TargetReport]:
    start = time.monotonic()
    wheelhouse = Wheelhouse(inventory.wheelhouse)
    for directory in (wheelhouse.pool, wheelhouse.sdists):
        remove_partials(directory)  # a run killed outright left them; they would stay for good
    platforms = {t.name: target_platform(t) for t in targets}
    reports = {t.name: TargetReport(t.name) for t in targets}
    finished: dict[str, float] = {}

    record = FreshnessRecord(wheelhouse.pool / ".freshness.json")
    inputs = {t.name: _inputs(inventory, platforms[t.name]) for t in targets}
    current_lock = targets if locked else _still_fresh(inventory, targets, inputs, record)
    pins = {t.name: _pins_from_lock(inventory, t) for t in current_lock}
    for target in current_lock:
        _check_hashes(platforms[target.name], pins[target.name])
    finished.update({t.name: time.monotonic() for t in current_lock})
    stale = {name: p for name, p in platforms.items() if name not in pins}
    on_stale([t for t in targets if t.name in stale])
    built = _built_before(inventory, targets)
    any_platform = next(iter(platforms.values()))

    def build(pin: Pin) -> LockedFile | None:
        """A wheel built early, before its pin is final; None when an earlier run's wheel serves."""
        earlier = built.get(pin.file.sha256)
        made = _built_wheel(inventory, wheelhouse, any_platform, pin, built)
        return None if made is earlier else made

    def finish_target(target: Target) -> None:
        """Lock and link one target whose files are all in the pool."""
        name = target.name
        files: list[LockedFile] = []
        for pin, labels in pins[name].items():
            ref = pin.file
            if ref.is_wheel:
                entry = LockedFile(pin.name, pin.version, ref.filename, ref.url, ref.sha256, ref.size or 0)
            else:
                entry = _built_wheel(inventory, wheelhouse, platforms[name], pin, built)
            files.append(replace(entry, sets=tuple(sorted(labels))))
        report = reports[name]
        report.packages = len({f.name for f in files})
        report.files = len(files)
        added = set(wheelhouse.link(inventory.target_dir(target), [f.filename for f in files]))
        report.new_files = len(added)
        report.new_bytes = sum(f.size for f in files if f.filename in added)
        header = {
            "target": name,
            "platform": list(target.platforms),
            "python": target.python,
            "implementation": target.implementation,
            "uv_platform": platforms[name].uv_platform,
            "index_url": inventory.index_url,
            "tool": f"devpi-airgap {__version__}",
        }
        report.lock_changed = write_lock(inventory.lock_path(target), header, files)
        report.seconds = (time.monotonic() if added else finished[name]) - start

    def hand_over(name: str, round_pins: list[Pin], final: bool) -> None:
        early.hand_over(round_pins, final, first=platforms[name].runs_natively())

    def guess(name: str, project: str, version: str, filename: str) -> None:
        early.guess(name, project, version, filename, first=platforms[name].runs_natively())

    def prebuild(pin: Pin, declared: Callable[[BuiltMetadata | None], None]) -> BuiltMetadata | None:
        """A project that publishes no wheel (see Tries), built from its newest sdist while the tries go on.

        Tries that take it from source go on what the sdist declares (`declared`, said as soon as the sdist
        is in), and the wheel's metadata is checked against it; an sdist that declares nothing sure has them
        wait for the wheel. Otherwise they build the sdist to read it, one after the other, as uv builds an
        sdist once at a time in its cache (three targets' second tries, started apart: 5.2-6.6 s, against
        2.2-2.3 s with the metadata). It is a guess, like a round's pins: a try that pins another release
        builds that one itself, and the guess is dropped at the end, as is a build no try took.
        """
        early.hand_over([pin], False, first=True)
        if not early.wait_arrived(pin.file.filename, tries.stopping):
            return None  # a failed guess fails nothing: uv builds the sdist itself, as without it
        needs = sdist_needs(wheelhouse.sdists / pin.file.filename)
        declared(BuiltMetadata.of(pin.name, pin.version, needs) if needs else None)
        if not early.wait_built(pin.file.filename, tries.stopping):
            return None
        made = built.get(pin.file.sha256)
        return next(iter(_built_metadata(wheelhouse, {pin.file.sha256: made}, {pin.name})), None) if made else None

    with (
        progress("downloading", 0) as advance,
        EarlyWork(wheelhouse, inventory.index_url, build, on_bytes=advance) as early,
        stoppable_pool(RESOLVE_WORKERS) as pool,
    ):
        for name, target_pins in pins.items():
            early.take_locked(target_pins, first=platforms[name].runs_natively())
        sdist_only, metadata = _known_sdist_only(inventory, wheelhouse, built) if stale else (set(), [])
        tries = Tries(sdist_only, metadata, prebuild=prebuild)
        try:
            resolutions = _Resolutions(pool, inventory, stale, hand_over, tries, guess)
            # Each target is locked, linked and handed to on_ready the moment its own pins are known and its files
            # are in, while the other targets still resolve or download: the native target's verify, the longest,
            # overlaps their work. (Their links to shared files later move those files' ctime; verify's record of
            # what it proved does not count the ctime of a pool file it has checked, see verify._stamp.)
            waiting = sorted(targets, key=lambda t: not platforms[t.name].runs_natively())
            while waiting:
                for target in waiting:
                    if target.name not in pins and (resolved := resolutions.pins(target.name)) is not None:
                        _check_hashes(platforms[target.name], resolved)
                        pins[target.name] = resolved
                        finished[target.name] = time.monotonic()
                for target in list(waiting):
                    if target.name in pins and early.ready({pin.file.filename for pin in pins[target.name]}):
                        waiting.remove(target)
                        finish_target(target)
                        wheelhouse.save()  # the hashes of the files just checked, for a verify to read instead of the files
                        on_ready(target)
                resolutions.check()
                if waiting:
                    # A look costs a few set operations. Every 0.05 s, a no-op re-run waited here that long for
                    # the build job that finds an earlier run's wheel, about a tenth of its time.
                    time.sleep(POLL)
        except BaseException:
            tries.stop()  # before the pool waits for its threads: a try started now would not hear Ctrl-C
            raise
        tries.settle()  # a prebuild started on a suspicion no try confirmed hands nothing over after this
        wanted = {pin.file.filename for target_pins in pins.values() for pin in target_pins}
        fingerprints = early.finish(wanted, {pin.name for name in stale for pin in pins[name]})
    for name in stale:
        record.record(name, inputs[name], {p.name: fingerprints.get(p.name) for p in pins[name]})
    record.save()
    wheelhouse.save()
    return list(reports.values())


def _built_wheel(
    inventory: Inventory, wheelhouse: Wheelhouse, platform: TargetPlatform, pin: Pin, built: dict[str, LockedFile]
) -> LockedFile:
    """The pure wheel for an sdist-only pin, built at most once per sdist across targets and runs."""
    sdist = pin.file
    earlier = built.get(sdist.sha256)
    if earlier is None or not wheelhouse.has(wheelhouse.pool, earlier.filename, earlier.sha256):
        wheel = build_pure_wheel(
            wheelhouse.sdists / sdist.filename, pin, platform, inventory.index_url, wheelhouse.pool
        )
        built_from = {"filename": sdist.filename, "url": sdist.url, "sha256": sdist.sha256, "size": sdist.size}
        earlier = LockedFile(
            pin.name, pin.version, wheel.name, "", sha256_file(wheel), wheel.stat().st_size, built_from
        )
        built[sdist.sha256] = earlier
    return earlier
