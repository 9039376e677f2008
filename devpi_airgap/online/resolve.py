"""Resolve a target's requirements for the target's markers and tags, never the host's.

uv does the resolving (`uv pip compile --python-platform --python-version`),
and writes a PEP 751 lock listing, per package, only the files compatible with
the target. From it we pick one file per package: the best wheel for the
target's tags, or else the sdist, which the caller builds into a pure wheel.
"""

from __future__ import annotations

import heapq
import html
import itertools
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urljoin, urlsplit

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from devpi_airgap.core.errors import FetchError, ResolutionError
from devpi_airgap.core.files import raise_if_disk_full, scratch_prefix, tmpfs_with_room
from devpi_airgap.core.inventory import Target
from devpi_airgap.core.metadata import DeclaredNeeds
from devpi_airgap.core.platforms import TargetPlatform
from devpi_airgap.core.requirements import ResolutionSet, uv_compile
from devpi_airgap.online.http_get import UNTRUSTED_CA, Answer, Session, TransferError
from devpi_airgap.online.netrc_logins import where_credentials_go

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Project pages are asked for as PEP 691 JSON, else the PEP 503 HTML every index serves.
PAGE_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"

# A project that publishes binary wheels anywhere has a compiled sdist; it is never built here.
MAX_ROUNDS = 4

T = TypeVar("T")


@dataclass(frozen=True)
class FileRef:
    filename: str
    url: str
    sha256: str
    size: int | None

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    file: FileRef  # a wheel, or an sdist to build into a pure wheel


def _filename(entry: dict) -> str:
    return entry.get("name") or unquote(urlsplit(entry["url"]).path.rsplit("/", 1)[-1])


def _file_ref(entry: dict) -> FileRef:
    sha256 = (entry.get("hashes") or {}).get("sha256")
    if not sha256:
        raise ResolutionError(f"the index gave no sha256 for {entry.get('url')}; use an index that publishes hashes")
    return FileRef(filename=_filename(entry), url=entry["url"], sha256=sha256, size=entry.get("size"))


def choose_file(package: dict, platform: TargetPlatform) -> FileRef | None:
    """The best wheel for the target's tags, else the sdist, else None."""
    priority = platform.tag_ranks
    best: tuple[int, FileRef] | None = None
    for entry in package.get("wheels", []):
        ref = _file_ref(entry)
        _, _, _, wheel_tags = parse_wheel_filename(ref.filename)
        ranks = [priority[tag] for tag in wheel_tags if tag in priority]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), ref)
    if best:
        return best[1]
    if package.get("sdist"):
        return _file_ref(package["sdist"])
    return None


def _uv_failure(what: str, target: Target, resolution: ResolutionSet, result: subprocess.CompletedProcess) -> str:
    """uv's explanation, indented under ours, so the user reads one message rather than two errors."""
    return f"{what} for target {target.name!r} ({resolution.label}) failed:\n" + _uv_says(result)


def _uv_says(result: subprocess.CompletedProcess) -> str:
    lines = []
    for line in result.stderr.strip().splitlines():
        line = re.sub(r"^\s*(error|warning): ", "", line.rstrip())
        # uv resolves with this machine's interpreter for the target's version; that is by design, not news.
        if line.strip() and "will be used to build dependencies instead" not in line:
            lines.append(f"  {line}")
    return "\n".join(lines)


_DISTRIBUTION_LINK = re.compile(r"""href=["'][^"']*\.(whl|tar\.gz|zip)(#|["'])""", re.IGNORECASE)


def index_problem(index_url: str | None, resolution: ResolutionSet) -> str | None:
    """Why the index, not the requirements, made a resolution fail; None when it answers like a package index.

    Asked only after uv failed: one page of the first project the set names tells an unreachable index,
    or a proxy's login page, from a requirement the index truly cannot satisfy.
    """
    base = (index_url or default_index_url()).rstrip("/")
    names = [Requirement(line).name for line in resolution.lines]
    if not names:
        return None
    name = canonicalize_name(names[0])
    url = f"{base}/{name}/"
    try:
        page = _read_page(url)
    except TransferError as exc:
        return f"the index {base} cannot be reached ({exc or 'no answer'})"
    if page.status == 404:  # a real index saying it has no such project: the requirement's problem, unless
        simple = _simple_api_below(base, name)  # index_url names the site whose simple API lies one step down
        if simple is None:
            return None
        return (
            f"index_url {base} is a site, not its package index: it has no page {url}, but {simple}/{name}/ is "
            f"that project's page in a package index; set index_url to {simple}"
        )
    kind = page.content_type.split(";")[0] or "?"
    if page.status in (401, 403):
        return f"the index {base} answered {url} with HTTP {page.status}: it wants credentials; {where_credentials_go(urlsplit(base).hostname)}"
    if page.status != 200:
        return f"the index {base} answered {url} with HTTP {page.status} ({kind})"
    if _is_project_page(page):
        return None
    text = page.body.decode("utf-8", "replace")
    title = re.search(r"<title>\s*([^<]{1,80})", text, re.IGNORECASE)
    shown = title.group(1).strip() if title else " ".join(text.split())[:80]
    return f"the index {base} answered {url} with something that is not a package index ({kind}: {shown!r}); a proxy's login page, perhaps"


