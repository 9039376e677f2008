"""Which pip sees which wheel: the table, and the pip releases on each side of its every line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from packaging.tags import Tag
from packaging.version import Version

from devpi_airgap.core.pip_versions import assumed_pip, first_pip_knowing, unknown_to_pip
from testing.wheels import make_wheel

LINUX_2_28 = [
    Tag("cp39", "cp39", p) for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
]


def test_a_wheel_is_unknown_only_when_none_of_its_target_tags_is_known():
    files = [
        "new-1.0-cp39-cp39-manylinux_2_28_x86_64.whl",
        "both-1.0-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "pure-1.0-py3-none-any.whl",
        "elsewhere-1.0-cp39-cp39-win_amd64.whl",  # not this target's: other checks say so
        "new-1.0.tar.gz",
    ]
    unseen = unknown_to_pip(files, LINUX_2_28, Version("20.2.3"))
    assert [(u.filename, u.tag, str(u.needs)) for u in unseen] == [
        ("new-1.0-cp39-cp39-manylinux_2_28_x86_64.whl", "manylinux_2_28_x86_64", "20.3")
    ]
    assert unknown_to_pip(files, LINUX_2_28, Version("20.3")) == []


def test_the_clients_pip_is_the_inventorys_else_the_one_their_python_came_with():
    assert assumed_pip("3.9", None) == Version("20.2.3")
    assert assumed_pip("3.9", "23.0") == Version("23.0")
    assert assumed_pip("3.13", None) == Version("24.2")
    assert assumed_pip("3.99", None) >= Version("25.2")  # a Python newer than the table: the newest pip known


# What each pip release's own tag code yields, run from its wheel. pips before 19.3 import the ABCs from
# `collections`, which Python 3.10 removed: given back, their tag code runs unchanged.
_PROBE = """
import collections, collections.abc, importlib.util, json, sys
for name in collections.abc.__all__:
    setattr(collections, name, getattr(collections.abc, name))
sys.path.insert(0, sys.argv[1])
try:
    from pip._internal.utils.compatibility_tags import get_supported
except ImportError:
    from pip._internal.pep425tags import get_supported
here = sorted({t[2] if isinstance(t, tuple) else t.platform for t in get_supported()})
try:
    from pip._vendor.packaging.tags import mac_platforms
    mac = list(mac_platforms((12, 0), "arm64")) + list(mac_platforms((10, 15), "x86_64"))
except ImportError:
    mac = []
musl = importlib.util.find_spec("pip._vendor.packaging._musllinux") is not None
print(json.dumps({"here": here, "mac": mac, "musl": musl}))
"""

# Each line of the table, by a tag of its family, and the release just before the first that knows it.
LINES = {
    "manylinux2010_x86_64": "18.1",
    "manylinux2014_x86_64": "19.2.3",
    "manylinux_2_28_x86_64": "20.2.4",
    "macosx_11_0_arm64": "20.2.4",  # as a Mac running macOS 12 sees it
    "macosx_10_15_universal2": "20.2.4",
    "musllinux_1_2_x86_64": "21.1.3",  # this machine is glibc's: musl support is pip's _musllinux module
}


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    return {**env, "PIP_CONFIG_FILE": os.devnull}


@pytest.fixture(scope="module")
def pip_releases(tmp_path_factory):
    """The pip wheels on each side of the table's lines, from the real index."""
    where = tmp_path_factory.mktemp("pips")
    versions = sorted({*LINES.values(), *(str(first_pip_knowing(tag)) for tag in LINES)}, key=Version)
    for version in versions:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
            + ["--disable-pip-version-check", "-d", str(where), f"pip=={version}"],
            check=True,
            env=_clean_env(),
        )
    return {Version(p.name.split("-")[1]): p for p in where.glob("pip-*.whl")}


def _knows(wheel: Path, tag: str) -> bool:
    probe = subprocess.run(
        [sys.executable, "-S", "-c", _PROBE, str(wheel)], capture_output=True, text=True, env=_clean_env()
    )
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    if tag.startswith("musllinux_"):
        return seen["musl"]
    return tag in (seen["mac"] if tag.startswith("macosx_") else seen["here"])


@pytest.fixture(scope="module")
def released():
    """Every pip release on the real index, yanked ones included."""
    request = urllib.request.Request(
        "https://pypi.org/simple/pip/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return sorted(Version(v) for v in json.load(answer)["versions"] if not Version(v).is_prerelease)


@pytest.mark.network
@pytest.mark.parametrize("tag", LINES)
def test_the_first_pip_the_table_names_is_the_first_that_knows_the_tag(tag, pip_releases, released):
    first, before = first_pip_knowing(tag), Version(LINES[tag])
    assert released[released.index(first) - 1] == before  # no release between the two
    assert not _knows(pip_releases[before], tag)
    assert _knows(pip_releases[first], tag)


@pytest.mark.network
def test_an_old_pip_finds_no_wheel_the_check_calls_unknown_and_the_next_pip_installs_it(pip_releases, tmp_path):
    # py3-none: the Python tag pips before 21 spell wrongly for Python 3.10 and later plays no part
    wheel = make_wheel(tmp_path / "wheels", "newtag", "1.0", tag="py3-none-manylinux_2_28_x86_64")
    accepted = [Tag("py3", "none", "manylinux_2_28_x86_64"), Tag("py3", "none", "manylinux2014_x86_64")]
    outcomes = {}
    for version in (Version("20.2.4"), Version("20.3")):
        venv = tmp_path / f"venv-{version}"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), str(pip_releases[version] / "pip")]
        installed = subprocess.run(
            [*pip, "install", "--no-index", "--find-links", str(wheel.parent), "newtag"],
            capture_output=True,
            text=True,
            env=_clean_env(),
        )
        outcomes[version] = (installed.returncode == 0, not unknown_to_pip([wheel.name], accepted, version))
    assert outcomes == {Version("20.2.4"): (False, False), Version("20.3"): (True, True)}
