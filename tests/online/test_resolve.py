"""resolve_set against the fake index: the target's markers and tags decide, never this machine's."""

from __future__ import annotations

import pytest

from devpi_airgap.core.errors import ResolutionError
from devpi_airgap.core.inventory import load_inventory
from devpi_airgap.core.platforms import target_platform
from devpi_airgap.core.requirements import ResolutionSet
from devpi_airgap.online import resolve
from devpi_airgap.online.resolve import resolve_set
from testing.download_project import DISTS, make_project
from testing.fakeindex import Dist, add_release, build_index, serve_index


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


@pytest.fixture
def own_index(tmp_path, monkeypatch):
    """An index of this test's own, and a uv cache of its own, so that what uv keeps between rounds and runs shows.

    Its pages say nothing of caching, as PyPI's do behind the proxy here: uv keeps them as long as we tell it.
    """
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    with serve_index(build_index(tmp_path / "index", DISTS)) as url:
        url.page_cache_control = None
        yield url


def test_a_second_round_reuses_the_pages_the_first_one_read(own_index, tmp_path):
    rounds: list[bool] = []
    inventory = load_inventory(make_project(tmp_path, own_index, "compiled\n") / "inventory.yaml")
    platform = target_platform(inventory.targets["win313"])
    resolved = resolve_set(
        ResolutionSet("test", ("compiled",)), platform, own_index, lambda p, final: rounds.append(final)
    )
    assert rounds == [False, True]  # compiled 2.0's sdist was pinned first, then excluded
    assert {pin.file.filename for pin in resolved} == {"compiled-1.0-cp313-cp313-win_amd64.whl"}
    # Once by uv's first round, once by the check of what the index offers for compiled: never by the second round.
    assert own_index.counts["/simple/compiled/"] == 2, own_index.requests


def test_every_run_reads_the_pages_again_whatever_uv_kept(own_index, tmp_path):
    assert pins(own_index, tmp_path, "win313", "lib<3")["lib"] == "lib-2.0-py3-none-any.whl"
    add_release(own_index.root, Dist("lib", "2.9"))
    # uv kept the page for ten minutes; a new run still sees the new release at once.
    assert pins(own_index, tmp_path, "win313", "lib<3")["lib"] == "lib-2.9-py3-none-any.whl"


def test_a_project_only_a_later_round_pins_is_read_again_too(tmp_path, monkeypatch):
    # needy 2.0 fits the target only as a compiled sdist; 1.0 has the wheel, and needs `extra`, which the first
    # round never pinned: uv still holds extra's page from the run before, when extra 1.1 did not exist.
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    dists = [
        Dist("needy", "1.0", requires=["extra"], tags=["cp313-cp313-win_amd64"]),
        Dist("needy", "2.0", tags=["cp314-cp314-win_amd64"], sdist=True, pure_build=False),
        Dist("extra", "1.0"),
    ]
    (tmp_path / "before").mkdir()
    (tmp_path / "now").mkdir()
    with serve_index(build_index(tmp_path / "index", dists)) as index:
        index.page_cache_control = None
        assert pins(index, tmp_path / "before", "win313", "extra")["extra"] == "extra-1.0-py3-none-any.whl"
        add_release(index.root, Dist("extra", "1.1"))
        assert pins(index, tmp_path / "now", "win313", "needy") == {
            "needy": "needy-1.0-cp313-cp313-win_amd64.whl",
            "extra": "extra-1.1-py3-none-any.whl",
        }


def test_the_default_index_is_read_again_too(own_index, tmp_path, monkeypatch):
    # An inventory without index_url: uv's --refresh must still reach the pages of the default index.
    monkeypatch.setattr(resolve, "default_index_url", lambda: str(own_index))
    inventory = load_inventory(make_project(tmp_path, own_index, "lib<3\n") / "inventory.yaml")
    platform = target_platform(inventory.targets["win313"])

    def lib() -> str:
        return {pin.name: pin.file.filename for pin in resolve_set(ResolutionSet("t", ("lib<3",)), platform, None)}[
            "lib"
        ]

    assert lib() == "lib-2.0-py3-none-any.whl"
    add_release(own_index.root, Dist("lib", "2.9"))
    assert lib() == "lib-2.9-py3-none-any.whl"
