"""The download tests' package world: projects whose markers differ per target, and a project using it."""

from __future__ import annotations

from pathlib import Path

from testing.fakeindex import Dist

DISTS = [
    Dist(
        "app",
        "1.0",
        requires=[
            'winonly; sys_platform == "win32"',
            'posixonly; sys_platform != "win32"',
            'macdep; sys_platform == "darwin"',
            'newpy; python_version >= "3.13"',
            'oldpy; python_version < "3.12"',
            "natext",
            "sdistonly",
        ],
    ),
    Dist("winonly", "1.0"),
    Dist("posixonly", "1.0"),
    Dist("macdep", "1.0"),
    Dist("newpy", "1.0"),
    Dist("oldpy", "1.0"),
    Dist(
        "natext",
        "1.0",
        tags=[
            "cp313-cp313-win_amd64",
            "cp312-cp312-macosx_11_0_arm64",
            "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        ],
    ),
    Dist("sdistonly", "1.0", sdist=True, wheel=False),
    Dist("lib", "1.0"),
    Dist("lib", "2.0"),
    Dist("lib", "3.0"),
    # The newest release of a compiled project has only a compiled sdist and a wheel for another
    # Python; the target must get the older release's wheel, never a build for this machine.
    Dist("compiled", "1.0", tags=["cp313-cp313-win_amd64", "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"]),
    Dist("compiled", "2.0", tags=["cp314-cp314-win_amd64"], sdist=True, pure_build=False),
    Dist("impure", "1.0", sdist=True, wheel=False, pure_build=False),
    Dist("elsewhere", "1.0", tags=["cp39-cp39-win32"]),
]

TARGETS = """
targets:
  win313: {platform: win_amd64, python: "3.13", requirements: [requirements.txt]}
  mac312: {platform: macosx_11_0_arm64, python: "3.12", requirements: [requirements.txt]}
  lin311: {platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: "3.11", requirements: [requirements.txt]}
"""


def make_project(tmp_path: Path, index_url: str, requirements: str, targets: str = TARGETS) -> Path:
    (tmp_path / "requirements.txt").write_text(requirements)
    (tmp_path / "inventory.yaml").write_text(f"index_url: {index_url}\n{targets}")
    return tmp_path
