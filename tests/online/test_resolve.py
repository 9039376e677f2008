"""resolve_set against the fake index: the target's markers and tags decide, never this machine's."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from devpi_airgap.core.errors import ResolutionError
from devpi_airgap.core.inventory import load_inventory
from devpi_airgap.core.platforms import target_platform
from devpi_airgap.core.requirements import ResolutionSet
from devpi_airgap.online import resolve
from devpi_airgap.online.resolve import BuiltMetadata, Tries, newest_sdist, resolve_set
from testing.download_project import DISTS, make_project
from testing.fakeindex import Dist, add_release, build_index, serve_index
from testing.loopback import send, serving


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
    with pytest.raises(ResolutionError, match="natext==9.9") as failed:
        pins(index, tmp_path, "win313", "natext==9.9")
    # uv ran with its resolver's log on (see uv_compile): none of it reaches the user's message
    assert "DEBUG" not in str(failed.value) and "Selecting" not in str(failed.value)


@pytest.fixture
def own_index(tmp_path, monkeypatch):
    """An index of this test's own, and a uv cache of its own, so that what uv keeps between runs shows.

    Its pages say they keep for ten minutes, as PyPI's own do: uv would trust them that long.
    """
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    with serve_index(build_index(tmp_path / "index", DISTS)) as url:
        url.page_cache_control = "max-age=600, public"
        yield url


def test_wheels_come_first_and_only_a_project_without_any_is_built(own_index, tmp_path):
    found = pins(own_index, tmp_path, "win313", "app", "compiled")
    assert found["sdistonly"] == "sdistonly-1.0.tar.gz"  # no release of it has a wheel: built later
    assert found["compiled"] == "compiled-1.0-cp313-cp313-win_amd64.whl"
    # uv never fetched an sdist of a project that has wheels, not even to read its metadata.
    assert [p for p in own_index.paths() if p.endswith(".tar.gz")] == ["/files/sdistonly-1.0.tar.gz"]


def test_every_run_reads_the_pages_again_whatever_uv_kept(own_index, tmp_path):
    assert pins(own_index, tmp_path, "win313", "lib<3")["lib"] == "lib-2.0-py3-none-any.whl"
    add_release(own_index.root, Dist("lib", "2.9"))
    # The page said it keeps for ten minutes; a new run still sees the new release at once.
    assert pins(own_index, tmp_path, "win313", "lib<3")["lib"] == "lib-2.9-py3-none-any.whl"


def test_a_runs_later_tries_read_no_page_its_earlier_ones_read(tmp_path):
    """Pages that say nothing of caching (as through the proxy here) are read once a run, not once a try."""
    with serve_index(build_index(tmp_path / "index", DISTS)) as url:
        url.page_cache_control = None
        inventory = load_inventory(make_project(tmp_path, url, "app\n") / "inventory.yaml")
        platform = target_platform(inventory.targets["win313"])
        tries = Tries()
        resolve_set(ResolutionSet("t", ("app",)), platform, url, tries=tries)
        assert tries.names() == {"sdistonly"}  # two tries: the first failed on sdistonly
        assert url.counts["/simple/app/"] == 1
        resolve_set(ResolutionSet("t", ("app",)), platform, url)  # another run: read again
        assert url.counts["/simple/app/"] == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/dev/shm is Linux's")
def test_the_runs_uv_cache_is_in_memory_only_where_there_is_room_and_goes_with_the_run(monkeypatch):
    tries = Tries()
    cache = Path(tries.cache_dir)
    assert cache.parent == Path("/dev/shm") and cache.is_dir()
    tries.settle()
    assert not cache.exists()
    monkeypatch.setattr(resolve, "RUN_CACHE_ROOM", shutil.disk_usage("/dev/shm").free + (1 << 30))
    tries = Tries()
    assert Path(tries.cache_dir).parent == Path(tempfile.gettempdir())
    tries.settle()


def test_the_default_index_is_read_again_too(own_index, tmp_path, monkeypatch):
    # An inventory without index_url: a new run must still read the pages of the default index again.
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


def test_a_project_known_to_have_no_wheels_is_taken_as_its_sdist_at_once(own_index, tmp_path, monkeypatch):
    inventory = load_inventory(make_project(tmp_path, own_index, "app\n") / "inventory.yaml")
    platform = target_platform(inventory.targets["win313"])
    runs: list[tuple[str, ...]] = []
    real_round = resolve._uv_round

    def counted(resolution, platform, index_url, extra, *args, **kwargs):
        runs.append(extra)
        return real_round(resolution, platform, index_url, extra, *args, **kwargs)

    monkeypatch.setattr(resolve, "_uv_round", counted)
    learnt = Tries()
    resolve_set(ResolutionSet("t", ("app",)), platform, own_index, tries=learnt)
    assert learnt.names() == {"sdistonly"}  # found out during a wheels-only try, then a second
    assert len(runs) == 2 and "sdistonly" not in runs[0] and "sdistonly" in runs[1]
    runs.clear()
    resolve_set(ResolutionSet("t", ("app",)), platform, own_index, tries=learnt)
    assert len(runs) == 1 and "sdistonly" in runs[0]  # another set of the run, told, resolves in one try


def resolve_app_watching_prebuilds(
    tmp_path, dists: list[Dist], known: set[str] = frozenset()
) -> tuple[dict[str, str], list[str], Tries]:
    """`app` resolved for win313 from an index of these dists: its pins, the prebuilds asked for, the run's Tries.

    `known` are the projects the run knows from the start to publish no wheel, as from an earlier run's locks.
    """
    asked: list[str] = []
    with serve_index(build_index(tmp_path / "index", dists)) as url:
        inventory = load_inventory(make_project(tmp_path, url, "app\n") / "inventory.yaml")
        platform = target_platform(inventory.targets["win313"])
        tries = Tries(known, prebuild=lambda pin, declared: asked.append(pin.name))
        found = {pin.name: pin.version for pin in resolve_set(ResolutionSet("t", ("app",)), platform, url, tries=tries)}
        tries.settle()
    return found, asked, tries


def test_a_wheel_less_project_the_resolver_meets_is_taken_as_its_sdist_whether_or_not_the_run_knew_it(
    tmp_path, monkeypatch
):
    """What a set pins does not hang on whether the run had found out before that a project publishes no wheel.

    The wheels-only try meets sdistonly through app 2.0, and could succeed by backtracking to app 1.0. A run
    that knows sdistonly from the start (from an earlier run's locks, or another set's try) takes it as its
    sdist and pins app 2.0. So does the run that meets it: its try goes again, taking sdistonly from source,
    and the prebuild (started when the resolver named it, long before the try ended) builds it.
    """
    dists = [
        Dist("app", "1.0"),
        Dist("app", "2.0", requires=["sdistonly"]),
        Dist("sdistonly", "1.0", sdist=True, wheel=False),
        Dist("lib", "1.0"),
    ]
    known, _, _ = resolve_app_watching_prebuilds(tmp_path / "known", dists, {"sdistonly"})
    found, asked, tries = resolve_app_watching_prebuilds(tmp_path / "met", dists)
    assert found == known == {"app": "2.0", "sdistonly": "1.0"}
    assert asked == ["sdistonly"]
    assert tries.names() == {"sdistonly"}  # the run's other sets take it as an sdist in their first try

    # The page read only once the try has ended (a slow index): the try's pins are still not taken.
    first_try_over = threading.Event()
    real_round, real_newest_sdist = resolve._uv_round, resolve.newest_sdist

    def round_then_tell(*args, **kwargs):
        try:
            return real_round(*args, **kwargs)
        finally:
            first_try_over.set()

    def newest_sdist_late(index_url, name):
        assert first_try_over.wait(60)
        return real_newest_sdist(index_url, name)

    monkeypatch.setattr(resolve, "_uv_round", round_then_tell)
    monkeypatch.setattr(resolve, "newest_sdist", newest_sdist_late)
    late, _, _ = resolve_app_watching_prebuilds(tmp_path / "late", dists)
    assert late == known


def test_a_try_stops_the_moment_a_project_it_met_turns_out_to_publish_no_wheel(tmp_path):
    """Tries.suspect reads the page once a run and tells each try that met the project; one with wheels tells none."""
    dists = [Dist("sdistonly", "1.0", sdist=True, wheel=False), Dist("lib", "1.0")]
    with serve_index(build_index(tmp_path / "index", dists)) as url:
        tries = Tries()
        first, second, neither = threading.Event(), threading.Event(), threading.Event()
        tries.suspect("sdistonly", url, first)
        tries.suspect("lib", url, neither)
        assert first.wait(30)
        tries.suspect("sdistonly", url, second)  # a try meeting it later hears at once
        assert second.is_set()
        assert tries.wheel_less({"sdistonly", "lib"}) == {"sdistonly"}
        assert not neither.is_set()
        assert url.counts["/simple/sdistonly/"] == 1
        tries.settle()


def resolve_app_on_the_sdists_word(
    own_index, tmp_path, monkeypatch, declared: BuiltMetadata
) -> tuple[dict[str, str], list[str | None], bool]:
    """`app` resolved for win313 while sdistonly's prebuild says `declared` of its sdist and builds only once a
    try has started on that word (or after 30 s): the pins, each try's uv.toml, and whether a try started on
    the sdist's word before the build was done."""
    built = BuiltMetadata("sdistonly", "1.0", ("lib<2",), None, ())  # what its wheel says
    configs: list[str | None] = []
    on_the_word = threading.Event()
    real_round = resolve._uv_round

    def round_noting_its_config(resolution, platform, index_url, extra, tries, config=None, **kwargs):
        configs.append(config)
        if config and "sdistonly" in config:
            on_the_word.set()
        return real_round(resolution, platform, index_url, extra, tries, config, **kwargs)

    before_the_build: list[bool] = []

    def prebuild(pin, tell):
        tell(declared)
        before_the_build.append(on_the_word.wait(30))  # a try that waited for this build would wait in vain
        return built

    monkeypatch.setattr(resolve, "_uv_round", round_noting_its_config)
    inventory = load_inventory(make_project(tmp_path, own_index, "app\n") / "inventory.yaml")
    platform = target_platform(inventory.targets["win313"])
    tries = Tries(prebuild=prebuild)
    found = {p.name: p.version for p in resolve_set(ResolutionSet("t", ("app",)), platform, own_index, tries=tries)}
    tries.settle()
    return found, configs, before_the_build == [True]


