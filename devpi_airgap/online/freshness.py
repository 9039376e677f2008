"""Decide, cheaply, whether resolving a target again could give a different answer.

A resolution is a function of its inputs (requirements, constraints, target,
index, tool versions) and of the index pages of the projects it pinned. uv
revalidates those pages one dependency level at a time, which costs seconds
even when nothing changed. Here every page is asked for at once, conditionally
(ETag), and compared by its list of files. When the inputs and every page are
unchanged, the lock is still the answer and uv need not run.

Indexes that send no ETag (PyPI behind some proxies) answer every page in
full. Parsing 127 pages (38 MB of JSON for the sample) cost more than fetching
them, so each fingerprint also keeps a digest of the page's bytes: identical
bytes list identical files, and only a page whose bytes changed is parsed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from devpi_airgap.core.files import write_if_changed
from devpi_airgap.core.pools import stoppable_pool
from devpi_airgap.online.http_get import Answer, Session, Sessions, TransferError
from devpi_airgap.online.resolve import PAGE_ACCEPT, FileRef, default_index_url, listing_and_release, page_filenames

WORKERS = 16


def _page(session: Session, index_url: str, name: str, known: list | None) -> list | None:
    """[etag, digest of the file list, digest of the bytes] of a project page, or None if it cannot be read."""
    headers = {"Accept": PAGE_ACCEPT}
    if known and known[0]:
        headers["If-None-Match"] = known[0]
    try:
        page = session.read(f"{index_url}/{name}/", headers)
    except TransferError:
        return None
    if page.status == 304 and known:
        return known
    if page.status != 200:
        return None
    body = hashlib.sha256(page.body).hexdigest()
    if known and known[2:] == [body]:
        return known
    return _fingerprint(page, page_filenames(page.content_type, page.body), body)


def _fingerprint(page: Answer, listing: list[str], body: str) -> list:
    return [page.etag or "", hashlib.sha256("\n".join(sorted(listing)).encode()).hexdigest(), body]


def page_and_release(
    session: Session, index_url: str | None, name: str, prefix: str
) -> tuple[list | None, dict[str, FileRef]]:
    """A project page's fingerprint, as page_fingerprints gives it, and one release's files on it (see
    resolve.listing_and_release), from one reading; (None, {}) if the page cannot be read.
    """
    base = (index_url or default_index_url()).rstrip("/")
    try:
        page = session.read(f"{base}/{name}/", {"Accept": PAGE_ACCEPT})
    except TransferError:
        return None, {}
    if page.status != 200:
        return None, {}
    listing, files = listing_and_release(page, prefix)
    return _fingerprint(page, listing, hashlib.sha256(page.body).hexdigest()), files


@contextmanager
def page_sessions() -> Iterator[Sessions]:
    """Connections for project pages, kept open for a run that reads pages again and again."""
    sessions = Sessions()
    try:
        yield sessions
    finally:
        sessions.close()


def page_fingerprints(
    index_url: str | None, names: set[str], known: dict[str, list], sessions: Sessions | None = None
) -> dict[str, list | None]:
    """Fingerprints of the projects' pages, read at once; through `sessions`, when a run reads pages again and again.

    Read with http_get, not httpx: a page read through httpx holds the interpreter for every 16 KB
    record, and the run's downloads wait for it. Beside the sample's 127 pages, a 38 MB wheel took
    0.45-0.61 s to download through httpx's reads (0.15 s alone), and 0.19-0.45 s beside these.
    """
    base = (index_url or default_index_url()).rstrip("/")
    with ExitStack() as stack:
        lender = sessions or stack.enter_context(page_sessions())
        pool = stack.enter_context(stoppable_pool(WORKERS))

        def fingerprint(name: str) -> list | None:
            with lender.session() as session:
                return _page(session, base, name, known.get(name))

        ordered = sorted(names)
        return dict(zip(ordered, pool.map(fingerprint, ordered), strict=True))


def inputs_digest(description: object) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()


class FreshnessRecord:
    """What the last full resolution of each target saw, kept next to the pool."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.data: dict = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            self.data = {}

    def unchanged(self, target: str, inputs: str, current: dict[str, list | None]) -> bool:
        entry = self.data.get(target)
        if not entry or entry["inputs"] != inputs:
            return False
        return all((now := current.get(name)) is not None and now[1] == fp[1] for name, fp in entry["pages"].items())

    def pages(self, target: str) -> dict[str, list]:
        return (self.data.get(target) or {}).get("pages", {})

    def inputs(self, target: str) -> str | None:
        return (self.data.get(target) or {}).get("inputs")

    def record(self, target: str, inputs: str, pages: dict[str, list | None]) -> None:
        if all(fp is not None for fp in pages.values()):
            self.data[target] = {"inputs": inputs, "pages": pages}
        else:  # a page we could not read proves nothing next time
            self.data.pop(target, None)

    def save(self) -> None:
        write_if_changed(self.path, json.dumps(self.data, sort_keys=True))
