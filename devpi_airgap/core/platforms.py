"""What a target is, in the three vocabularies we need: wheel tags, uv platforms, markers.

Users name platforms the way pip does (`win_amd64`, `macosx_11_0_arm64`,
`manylinux_2_28_x86_64`). From that we derive the wheel tags a target accepts,
the `--python-platform` uv resolves for, and the marker environment used to
evaluate the markers uv leaves in a lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from packaging import tags

from devpi_airgap.core.errors import UsageError
from devpi_airgap.core.inventory import Target

_WINDOWS = {"win_amd64": ("x86_64", "AMD64"), "win32": ("i686", "x86"), "win_arm64": ("aarch64", "ARM64")}
_MACOS = re.compile(r"^macosx_(\d+)_(\d+)_(arm64|x86_64|universal2)$")
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(x86_64|aarch64)$")
_MANYLINUX_LEGACY = re.compile(r"^manylinux(1|2010|2014)_(x86_64|aarch64|i686)$")
_LEGACY_GLIBC = {"1": 5, "2010": 12, "2014": 17}
_MUSLLINUX = re.compile(r"^musllinux_1_(\d+)_(x86_64|aarch64)$")
_LINUX = re.compile(r"^linux_(x86_64|aarch64)$")
# The manylinux flavours uv accepts for --python-platform (besides manylinux2014).
_UV_GLIBC_MINORS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)


class PlatformError(UsageError):
    pass


@dataclass(frozen=True)
class _Platform:
    os: str  # windows | macos | linux | musllinux
    arch: str  # x86_64 | aarch64 | i686 | universal2
    level: tuple[int, int] = (0, 0)  # macOS version, glibc or musl version


def _parse(tag: str, target: str) -> _Platform:
    if tag in _WINDOWS:
        return _Platform("windows", _WINDOWS[tag][0])
    if m := _MACOS.match(tag):
        arch = {"arm64": "aarch64"}.get(m[3], m[3])
        return _Platform("macos", arch, (int(m[1]), int(m[2])))
    if m := _MANYLINUX.match(tag):
        return _Platform("linux", m[3], (int(m[1]), int(m[2])))
    if m := _MANYLINUX_LEGACY.match(tag):
        return _Platform("linux", m[2], (2, _LEGACY_GLIBC[m[1]]))
    if m := _MUSLLINUX.match(tag):
        return _Platform("musllinux", m[2], (1, int(m[1])))
    if m := _LINUX.match(tag):
        return _Platform("linux", m[1], (0, 0))
    raise PlatformError(
        f"target {target!r}: unknown platform tag {tag!r}; use a wheel platform tag such as "
        "win_amd64, win32, win_arm64, macosx_11_0_arm64, macosx_10_12_x86_64, "
        "manylinux_2_28_x86_64, manylinux2014_x86_64, musllinux_1_2_x86_64"
    )


def _expand(p: _Platform, tag: str) -> list[str]:
    """Every platform tag a machine of this kind also installs, best first."""
    if p.os == "windows":
        return [tag]
    if p.os == "macos":
        arch = "arm64" if p.arch == "aarch64" else p.arch
        return list(tags.mac_platforms(p.level, arch))
    if p.os == "musllinux":
        return [f"musllinux_1_{minor}_{p.arch}" for minor in range(p.level[1], -1, -1)]
    if p.level == (0, 0):
        return [tag]
    expanded = []
    for minor in range(p.level[1], 4, -1):
        expanded.append(f"manylinux_2_{minor}_{p.arch}")
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}.get(minor)
        if legacy:
            expanded.append(f"{legacy}_{p.arch}")
    return expanded


@dataclass(frozen=True)
class TargetPlatform:
    """A target's platform, ready for resolution and wheel selection."""

    target: Target
    platform_tags: tuple[str, ...]
    uv_platform: str
    uv_env: tuple[tuple[str, str], ...]
    marker_env: tuple[tuple[str, str], ...]

    @property
    def python_full_version(self) -> str:
        return f"{self.target.python}.0"

    @property
    def environment_marker(self) -> str:
        """The target as one PEP 508 marker (OS, CPU, Python), as uv's `environments` setting takes it."""
        env = dict(self.marker_env)
        return " and ".join(
            f"{name} == '{env[name]}'" for name in ("sys_platform", "platform_machine", "python_version")
        )

    @cached_property
    def tag_ranks(self) -> dict[tags.Tag, int]:
        """Each wheel tag this target installs, and its rank (0 is the most specific).

        Kept once made: a resolution picks a file for every package of every try from it,
        and making it anew each time held the GIL for 0.5 s of a three-target run.
        """
        return {tag: rank for rank, tag in enumerate(self.tags())}

    def tags(self) -> list[tags.Tag]:
        """The wheel tags this target installs, most specific first."""
        version = self.target.python_tuple
        return list(tags.cpython_tags(version, platforms=self.platform_tags)) + list(
            tags.compatible_tags(version, f"cp{version[0]}{version[1]}", platforms=self.platform_tags)
        )

    def runs_natively(self) -> bool:
        """True where this machine could install the target's wheels itself."""
        return bool(set(self.platform_tags) & _host_platform_tags())