def test_a_try_goes_on_what_the_sdist_declares_while_its_wheel_is_built(own_index, tmp_path, monkeypatch):
    """The sdist's own word, in as soon as the sdist is (pyramid-chameleon's: its egg-info), spares the try the
    wait for the build; what the built wheel says confirms it, and the pins stand."""
    declared = BuiltMetadata("sdistonly", "1.0", ("lib < 2",), None, ())  # as the wheel says, written otherwise
    found, configs, started_on_it = resolve_app_on_the_sdists_word(own_index, tmp_path, monkeypatch, declared)
    assert started_on_it
    assert found["lib"] == "1.0" and found["sdistonly"] == "1.0"
    assert len(configs) == 2  # the first try, stopped on meeting sdistonly; the second, on its sdist's word


def test_a_try_on_an_sdists_word_that_its_wheel_contradicts_goes_again_on_the_wheels(own_index, tmp_path, monkeypatch):
    declared = BuiltMetadata("sdistonly", "1.0", (), None, ())  # the sdist says it needs nothing; its wheel: lib<2
    found, configs, started_on_it = resolve_app_on_the_sdists_word(own_index, tmp_path, monkeypatch, declared)
    assert started_on_it and len(configs) == 3
    assert "requires-dist = []" in configs[1] and 'requires-dist = ["lib<2"]' in configs[2]
    assert found["lib"] == "1.0"  # on the sdist's word alone, no lib at all


