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
from contextlib import ExitStack
from pathlib import Path

import httpx

from devpi_airgap.core.files import atomic_write
from devpi_airgap.core.pools import stoppable_pool
from devpi_airgap.online.resolve import default_index_url, page_filenames
from devpi_airgap.online.tls import tls_context

WORKERS = 16


def _page(client: httpx.Client, index_url: str, name: str, known: list | None) -> list | None:
    """[etag, digest of the file list, digest of the bytes] of a project page, or None if it cannot be read."""
    headers = {"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"}
    if known and known[0]:
        headers["If-None-Match"] = known[0]
    try:
        response = client.get(f"{index_url}/{name}/", headers=headers)
    except httpx.HTTPError:
        return None
    if response.status_code == 304 and known:
        return known
    if response.status_code != 200:
        return None
    body = hashlib.sha256(response.content).hexdigest()
    if known and known[2:] == [body]:
        return known
    files = hashlib.sha256("\n".join(sorted(page_filenames(response))).encode()).hexdigest()
    return [response.headers.get("etag", ""), files, body]


def page_client() -> httpx.Client:
    """A client for project pages, as many connections kept open as the pages are read at once."""
    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
    return httpx.Client(timeout=30, limits=limits, follow_redirects=True, verify=tls_context())


def page_fingerprints(
    index_url: str | None, names: set[str], known: dict[str, list], client: httpx.Client | None = None
) -> dict[str, list | None]:
    """Fingerprints of the projects' pages, read at once; through `client`, when a run reads pages again and again."""
    base = (index_url or default_index_url()).rstrip("/")
    with ExitStack() as stack:
        reader = client or stack.enter_context(page_client())
        pool = stack.enter_context(stoppable_pool(WORKERS))
        ordered = sorted(names)
        return dict(zip(ordered, pool.map(lambda n: _page(reader, base, n, known.get(n)), ordered), strict=True))


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
        atomic_write(self.path, json.dumps(self.data, sort_keys=True))