def _is_project_page(page: Answer) -> bool:
    """Whether a 200 answer is a simple-index project page, PEP 691 JSON or PEP 503 HTML."""
    if "json" in page.content_type:
        try:
            return isinstance(json.loads(page.body).get("files"), list)
        except (ValueError, AttributeError):
            return False
    text = page.body.decode("utf-8", "replace")
    return "pypi:repository-version" in text or bool(_DISTRIBUTION_LINK.search(text))


# Where a site keeps its simple API: pypi.org/simple, and a devpi index's +simple (http://host:3141/user/index).
_SIMPLE_API_PATHS = ("simple", "+simple")


def _simple_api_below(base: str, name: str) -> str | None:
    """The simple API one step below `base` that has a page for project `name`; None if there is none."""
    if base.rsplit("/", 1)[-1] in _SIMPLE_API_PATHS:
        return None
    for below in _SIMPLE_API_PATHS:
        try:
            page = _read_page(f"{base}/{below}/{name}/")
        except TransferError:
            continue
        if page.status == 200 and _is_project_page(page):
            return f"{base}/{below}"
    return None


def default_index_url() -> str:
    # The public index pip would use; asked of pip so that the URL lives in one place.
    from pip._internal.models.index import PyPI

    return PyPI.simple_url


def page_filenames(content_type: str, body: bytes) -> list[str]:
    """File names on a simple-index project page, PEP 691 JSON or PEP 503 HTML."""
    return _listing(content_type, body)[0]


def _listing(content_type: str, body: bytes, page_url: str = "", prefix: str = "") -> tuple[list[str], list[FileRef]]:
    """page_filenames' names and, with a prefix, the files whose names start with it (those with a sha256)."""
    kept: list[FileRef | None] = []
    if "json" in content_type:

        def named(entry: dict) -> object:
            if prefix and isinstance(entry.get("filename"), str) and entry["filename"].startswith(prefix):
                kept.append(_json_ref(page_url, entry))
            return _file_name_of(entry)

        # Each file's entry becomes its name as it is read: built whole, the pages' objects raised the peak of
        # a cold run of 200 projects from 140 to 164 MB, and the interpreter keeps what it once held.
        listing = [f for f in json.loads(body, object_hook=named).get("files", []) if isinstance(f, str)]
    else:
        listing = []
        for name, link, yanked in _html_files(body):
            # A yank must change the fingerprint as it does on a JSON page; an HTML page says it in data-yanked.
            listing.append(name + (" (yanked)" if yanked else ""))
            if prefix and name.startswith(prefix):
                kept.append(_html_ref(page_url, name, link))
    return listing, [ref for ref in kept if ref is not None]


# Read with regular expressions, not html.parser: the same names, 7 times as fast (numpy's 1.5 MB page:
# 8 ms against 59 ms), and a cold run reads every page of an index that serves only HTML.
_HTML_FILE_LINK = re.compile(r"(?:<a\b([^>]*))?>\s*([^<>]+?\.(?:whl|tar\.gz|zip))\s*</a>")
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)


def _html_files(body: bytes) -> Iterator[tuple[str, str, bool]]:
    """(file name, link, yanked) of each file a PEP 503 page links to; the link is "" where it has none."""
    for attributes, name in _HTML_FILE_LINK.findall(body.decode("utf-8", "replace")):
        href = _HREF.search(attributes)
        link = html.unescape(next(part for part in href.groups() if part is not None)) if href else ""
        yield name, link, "data-yanked" in attributes


def _file_name_of(entry: dict) -> object:
    """A PEP 691 file entry as page_filenames names it; any other object as it is."""
    if isinstance(entry.get("filename"), str):
        return entry["filename"] + (" (yanked)" if entry.get("yanked") else "")
    return entry