def test_a_release_that_needs_a_newer_python_starts_no_prebuild(tmp_path):
    """uv records such a release as a conflict of "Python", its name for the interpreter: no project to build."""
    found, asked, _ = resolve_app_watching_prebuilds(
        tmp_path, [Dist("app", "1.0"), Dist("app", "2.0", requires_python=">=3.99")]
    )
    assert found == {"app": "1.0"}
    assert asked == []


def test_the_resolver_tells_what_it_selects_before_the_try_is_over(index, tmp_path):
    """Each pinned wheel was heard as selected while uv ran, so its download could start then."""
    inventory = load_inventory(make_project(tmp_path, index, "app\n") / "inventory.yaml")
    platform = target_platform(inventory.targets["win313"])
    heard: list[tuple[str, str, str]] = []
    found = resolve_set(
        ResolutionSet("t", ("app",)), platform, index, on_selected=lambda *selected: heard.append(selected)
    )
    wheels = {(pin.name, pin.version, pin.file.filename) for pin in found if pin.file.is_wheel}
    assert len(wheels) > 3 and wheels <= set(heard)


def test_the_metadata_of_a_wheel_built_before_spares_uv_the_sdist(own_index, tmp_path):
    """uv takes what an earlier build said of the sdist's needs instead of fetching and building the sdist again."""
    inventory = load_inventory(make_project(tmp_path, own_index, "sdistonly\n") / "inventory.yaml")
    platform = target_platform(inventory.targets["win313"])
    built = BuiltMetadata("sdistonly", "1.0", ("lib<2",), None, ())
    learnt = Tries({"sdistonly"}, [built])
    found = {
        p.name: p.file.filename
        for p in resolve_set(ResolutionSet("t", ("sdistonly",)), platform, own_index, tries=learnt)
    }
    # the sdist itself needs nothing: lib comes from the built metadata alone, and the sdist was never fetched
    assert found == {"sdistonly": "sdistonly-1.0.tar.gz", "lib": "lib-1.0-py3-none-any.whl"}
    assert not [p for p in own_index.paths() if p.endswith(".tar.gz")]


