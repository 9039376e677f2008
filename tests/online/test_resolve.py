"""resolve_set against the fake index: the target's markers and tags decide, never this machine's."""

from __future__ import annotations

import pytest

from devpi_airgap.core.errors import ResolutionError
from devpi_airgap.core.inventory import load_inventory
from devpi_airgap.core.platforms import target_platform
from devpi_airgap.core.requirements import ResolutionSet
from devpi_airgap.online.resolve import resolve_set
from testing.download_project import DISTS, make_project
from testing.fakeindex import build_index, serve_index


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    with serve_index(build_index(tmp_path_factory.mktemp("index"), DISTS)) as url:
        yield url


def pins(index, tmp_path, target: str, *lines: str) -> dict[str, str]:
    inventory = load_inventory(make_project(tmp_path, index, "\n".join(lines) + "\n") / "inventory.yaml")
    platform = target_platform(inventory.targets[target])
    return {pin.name: pin.file.filename for pin in resolve_set(ResolutionSet("test", lines), platform, index)}


def test_markers_are_the_targets(index, tmp_path):
    windows = pins(index, tmp_path, "win313", "app")
    assert "winonly" in windows and "posixonly" not in windows and "newpy" in windows and "oldpy" not in windows
    linux = pins(index, tmp_path, "lin311", "app")
    assert "posixonly" in linux and "winonly" not in linux and "oldpy" in linux and "macdep" not in linux


def test_the_wheel_for_the_targets_tags_is_chosen(index, tmp_path):
    assert pins(index, tmp_path, "win313", "natext")["natext"] == "natext-1.0-cp313-cp313-win_amd64.whl"
    assert pins(index, tmp_path, "mac312", "natext")["natext"] == "natext-1.0-cp312-cp312-macosx_11_0_arm64.whl"


def test_a_compiled_projects_sdist_is_never_chosen(index, tmp_path):
    # compiled 2.0 has only an sdist that fits; 1.0 has the target's wheel.
    assert pins(index, tmp_path, "win313", "compiled")["compiled"] == "compiled-1.0-cp313-cp313-win_amd64.whl"


def test_a_pure_sdist_only_project_is_pinned_to_its_sdist(index, tmp_path):
    assert pins(index, tmp_path, "win313", "sdistonly")["sdistonly"] == "sdistonly-1.0.tar.gz"


def test_an_unsatisfiable_requirement_names_itself(index, tmp_path):
    with pytest.raises(ResolutionError, match="natext==9.9"):
        pins(index, tmp_path, "win313", "natext==9.9")