def _read_page(url: str) -> Answer:
    """One page, whatever its status, over a connection of its own; raises TransferError."""
    session = Session()
    try:
        return session.read(url, {"Accept": PAGE_ACCEPT})
    finally:
        session.close()


def _project_page(index_url: str | None, name: str) -> Answer | None:
    """The project's page, or None when the index does not answer it."""
    try:
        page = _read_page(f"{(index_url or default_index_url()).rstrip('/')}/{name}/")
    except TransferError:
        return None
    return page if page.status == 200 else None


def index_listing(index_url: str | None, name: str) -> list[str]:
    """File names the index offers for a project, for error messages; empty if it cannot say."""
    page = _project_page(index_url, name)
    return page_filenames(page.content_type, page.body) if page is not None else []


def _page_files(page: Answer) -> Iterable[tuple[FileRef, bool]]:
    """Each file of a project page with whether it is yanked; a file the page gives no sha256 for is left out."""
    if "json" in page.content_type:
        for entry in json.loads(page.body).get("files", []):
            if ref := _json_ref(page.url, entry):
                yield ref, bool(entry.get("yanked"))
        return
    for filename, link, yanked in _html_files(page.body):
        if ref := _html_ref(page.url, filename, link):
            yield ref, yanked


def _json_ref(page_url: str, entry: dict) -> FileRef | None:
    sha256 = (entry.get("hashes") or {}).get("sha256")
    return FileRef(entry["filename"], urljoin(page_url, entry["url"]), sha256, entry.get("size")) if sha256 else None


def _html_ref(page_url: str, filename: str, link: str) -> FileRef | None:
    href, _, fragment = link.partition("#")
    algorithm, _, digest = fragment.partition("=")
    return (
        FileRef(filename, urljoin(page_url, href), digest, None) if href and algorithm == "sha256" and digest else None
    )


def listing_and_release(page: Answer, prefix: str) -> tuple[list[str], dict[str, FileRef]]:
    """page_filenames of the page, and the files of one release on it, from one reading.

    The release is the files whose names start with `prefix` ("numpy-2.3.5-", its wheels for every
    platform); a file the page gives no sha256 for is left out.
    """
    listing, release = _listing(page.content_type, page.body, page.url, prefix)
    return listing, {ref.filename: ref for ref in release}


def newest_sdist(index_url: str | None, name: str) -> Pin | None:
    """The sdist of the newest release that has one, as a guess of what a try will pin; None if the page cannot say.

    Only a project that publishes no wheel at all is built from its sdist (see _from_wheels): for one that
    publishes any, this is None too. Yanked files and pre-releases are passed over, as uv passes over them
    unless asked for.
    """
    page = _project_page(index_url, name)
    if page is None:
        return None
    newest: tuple[Version, FileRef] | None = None
    for ref, yanked in _page_files(page):
        if ref.is_wheel:
            return None
        try:
            _, release = parse_sdist_filename(ref.filename)
        except InvalidSdistFilename:
            continue
        if not yanked and not release.is_prerelease and (newest is None or release > newest[0]):
            newest = (release, ref)
    return Pin(canonicalize_name(name), str(newest[0]), newest[1]) if newest else None


def _has_binary_wheels(listing: list[str]) -> bool:
    return any(not f.endswith(("-none-any.whl",)) for f in listing if f.endswith(".whl"))