def test_tries_start_apart_and_none_once_the_run_stops():
    """A burst of uv starts is a burst of lookups that a resolver may drop; a try waiting to start hears Ctrl-C."""
    tries = Tries(spacing=0.2)
    starts: list[float] = []
    waiting = [threading.Thread(target=lambda: (tries.wait_turn(), starts.append(time.monotonic()))) for _ in range(3)]
    for thread in waiting:
        thread.start()
    for thread in waiting:
        thread.join()
    starts.sort()
    assert all(later - earlier >= 0.19 for earlier, later in zip(starts, starts[1:], strict=False))

    tries = Tries(spacing=600)
    tries.wait_turn()  # the first starts at once
    stopped: list[BaseException] = []

    def next_try():
        try:
            tries.wait_turn()
        except KeyboardInterrupt as exc:
            stopped.append(exc)

    thread = threading.Thread(target=next_try)
    thread.start()
    tries.stop()
    thread.join(timeout=30)
    assert not thread.is_alive() and len(stopped) == 1
    with pytest.raises(KeyboardInterrupt):
        tries.wait_turn()


def test_the_native_targets_tries_take_the_next_turn_before_others_waiting():
    """Its verify, the longest step, waits for all of its sets: its tries go first, still spaced apart."""
    tries = Tries(spacing=1.0)
    tries.wait_turn()  # the spacing now runs: every try below has to wait (and all three are queued well within it)
    order: list[str] = []

    def start(label: str, first: bool) -> threading.Thread:
        thread = threading.Thread(target=lambda: (tries.wait_turn(first=first), order.append(label)))
        thread.start()
        return thread

    others = [start(f"other {n}", False) for n in (1, 2)]
    deadline = time.monotonic() + 30
    while len(tries._waiting) < 2 and time.monotonic() < deadline:  # both queued before the native one
        time.sleep(0.01)
    native = start("native", True)
    for thread in (*others, native):
        thread.join(timeout=30)
    assert order == ["native", "other 1", "other 2"]


