"""What a wheel and an sdist say about themselves, read straight from the archive."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from devpi_airgap.core.metadata import DeclaredNeeds, sdist_needs

OLD_PKG_INFO = "Metadata-Version: 1.1\nName: old\nVersion: 0.3\n"


def sdist(tmp_path: Path, files: dict[str, str], name: str = "old-0.3") -> Path:
    path = tmp_path / f"{name}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{member}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_an_old_sdists_egg_info_gives_its_needs_as_requires_dist_would(tmp_path):
    """As pyramid-chameleon 0.3's: PKG-INFO 1.1 says nothing, setuptools' requires.txt says it all."""
    requires = 'pyramid\nChameleon\n\n[:sys_platform == "win32"]\ncolorama\n\n[docs]\nSphinx\n\n' + (
        '[testing:python_version < "3.12"]\nnose\n'
    )
    found = sdist_needs(
        sdist(
            tmp_path,
            {"PKG-INFO": OLD_PKG_INFO, "old.egg-info/PKG-INFO": OLD_PKG_INFO, "old.egg-info/requires.txt": requires},
        )
    )
    assert found == DeclaredNeeds(
        (
            "pyramid",
            "Chameleon",
            'colorama; sys_platform == "win32"',
            'Sphinx; extra == "docs"',
            'nose; python_version < "3.12" and extra == "testing"',
        ),
        None,
        ("docs", "testing"),
    )


def test_an_egg_info_without_requires_txt_needs_nothing(tmp_path):
    found = sdist_needs(sdist(tmp_path, {"PKG-INFO": OLD_PKG_INFO, "old.egg-info/PKG-INFO": OLD_PKG_INFO}))
    assert found == DeclaredNeeds((), None, ())


def test_a_static_pkg_info_of_2_2_or_later_is_taken_as_it_says(tmp_path):
    pkg_info = (
        "Metadata-Version: 2.4\nName: new\nVersion: 1.0\nRequires-Python: >=3.9\nRequires-Dist: lib<2\n"
        'Requires-Dist: extra-lib; extra == "fast"\nProvides-Extra: fast\nDynamic: Classifier\n'
    )
    found = sdist_needs(sdist(tmp_path, {"PKG-INFO": pkg_info}, name="new-1.0"))
    assert found == DeclaredNeeds(("lib<2", 'extra-lib; extra == "fast"'), ">=3.9", ("fast",))


@pytest.mark.parametrize(
    "files",
    [
        {"PKG-INFO": OLD_PKG_INFO},  # 1.1 and no egg-info: only a build can say
        {"PKG-INFO": "Metadata-Version: 2.2\nName: old\nVersion: 0.3\nDynamic: Requires-Dist\n"},  # left to the build
        {"PKG-INFO": OLD_PKG_INFO, "old.egg-info/PKG-INFO": OLD_PKG_INFO, "old.egg-info/requires.txt": "a; b\n"},
        {"PKG-INFO": "Metadata-Version: 2.2\nName: old\nVersion: 0.3\nRequires-Dist: not a requirement!\n"},
    ],
    ids=["no-egg-info", "dynamic", "a-line-with-its-own-marker", "unreadable"],
)
def test_an_sdist_that_says_nothing_sure_gives_no_needs(tmp_path, files):
    assert sdist_needs(sdist(tmp_path, files)) is None