def resolve_set(
    resolution: ResolutionSet,
    platform: TargetPlatform,
    index_url: str | None,
    on_round: Callable[[list[Pin], bool], None] = lambda pins, final: None,
    tries: Tries | None = None,
    *,
    before_first_try: Callable[[], None] = lambda: None,
    after_first_try: Callable[[], None] = lambda: None,
    on_selected: Callable[[str, str, str], None] = lambda name, version, filename: None,
) -> list[Pin]:
    """Pins for one set; a compiled project never resolves to its sdist.

    uv happily picks the newest release even when only its sdist fits the
    target (its wheels being for other platforms). Such an sdist would build a
    wheel for this machine, not the target, so the project is re-resolved with
    --only-binary until uv settles on a release with a fitting wheel.

    Wheels come first (see _from_wheels); these rounds run only for a set
    that wheels alone cannot resolve. `tries` is shared by the sets of a run
    (see Tries): among other things, the projects known to publish no wheel at
    all, which a set may then take as sdists in its first try, and which a set
    adds to when it finds one.
    before_first_try and after_first_try frame the first wheels-only try, so a
    caller can make other sets wait for what one set's first try finds out.

    on_round(pins, final) hears each round's pins as soon as uv gives them,
    less the sdists about to be resolved again: the next round mostly keeps
    the rest, so the caller may start fetching them while it resolves.
    on_selected(name, version, filename) hears, sooner still, what uv's
    resolver selects as it goes: a guess, which backtracking may undo.
    """
    tries = tries or Tries()

    def selected(line: str) -> None:
        if found := _SELECTED.match(line):
            on_selected(canonicalize_name(found[1]), found[2], found[3])

    wheels = _from_wheels(resolution, platform, index_url, tries, before_first_try, after_first_try, selected)
    if wheels is not None:
        on_round(wheels, True)
        return wheels
    no_build: set[str] = set()
    for _ in range(MAX_ROUNDS):
        pins = _resolve_once(resolution, platform, index_url, no_build, tries, selected)
        compiled = {
            pin.name
            for pin in pins
            if not pin.file.is_wheel
            and pin.name not in no_build
            and _has_binary_wheels(index_listing(index_url, pin.name))
        }
        on_round([pin for pin in pins if pin.name not in compiled], not compiled)
        if not compiled:
            return pins
        no_build |= compiled
    raise ResolutionError(
        f"target {platform.target.name!r} ({resolution.label}): resolution did not settle "
        f"after {MAX_ROUNDS} rounds excluding sdists of {', '.join(sorted(no_build))}"
    )


_WHEELS_REQUIRED = re.compile(r"Wheels are required for `([^`]+)`")
# uv's log line for a project none of whose versions fit where the resolver stands: a wheels-only try says it
# of a project with no wheel the moment it reads the project's page. The log only names projects to look at
# (Tries.suspect): whether one comes from source is read from its page, and what a try pins from its result.
# "Python" is uv's name for the interpreter, which a release's Requires-Python conflicts with: no project
# (uv writes a project's name normalized, so never capitalized).
_CONFLICT = re.compile(r"^DEBUG Recording unit propagation conflict of (?!Python )(\S+) ")
# And its line for each release it settles on as it goes, with the file it would take: a guess, which it may
# take back while it backtracks. An extra (`name[extra]`) is no project of its own and is passed over.
_SELECTED = re.compile(r"^DEBUG Selecting: ([A-Za-z0-9._-]+)==(\S+) \[[^\]]*\] \(([^()\s]+)\)$")


@dataclass(frozen=True)
class BuiltMetadata:
    """What the wheel an earlier run built from a project's sdist says it needs, for uv to read instead of a build.

    A try that takes a project as its sdist builds the sdist just to read its
    metadata, in each run again (each has a uv cache of its own): for
    pyramid-chameleon about 1.2 s and 1.3 CPU-s. The wheel built from that very
    sdist (its sha256 is in the lock) says the same; uv uses it for this
    version only.
    """

    name: str
    version: str
    requires_dist: tuple[str, ...]
    requires_python: str | None
    provides_extras: tuple[str, ...]

    @classmethod
    def of(cls, name: str, version: str, needs: DeclaredNeeds) -> BuiltMetadata:
        return cls(name, version, needs.requires_dist, needs.requires_python, needs.provides_extras)

    def needs(self) -> tuple[frozenset[str], str | None, frozenset[str]]:
        """What it says the project needs, in a form in which two sayings of the same compare equal."""
        try:
            requires = frozenset(str(Requirement(r)) for r in self.requires_dist)
            python = str(SpecifierSet(self.requires_python)) if self.requires_python else None
        except (InvalidRequirement, InvalidSpecifier):
            requires, python = frozenset(self.requires_dist), self.requires_python  # compared as written
        return requires, python, frozenset(canonicalize_name(extra) for extra in self.provides_extras)

    def uv_toml(self) -> str:
        # TOML basic strings take JSON's escapes, so json.dumps quotes them safely.
        lines = [
            "[[dependency-metadata]]",
            f"name = {json.dumps(self.name)}",
            f"version = {json.dumps(self.version)}",
            f"requires-dist = {json.dumps(list(self.requires_dist))}",
            f"provides-extras = {json.dumps(list(self.provides_extras))}",
        ]
        if self.requires_python:
            lines.append(f"requires-python = {json.dumps(self.requires_python)}")
        return "\n".join(lines) + "\n"


# uv looks the index's host up again for every connection it opens, 18 times in one of the sample's tries. Tries
# that start together send a burst of lookups, and a resolver that drops part of a burst (this machine's drops
# beyond about twenty) stalls each dropped lookup 5 s. So the tries of a run start this far apart: of big tries
# started three at once, 8 of 9 stalled 5 s; of 9 started 0.3 s apart, none.
TRY_SPACING = 0.3
RUN_CACHE_ROOM = 2 << 30  # free tmpfs the run's uv cache asks for: thirty times what the scale run's held


