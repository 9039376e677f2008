"""devpi-web, seen through a real browser, after `fab -H devpi-host deploy` to the offline test host.

Headless Chromium (Debian's `chromium`) renders the index page and the search
page of the deployed server. The test asserts on the rendered DOM and saves a
screenshot of each page as a CI artifact: into `$CI_ARTIFACTS` when set, else
into `<repo>/.ci-artifacts/`.
"""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from testing.browser import artifacts_dir, chromium_path, dump_dom, screenshot
from testing.devpi_server import SEARCH_INDEX_WAIT, indexing_state

pytestmark = [pytest.mark.offline_host, pytest.mark.network]

PACKAGE = "packaging"  # the project's server.txt in tests/test_deploy.py; the deploy uploads its wheel


class _Links(HTMLParser):
    """Every <a href> of a document with its text, and the class of the element around it."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (href, text, enclosing class)
        self._open: list[tuple[str, str]] = []  # (tag, class) of the open elements
        self._link: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "href" in attrs:
            enclosing = next((cls for _, cls in reversed(self._open) if cls), "")
            self._link = [attrs["href"], "", enclosing]
        if tag not in ("br", "img", "meta", "link", "input", "hr"):
            self._open.append((tag, attrs.get("class") or ""))

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            href, text, enclosing = self._link
            self.links.append((href, " ".join(text.split()), enclosing))
            self._link = None
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        if self._link is not None:
            self._link[1] += data


def links(dom: str) -> list[tuple[str, str, str]]:
    parser = _Links()
    parser.feed(dom)
    parser.close()
    return parser.links


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_path()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    return artifacts_dir()


def test_index_page_lists_the_uploaded_package(deployed, host, chromium, artifacts, tmp_path):
    url = f"http://{host.address}:3141/myuser/myindex"
    dom = dump_dom(chromium, tmp_path / "profile", url)
    assert "myuser/myindex" in dom and "index" in dom, dom[:2000]
    found = links(dom)
    info = [
        (href, text)
        for href, text, _ in found
        if re.search(rf"/myuser/myindex/{PACKAGE}/[0-9][^/]*$", href) and text.startswith(f"{PACKAGE}-")
    ]
    assert info, f"no info-page link for {PACKAGE} on {url}; links: {found}"
    wheels = [
        text for href, text, _ in found if "/+f/" in href and text.startswith(f"{PACKAGE}-") and text.endswith(".whl")
    ]
    assert wheels, f"no {PACKAGE} wheel listed on {url}; links: {found}"
    screenshot(chromium, tmp_path / "profile", url, artifacts / "devpi-web-index.png")


def test_search_finds_the_uploaded_package(deployed, host, chromium, artifacts, tmp_path):
    server = f"http://{host.address}:3141"
    url = f"{server}/+search?query={PACKAGE}"
    deadline = time.monotonic() + SEARCH_INDEX_WAIT
    while True:
        dom = dump_dom(chromium, tmp_path / "profile", url)
        hits = [
            (href, text)
            for href, text, enclosing in links(dom)
            if "packagename" in enclosing.split() and re.search(rf"/myuser/myindex/{PACKAGE}(/|$)", href)
        ]
        if hits or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert hits, (
        f"devpi-web search did not find {PACKAGE} in myuser/myindex within {SEARCH_INDEX_WAIT}s "
        f"({indexing_state(server)}); page:\n{dom[-3000:]}"
    )
    assert any(
        text == PACKAGE or text.startswith(f"{PACKAGE} ") or text.startswith(f"{PACKAGE}-") for _, text in hits
    ), hits
    assert "did not match anything" not in dom
    screenshot(chromium, tmp_path / "profile", url, artifacts / "devpi-web-search.png")
