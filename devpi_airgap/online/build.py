"""Build an sdist-only dependency into a wheel, accepted only when the wheel is pure Python.

A pure wheel built here installs anywhere, so it is correct for every target.
A platform-specific one would be built for this machine, not the target, so
that case is an error naming the package, the target and what the index has.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import parse_wheel_filename

from devpi_airgap.core.errors import ResolutionError
from devpi_airgap.core.files import raise_if_disk_full, scratch_prefix
from devpi_airgap.core.isolation import isolated_env, uv_binary
from devpi_airgap.core.platforms import TargetPlatform
from devpi_airgap.online.resolve import Pin, index_listing, index_toml


def _is_pure(wheel: Path) -> bool:
    _, _, _, tags = parse_wheel_filename(wheel.name)
    return all(tag.abi == "none" and tag.platform == "any" for tag in tags)


def build_pure_wheel(sdist: Path, pin: Pin, platform: TargetPlatform, index_url: str | None, out_dir: Path) -> Path:
    target = platform.target
    with tempfile.TemporaryDirectory(prefix=scratch_prefix(None, "airgap-build-")) as tmp:
        command = [uv_binary(), "build", "--no-config", "--wheel", "--python", sys.executable, "-o", tmp, str(sdist)]
        if index_url:  # what the build itself needs (setuptools, say) comes from the same index
            (Path(tmp) / "uv.toml").write_text(index_toml(index_url), encoding="utf-8")
            command += ["--config-file", str(Path(tmp) / "uv.toml")]
        result = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", env=isolated_env())
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0:
            raise_if_disk_full(result.stderr)
        if result.returncode != 0 or len(wheels) != 1:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            problem = f"building its sdist {sdist.name} failed:\n{tail}"
        elif not _is_pure(wheels[0]):
            problem = f"its sdist builds a platform-specific wheel ({wheels[0].name}) that would only fit this machine"
        else:
            out_dir.mkdir(parents=True, exist_ok=True)
            try:
                return Path(shutil.move(wheels[0], out_dir / wheels[0].name))
            except OSError as exc:  # the copy into the wheelhouse failed: name the wheelhouse, not the temp dir
                (out_dir / wheels[0].name).unlink(missing_ok=True)
                raise OSError(exc.errno, exc.strerror, str(out_dir)) from None
    offered = [f for f in index_listing(index_url, pin.name) if f.endswith(".whl")]
    raise ResolutionError(
        f"{pin.name} {pin.version} has no wheel for target {target.name!r} "
        f"({', '.join(target.platforms)}, Python {target.python}), and {problem}.\n"
        f"The index has {len(offered)} wheels for {pin.name}, the newest: {', '.join(offered[-8:]) or 'none'}.\n"
        f"Remedy: pin a version of {pin.name} with a wheel for this target, or build the wheel on a "
        f"{target.name} machine and add it to the wheelhouse."
    )