class Tries:
    """What the uv tries of one run share, each try in its own thread.

    - When each try may start: TRY_SPACING apart, the tries of the target
      this machine runs before any other waiting, and none once the run is
      stopping (a uv started after Ctrl-C would not hear it).
    - The projects known to publish no wheel at all, which a try may take as
      sdists at once, and the metadata of wheels built from their sdists.
    - What each project a try's resolver could not fit turned out to be
      (`suspect`): its page is read once a run, in a thread of its own, as
      soon as a resolver names it in a conflict. A project that publishes no
      wheel joins those taken as sdists then, and is built from its newest
      sdist by `prebuild(pin, declared)`, so that tries read the wheel's
      metadata instead of each building the sdist itself. The prebuild passes
      on what the sdist itself declares it needs (`declared`), as soon as the
      sdist is in: tries go on that word while the build runs, and the built
      wheel's word is checked against it (see uv_config and confirmed).
    """

    def __init__(
        self,
        names: Iterable[str] = (),
        built: Iterable[BuiltMetadata] = (),
        *,
        prebuild: Callable[[Pin, Callable[[BuiltMetadata | None], None]], BuiltMetadata | None] = (
            lambda pin, declared: None
        ),
        spacing: float = TRY_SPACING,
    ):
        self._names = set(names)
        self._built = tuple(built)
        self._prebuild = prebuild
        self._wheel_less: dict[str, Future[bool]] = {}  # per suspect: whether it publishes no wheel at all
        self._declared: dict[str, Future[BuiltMetadata | None]] = {}  # what its sdist says it needs
        self._building: dict[str, Future[BuiltMetadata | None]] = {}  # what the wheel built from it says
        self._spacing = spacing
        self._next_start = 0.0
        self._waiting: list[tuple[bool, int]] = []  # a heap: the tries waiting for their turn, the next first
        self._tickets = itertools.count()
        # The run's own uv cache. A resolution must see the pages as they are now, even from an index whose
        # pages say they keep (PyPI's say ten minutes), so no run may read what another kept. uv's --refresh
        # did that, but made each try of a run read again what the run's other tries had just read, every
        # file's metadata too (uv 0.13.9: all 129 of the sample's, each try). A cache the run starts empty
        # keeps pages for its own tries only. It is about a thousand small files, made and removed in each run: on
        # tmpfs, where there is room to spare (the 200-project scale run's held 66 MB).
        where = tmpfs_with_room(RUN_CACHE_ROOM)
        self._cache = tempfile.TemporaryDirectory(
            prefix=scratch_prefix(where, "airgap-uv-cache-"), dir=where, ignore_cleanup_errors=True
        )
        self.cache_dir = self._cache.name
        self._turns = threading.Condition()
        self.stopping = threading.Event()
        self._running: set[threading.Event] = set()  # what ends each uv running now (see running)
        self._lock = threading.Lock()

    def stop(self) -> None:
        """No try starts from now on, every uv running is ended, and a wait for one raises KeyboardInterrupt.

        Ctrl-C reaches uv itself, as the terminal sends it to the whole job; `kill PID`, sent to the run
        alone when it does not lead its process group (started from a script), used to leave each running
        uv to end its try, up to a minute on a slow index, after the run had gone.
        """
        with self._turns:
            self.stopping.set()
            for stop in self._running:
                stop.set()
            self._turns.notify_all()

    def wait_turn(self, *, first: bool = False) -> None:
        """Wait until this try may start: the spacing after the last start, and its turn among those waiting.

        `first` tries (the target this machine runs) go before the others, then each in the order it came. The
        native target's verify is the longest step of a run and starts only once all its sets are resolved, yet
        its big set's second try came after the other targets' small sets: in a three-target run it waited
        1.1 s for its turn, and everything after it waited with it.
        """
        ticket = (not first, next(self._tickets))
        with self._turns:
            heapq.heappush(self._waiting, ticket)
            try:
                while not self.stopping.is_set():
                    delay = self._next_start - time.monotonic()
                    if self._waiting[0] == ticket and delay <= 0:
                        heapq.heappop(self._waiting)
                        self._next_start = time.monotonic() + self._spacing
                        self._turns.notify_all()  # the next in line may start counting its spacing
                        return
                    self._turns.wait(delay if self._waiting[0] == ticket else None)
                raise KeyboardInterrupt
            except BaseException:
                self._waiting.remove(ticket)
                heapq.heapify(self._waiting)
                self._turns.notify_all()
                raise

    @contextmanager
    def running(self, stop: threading.Event) -> Iterator[None]:
        """A uv runs that `stop` ends (uv_compile): set by stop() too, from now on or at once if it came first."""
        with self._turns:
            self._running.add(stop)
            if self.stopping.is_set():
                stop.set()
        try:
            yield
        finally:
            with self._turns:
                self._running.discard(stop)

    def names(self) -> set[str]:
        with self._lock:
            return set(self._names)

    def add(self, names: Iterable[str], index_url: str | None) -> None:
        """Projects a try found to publish no wheel; the prebuild of each not yet suspected starts now."""
        names = set(names)
        with self._lock:
            self._names.update(names)
        for name in names:
            self.suspect(name, index_url)

    def suspect(self, name: str, index_url: str | None, found_wheel_less: threading.Event | None = None) -> None:
        """A project a try's resolver could not fit: what it is gets found out once a run, in a thread of its own.

        The sample's first try names pyramid-chameleon 0.3 s in, then backtracks through every release of
        devpi-web for another 1.2 s before it fails on it. Read here, its page says at once that it publishes
        no wheel: the build starts then, and `found_wheel_less` is set, so the try that met it can stop and
        go again taking it as its sdist. A project that publishes wheels, merely in a version conflict, costs
        one read of its page and builds nothing.
        """
        with self._lock:
            if name not in self._wheel_less:
                self._wheel_less[name] = Future[bool]()
                self._declared[name] = Future[BuiltMetadata | None]()
                self._building[name] = Future[BuiltMetadata | None]()
                threading.Thread(target=self._find_out, args=(name, index_url), daemon=True).start()
        if found_wheel_less is not None:
            # Runs at once when the answer is in already; a failed reading is the try's to hear, not this.
            self._wheel_less[name].add_done_callback(
                lambda answer: found_wheel_less.set() if not answer.exception() and answer.result() else None
            )

    def wheel_less(self, names: set[str]) -> set[str]:
        """Those of these suspects that publish no wheel at all, once their pages are read."""
        with self._lock:
            answers = {name: self._wheel_less[name] for name in names}
        return {name for name, answer in answers.items() if self._result(answer)}

    def settle(self) -> None:
        """Stop, and wait for every prebuild started: none may hand work over once the run goes on without it.

        The run's uv cache goes with it (on Ctrl-C, when the interpreter exits).
        """
        self.stop()
        with self._lock:
            building = list(self._building.values())
        for future in building:
            future.exception()  # a stopped prebuild raised KeyboardInterrupt; nobody wants its answer
        self._cache.cleanup()

    def _find_out(self, name: str, index_url: str | None) -> None:
        with self._lock:
            wheel_less, declared, building = self._wheel_less[name], self._declared[name], self._building[name]

        def tell(needs: BuiltMetadata | None) -> None:
            if not declared.done():
                declared.set_result(needs)

        try:
            pin = newest_sdist(index_url, name)  # None too when the page cannot say: the try finds out itself
            if pin is not None:
                with self._lock:
                    self._names.add(name)  # before the tries waiting for this hear it
            wheel_less.set_result(pin is not None)
            made = self._prebuild(pin, tell) if pin is not None else None
            tell(None)  # a prebuild that said nothing of the sdist's own word
            building.set_result(made)
        except BaseException as exc:  # a stop, or a bug: every try waiting for this hears it
            for future in (wheel_less, declared, building):
                if not future.done():
                    future.set_exception(exc)

    def uv_config(self, names: set[str]) -> tuple[str | None, dict[str, BuiltMetadata]]:
        """uv settings giving the metadata of these projects, and which of it is only their sdists' word.

        A try takes the built wheel's metadata once its prebuild is done, and while it runs, what the sdist
        declares: uv builds an sdist once at a time in its cache, so tries building it themselves waited for
        each other, and the build the prebuild does besides competes for the same two cores (the sample's
        second try, building pyramid-chameleon beside the prebuild: 2.8 s; after it, given its metadata:
        1.9 s). The try then went only once the build was done, about 1.2 s after the sdist was in. A try
        that took an sdist's word is confirmed against the built wheel's before its pins count (confirmed).
        A project whose sdist says nothing sure waits for its build, as before.
        """
        with self._lock:
            pending = {name: (self._declared[name], self._building[name]) for name in names if name in self._building}
        found = {(b.name, b.version): b for b in self._built if b.name in names}
        hinted: dict[str, BuiltMetadata] = {}
        for name, (declared, building) in pending.items():
            hint = None if building.done() else self._result(declared)
            if hint is not None and not building.done():
                hinted[name] = found[(hint.name, hint.version)] = hint
            elif made := self._result(building):
                found[(made.name, made.version)] = made
        return ("\n".join(b.uv_toml() for b in found.values()) if found else None), hinted

    def confirmed(self, hinted: dict[str, BuiltMetadata]) -> bool:
        """Whether each sdist's word a try went on is what the wheel built from it says; waits for the builds.

        A build that failed confirms nothing: the try goes again without that word, and uv builds the sdist.
        """
        with self._lock:
            building = {name: self._building[name] for name in hinted}
        for name, hint in hinted.items():
            made = self._result(building[name])
            if made is None or (made.name, made.version, made.needs()) != (hint.name, hint.version, hint.needs()):
                return False
        return True

    def _result(self, future: Future[T]) -> T:
        while True:
            try:
                return future.result(timeout=0.1)
            except FutureTimeout:
                if self.stopping.is_set():
                    raise KeyboardInterrupt from None