@lru_cache(maxsize=1)
def _host_platform_tags() -> frozenset[str]:
    return frozenset(tags.platform_tags())


def target_platform(target: Target) -> TargetPlatform:
    parsed = [(_parse(tag, target.name), tag) for tag in target.platforms]
    oses = {p.os for p, _ in parsed}
    archs = {p.arch for p, _ in parsed if p.arch != "universal2"}
    if len(oses) > 1 or len(archs) > 1:
        raise PlatformError(
            f"target {target.name!r}: platforms {', '.join(target.platforms)} mix operating systems or CPUs; "
            "make one target per OS and CPU"
        )
    platform_tags: list[str] = []
    for p, tag in parsed:
        for t in _expand(p, tag):
            if t not in platform_tags:
                platform_tags.append(t)
    best = max((p for p, _ in parsed), key=lambda p: p.level)
    uv_env: dict[str, str] = {}
    if best.os == "windows":
        uv_platform = f"{best.arch}-pc-windows-msvc"
        machine = {v[0]: v[1] for v in _WINDOWS.values()}[best.arch]
        markers = {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt", "platform_machine": machine}
    elif best.os == "macos":
        arch = "x86_64" if best.arch == "x86_64" else "aarch64"
        uv_platform = f"{arch}-apple-darwin"
        uv_env["MACOSX_DEPLOYMENT_TARGET"] = f"{best.level[0]}.{best.level[1]}"
        markers = {
            "sys_platform": "darwin",
            "platform_system": "Darwin",
            "os_name": "posix",
            "platform_machine": "x86_64" if arch == "x86_64" else "arm64",
        }
    else:
        if best.os == "musllinux":
            uv_platform = f"{best.arch}-unknown-linux-musl"
        elif best.level == (0, 0):
            uv_platform = f"{best.arch}-unknown-linux-gnu"
        else:
            usable = [m for m in _UV_GLIBC_MINORS if m <= best.level[1]]
            if not usable:
                raise PlatformError(
                    f"target {target.name!r}: glibc 2.{best.level[1]} is older than manylinux2014, "
                    "which is the oldest platform uv resolves for; use manylinux2014 or newer"
                )
            uv_platform = f"{best.arch}-manylinux_2_{usable[-1]}"
        markers = {
            "sys_platform": "linux",
            "platform_system": "Linux",
            "os_name": "posix",
            "platform_machine": best.arch,
        }
    markers.update(
        python_version=target.python,
        python_full_version=f"{target.python}.0",
        implementation_name="cpython",
        platform_python_implementation="CPython",
        implementation_version=f"{target.python}.0",
    )
    return TargetPlatform(
        target=target,
        platform_tags=tuple(platform_tags),
        uv_platform=uv_platform,
        uv_env=tuple(uv_env.items()),
        marker_env=tuple(markers.items()),
    )
