"""`inv download`: resolve every target, fetch what is missing, build pure sdists, lock, link."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import version

from devpi_airgap import __version__
from devpi_airgap.core.console import ProgressFactory, no_progress
from devpi_airgap.core.files import sha256_file
from devpi_airgap.core.inventory import Inventory, Target
from devpi_airgap.core.lock import LockedFile, read_lock, write_lock
from devpi_airgap.core.platforms import TargetPlatform, target_platform
from devpi_airgap.core.pools import stoppable_pool
from devpi_airgap.core.requirements import resolution_sets
from devpi_airgap.core.runlock import wheelhouse_lock
from devpi_airgap.core.wheelhouse import Wheelhouse
from devpi_airgap.online.build import build_pure_wheel
from devpi_airgap.online.early import EarlyWork
from devpi_airgap.online.freshness import FreshnessRecord, inputs_digest, page_fingerprints
from devpi_airgap.online.resolve import FileRef, Pin, resolve_set

RESOLVE_WORKERS = 4


@dataclass
class TargetReport:
    name: str
    packages: int = 0
    files: int = 0
    new_files: int = 0
    new_bytes: int = 0
    seconds: float = 0.0
    lock_changed: bool = False


def _pins_from_lock(inventory: Inventory, target: Target) -> dict[Pin, set[str]]:
    _, files = read_lock(inventory.lock_path(target))
    pins = {}
    for f in files:
        source = f.built_from or {"filename": f.filename, "url": f.url, "sha256": f.sha256, "size": f.size}
        ref = FileRef(source["filename"], source["url"], source["sha256"], source.get("size"))
        pins[Pin(f.name, f.version, ref)] = set(f.sets)
    return pins


def _resolve_all(
    inventory: Inventory,
    platforms: dict[str, TargetPlatform],
    on_round: Callable[[list[Pin], bool], None],
    on_resolved: Callable[[str], None],
) -> dict[str, dict[Pin, set[str]]]:
    """Resolve every set of every target concurrently: uv mostly waits on the network."""
    jobs = [(name, s) for name, p in platforms.items() for s in resolution_sets(p.target)]
    pins: dict[str, dict[Pin, set[str]]] = {name: {} for name in platforms}
    remaining = {name: sum(1 for n, _ in jobs if n == name) for name in platforms}
    with stoppable_pool(RESOLVE_WORKERS) as pool:
        futures = [
            (name, s, pool.submit(resolve_set, s, platforms[name], inventory.index_url, on_round)) for name, s in jobs
        ]
        for name, resolution, future in futures:
            for pin in future.result():
                pins[name].setdefault(pin, set()).add(resolution.label)
            remaining[name] -= 1
            if not remaining[name]:
                on_resolved(name)
    return pins


def _inputs(inventory: Inventory, platform: TargetPlatform) -> str:
    """Everything besides the index pages that a resolution depends on."""
    sets = [
        [s.label, s.lines, [c.read_text(encoding="utf-8") for c in s.constraints]]
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


def _built_before(inventory: Inventory, targets: list[Target]) -> dict[str, LockedFile]:
    """Wheels earlier runs built, by the sha256 of their sdist, so a re-run need not build again."""
    built = {}
    for target in targets:
        if inventory.lock_path(target).exists():
            _, files = read_lock(inventory.lock_path(target))
            built.update({f.built_from["sha256"]: f for f in files if f.built_from})
    return built


def download(
    inventory: Inventory, targets: list[Target], *, locked: bool = False, progress: ProgressFactory = no_progress
) -> list[TargetReport]:
    """Bring every target's wheelhouse to its (new or --locked) lock; one run at a time on a wheelhouse."""
    with wheelhouse_lock(inventory.wheelhouse):
        return _download(inventory, targets, locked=locked, progress=progress)


def _download(
    inventory: Inventory, targets: list[Target], *, locked: bool, progress: ProgressFactory
) -> list[TargetReport]:
    start = time.monotonic()
    wheelhouse = Wheelhouse(inventory.wheelhouse)
    platforms = {t.name: target_platform(t) for t in targets}
    reports = {t.name: TargetReport(t.name) for t in targets}
    finished: dict[str, float] = {}

    record = FreshnessRecord(wheelhouse.pool / ".freshness.json")
    inputs = {t.name: _inputs(inventory, platforms[t.name]) for t in targets}
    current_lock = targets if locked else _still_fresh(inventory, targets, inputs, record)
    pins = {t.name: _pins_from_lock(inventory, t) for t in current_lock}
    finished.update({t.name: time.monotonic() for t in current_lock})
    stale = {name: p for name, p in platforms.items() if name not in pins}
    built = _built_before(inventory, targets)
    any_platform = next(iter(platforms.values()))

    def build(pin: Pin) -> LockedFile | None:
        """A wheel built early, before its pin is final; None when an earlier run's wheel serves."""
        earlier = built.get(pin.file.sha256)
        made = _built_wheel(inventory, wheelhouse, any_platform, pin, built)
        return None if made is earlier else made

    with (
        progress("downloading", 0) as advance,
        EarlyWork(wheelhouse, inventory.index_url, build, on_bytes=advance) as early,
    ):
        for target_pins in pins.values():
            early.take_locked(target_pins)
        resolved = _resolve_all(
            inventory, stale, early.hand_over, lambda name: finished.__setitem__(name, time.monotonic())
        )
        pins.update(resolved)
        wanted = {pin.file.filename for target_pins in pins.values() for pin in target_pins}
        fingerprints = early.finish(wanted, {pin.name for name in stale for pin in pins[name]})
    for name, target_pins in pins.items():
        times = [early.arrived[pin.file.filename] for pin in target_pins if pin.file.filename in early.arrived]
        finished[name] = max([finished[name], *times])
    for name in stale:
        record.record(name, inputs[name], {p.name: fingerprints.get(p.name) for p in pins[name]})
    record.save()

    for target in targets:
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