class _Conflicts:
    """The projects one wheels-only try's resolver could not fit, each suspected (see Tries.suspect) as it is met.

    `found_wheel_less` is set once one of them turns out to publish no wheel; the resolver's other lines go on
    to on_decision.
    """

    def __init__(self, tries: Tries, index_url: str | None, from_source: set[str], on_decision: Callable[[str], None]):
        self.names: set[str] = set()
        self.found_wheel_less = threading.Event()
        self._tries = tries
        self._index_url = index_url
        self._from_source = frozenset(from_source)
        self._on_decision = on_decision

    def hear(self, line: str) -> None:
        if conflict := _CONFLICT.match(line):
            name = canonicalize_name(conflict.group(1))
            if name not in self._from_source and name not in self.names:
                self.names.add(name)
                self._tries.suspect(name, self._index_url, self.found_wheel_less)
        else:
            self._on_decision(line)


def _from_wheels(
    resolution: ResolutionSet,
    platform: TargetPlatform,
    index_url: str | None,
    tries: Tries,
    before_first_try: Callable[[], None],
    after_first_try: Callable[[], None],
    on_decision: Callable[[str], None],
) -> list[Pin] | None:
    """Pins from the index's wheels alone, but for projects that publish no wheel at all; None if they cannot resolve.

    As pip's --only-binary=:all: does, and more: a project with no wheel in any
    release (pyramid-chameleon) is taken as its sdist, and built later. Most
    sets resolve so at once, and uv never builds an old sdist just to read its
    metadata while it backtracks: aiobotocore's cost 40 s of CPU per target
    among the 200 most downloaded projects, to reach the same pins. A project
    the resolver cannot fit that turns out to publish no wheel stops the try,
    and comes from source in the next (see _Conflicts); so does one that uv,
    failing, says it wanted a wheel of and the index has none of. Anything
    else (a compiled project, a release only an sdist serves) is left to the
    rounds that allow sdists.
    """
    before_first_try()
    from_source = tries.names()
    for attempt in range(MAX_ROUNDS):
        met = _Conflicts(tries, index_url, from_source, on_decision)
        extra = ("--only-binary", ":all:", *(arg for name in sorted(from_source) for arg in ("--no-binary", name)))
        config, hinted = tries.uv_config(from_source)
        result, pins = _uv_round(
            resolution, platform, index_url, extra, tries, config, on_decision=met.hear, stop=met.found_wheel_less
        )
        # A project that publishes no wheel is taken as its sdist wherever a resolver meets it, so that what a
        # set pins does not hang on whether some try of the run had found that out before it started. A try
        # that met one goes again, stopped the moment its page was read or, if it ended first, once it is.
        sdist_only = tries.wheel_less(met.names)
        if pins is None and not sdist_only:
            named = {canonicalize_name(name) for name in _WHEELS_REQUIRED.findall(result.stderr)} - from_source
            sdist_only = {n for n in named if not any(f.endswith(".whl") for f in index_listing(index_url, n))}
            tries.add(sdist_only, index_url)  # the other sets of the run need not find them out too
        from_source |= sdist_only
        if attempt == 0:
            after_first_try()
        # A try that went on an sdist's word where its wheel says otherwise goes again, on the wheel's word.
        if not sdist_only and tries.confirmed(hinted):
            return pins
    return None