def test_the_newest_sdist_is_read_from_a_json_page_as_from_an_html_one(index, tmp_path):
    """Yanked files and pre-releases are passed over; a relative URL is taken from the page's own.

    Only a project that publishes no wheel at all is one to build: any wheel on its page, and there is none.
    """
    html = newest_sdist(index, "sdistonly")  # the fake index serves PEP 503 HTML
    assert html is not None and (html.version, html.file.filename) == ("1.0", "sdistonly-1.0.tar.gz")
    assert html.file.url == f"{index.files_url}/sdistonly-1.0.tar.gz"

    page = {
        "meta": {"api-version": "1.1"},
        "name": "tool",
        "files": [
            {"filename": "tool-1.0.tar.gz", "url": "../../f/tool-1.0.tar.gz", "hashes": {"sha256": "a" * 64}},
            {"filename": "tool-1.1.tar.gz", "url": "../../f/tool-1.1.tar.gz", "hashes": {"sha256": "b" * 64},
             "size": 7},
            {"filename": "tool-1.2.tar.gz", "url": "x", "hashes": {"sha256": "c" * 64}, "yanked": "broken"},
            {"filename": "tool-2.0rc1.tar.gz", "url": "y", "hashes": {"sha256": "d" * 64}},
        ],
    }  # fmt: skip
    with_a_wheel = dict(page, files=[*page["files"], {"filename": "tool-3.0-py3-none-any.whl", "url": "z",
                                                      "hashes": {"sha256": "e" * 64}}])  # fmt: skip
    bodies = {"/simple/tool/": json.dumps(page).encode(), "/simple/wheeled/": json.dumps(with_a_wheel).encode()}

    def json_page(handler, seen):
        send(handler, 200, bodies[handler.path], Content_Type="application/vnd.pypi.simple.v1+json")

    with serving(json_page) as (host, _):
        found = newest_sdist(f"http://{host}/simple", "tool")
        assert newest_sdist(f"http://{host}/simple", "wheeled") is None
    assert found is not None
    assert (found.name, found.version, found.file.sha256, found.file.size) == ("tool", "1.1", "b" * 64, 7)
    assert found.file.url == f"http://{host}/f/tool-1.1.tar.gz"
    assert newest_sdist(index, "lib") is None  # an HTML page with wheels: the same


def test_an_html_page_is_read_as_its_links_say_whatever_their_quoting():
    """One reader for both uses of an HTML page: its files' names (freshness) and links (newest_sdist)."""
    body = (
        "<html><body>\n"
        "<a href='../../f/tool-1.0.tar.gz#sha256=" + "a" * 64 + "'>tool-1.0.tar.gz</a><br/>\n"
        '<a data-requires-python="&gt;=3.8" href="../../f/tool-1.1.tar.gz?a=1&amp;b=2#sha256=' + "b" * 64 + '">'
        "tool-1.1.tar.gz</a>\n"
        "<a href=../../f/tool-1.2.tar.gz#sha256=" + "c" * 64 + ' data-yanked="">tool-1.2.tar.gz</a>\n'
        '<a href="../../f/tool-1.3.tar.gz">tool-1.3.tar.gz</a>\n'  # no sha256: not a file to pin
        "</body></html>"
    ).encode()
    assert resolve.page_filenames("text/html", body) == [
        "tool-1.0.tar.gz", "tool-1.1.tar.gz", "tool-1.2.tar.gz (yanked)", "tool-1.3.tar.gz"
    ]  # fmt: skip

    def html_page(handler, seen):
        send(handler, 200, body, Content_Type="text/html")

    with serving(html_page) as (host, _):
        found = newest_sdist(f"http://{host}/simple", "tool")
    assert found is not None and (found.version, found.file.sha256) == ("1.1", "b" * 64)
    assert found.file.url == f"http://{host}/f/tool-1.1.tar.gz?a=1&b=2"


def test_a_json_page_names_its_files_and_their_yanks():
    """Each entry's nested objects (hashes, core-metadata) are read past; a yank is kept with its file."""
    page = {
        "meta": {"api-version": "1.1", "_last-serial": 7},
        "name": "lib",
        "files": [
            {"filename": "lib-1.0.tar.gz", "hashes": {"sha256": "a" * 64}, "core-metadata": {"sha256": "b" * 64},
             "yanked": False},
            {"filename": "lib-1.1-py3-none-any.whl", "hashes": {}, "core-metadata": False, "yanked": "broken"},
            {"filename": "lib-1.2-py3-none-any.whl", "hashes": {"sha256": "c" * 64}, "yanked": True},
        ],
        "versions": ["1.0", "1.1", "1.2"],
    }  # fmt: skip
    found = resolve.page_filenames("application/vnd.pypi.simple.v1+json", json.dumps(page).encode())
    assert found == ["lib-1.0.tar.gz", "lib-1.1-py3-none-any.whl (yanked)", "lib-1.2-py3-none-any.whl (yanked)"]