# What the run's cache holds counts as fresh for the run's every try. Each try of a run read every page and file
# metadata again, because the pages here come without cache headers (through this machine's proxy: not even a
# date): the sample's second try took 1.2 s online, 0.04 s from the cache its first try had filled. The cache is
# the run's own (Tries), so nothing in it is older than the run.
_RUN_CACHE_CONTROL = 'cache-control = { api = "max-age=86400", files = "max-age=86400" }'


def index_toml(index_url: str, *extra: str) -> str:
    """The index as uv.toml names it, with `extra` lines for its table.

    In a file rather than as --index-url: uv applies an index's cache-control only to an index its
    configuration names, and a URL's credentials stay off uv's command line, which other users see.
    """
    return "\n".join(["[[index]]", f"url = {json.dumps(index_url)}", "default = true", *extra, ""])


def _uv_round(
    resolution: ResolutionSet,
    platform: TargetPlatform,
    index_url: str | None,
    extra: tuple[str, ...],
    tries: Tries,
    config: str | None = None,
    *,
    on_decision: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> tuple[subprocess.CompletedProcess, list[Pin] | None]:
    """One uv run, and its pins when it resolved.

    `config` is more uv.toml for this run alone; on_decision hears the resolver's log, and `stop` ends the
    run unfinished (see uv_compile).
    """
    tries.wait_turn(first=platform.runs_natively())
    stop = stop or threading.Event()
    with tries.running(stop), tempfile.TemporaryDirectory(prefix=scratch_prefix(None, "airgap-resolve-")) as tmp:
        settings = index_toml(index_url or default_index_url(), _RUN_CACHE_CONTROL) + (config or "")
        (Path(tmp) / "uv.toml").write_text(settings, encoding="utf-8")
        extra += ("--config-file", str(Path(tmp) / "uv.toml"), "--cache-dir", tries.cache_dir)
        result = uv_compile(resolution, platform, None, Path(tmp), extra, on_decision=on_decision, stop=stop)
        if tries.stopping.is_set() or result.returncode in (-signal.SIGINT, 128 + signal.SIGINT):
            # The run is stopping, or Ctrl-C reached uv as well: no other try may start, it would wait on the
            # network unasked.
            raise KeyboardInterrupt
        if result.returncode != 0:
            raise_if_disk_full(result.stderr)
            return result, None
        lock = tomllib.loads((Path(tmp) / "pylock.toml").read_text(encoding="utf-8"))
    target = platform.target
    env = dict(platform.marker_env)
    pins = []
    for package in lock.get("packages", []):
        marker = package.get("marker")
        if marker and not Marker(marker).evaluate(env):
            continue
        ref = choose_file(package, platform)
        if ref is None:
            raise ResolutionError(
                f"{package['name']} {package['version']} has no file for target {target.name!r} "
                f"({', '.join(target.platforms)}, Python {target.python}) on the index. "
                "Remedy: pin a version that publishes wheels for this target."
            )
        pins.append(Pin(name=canonicalize_name(package["name"]), version=str(package["version"]), file=ref))
    return result, pins


def _resolve_once(
    resolution: ResolutionSet,
    platform: TargetPlatform,
    index_url: str | None,
    no_build: set[str],
    tries: Tries,
    on_decision: Callable[[str], None],
) -> list[Pin]:
    """One uv run that must resolve, sdists allowed but for the projects in no_build."""
    target = platform.target
    extra = tuple(arg for name in sorted(no_build) for arg in ("--only-binary", name))
    result, pins = _uv_round(resolution, platform, index_url, extra, tries, on_decision=on_decision)
    if pins is not None:
        return pins
    problem = index_problem(index_url, resolution)
    if problem is None and "Failed to fetch" in result.stderr:  # we could read the index where uv could not
        problem = "uv could not read the index:\n" + _uv_says(result)
    if problem:
        # Our own reads say it of a certificate themselves (http_get); uv's words need saying after.
        trust = f" {UNTRUSTED_CA[0].upper()}{UNTRUSTED_CA[1:]}." if "peer certificate" in problem else ""
        raise FetchError(
            f"resolving for target {target.name!r} ({resolution.label}): {problem}\nNothing was downloaded. "
            f"Remedy: check index_url in the inventory, and any proxy between this machine and the index.{trust} "
            "Then run again."
        )
    hint = f" Packages whose sdists would not build for this target: {', '.join(sorted(no_build))}." if no_build else ""
    raise ResolutionError(
        _uv_failure("resolving", target, resolution, result)
        + f"\nRemedy: fix or relax the requirement named above so that it has releases for "
        f"{', '.join(target.platforms)} / Python {target.python}, or change the target.{hint}"
    )
