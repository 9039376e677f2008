"""A first deploy seeds the index by devpi-import: it must end up exactly as an upload of the same wheels leaves it.

Two real devpi-servers (with devpi-web) on loopback: one gets the wheels by
upload through devpi's HTTP API, the other is seeded by `programs.seed_index`.
Their project pages, simple pages, logins and devpi-web search must agree, and
a replica of the seeded one must follow it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devpi_airgap.core.files import sha256_file
from devpi_airgap.offline.devpi_api import SIMPLE_JSON, DevpiClient, seed_forms, upload_missing
from devpi_airgap.offline.programs import wait_replicated
from testing.devpi_server import (
    ROOT_PASSWORD,
    SEARCH_INDEX_WAIT,
    _bin,
    indexing_state,
    seed_server_dir,
    start_devpi_server,
    user_client,
)
from testing.loopback import slow_link
from testing.wheels import make_wheel

USER, INDEX, PASSWORD = "alice", "approved", "alice-pw-1"
PROJECTS = ("alpha", "beta-tools")


def wheels(directory: Path) -> list[Path]:
    rich = [
        ("License-Expression", "MIT"),
        ("Classifier", "Programming Language :: Python :: 3"),
        ("Classifier", "Operating System :: OS Independent"),
        ("Requires-Dist", "packaging>=24"),
        ("Requires-Dist", 'colorama; sys_platform == "win32"'),
        ("Requires-Python", ">=3.9"),
        ("Project-URL", "Source, https://example.invalid/alpha"),
        ("Provides-Extra", "fast"),
        ("Home-page", "UNKNOWN"),
        ("Keywords", "one,two"),
        ("Description-Content-Type", "text/markdown"),
    ]
    return sorted(
        [
            make_wheel(directory, "alpha", "1.0", headers=rich, tag="cp311-cp311-manylinux_2_17_x86_64"),
            # a later file of the same version with other metadata: its keys win, the keys it lacks stay
            make_wheel(
                directory, "alpha", "1.0", headers=[("License-Expression", "MIT"), ("Summary", "the pure build")]
            ),
            make_wheel(directory, "alpha", "2.0", headers=rich),
            make_wheel(directory, "beta_tools", "0.3", headers=[("License", "BSD"), ("Platform", "any")]),
        ]
    )


def project_pages(url: str) -> dict:
    """Everything devpi shows of the index's projects, with the upload times left out (they differ by nature)."""
    pages = {}
    with httpx.Client(base_url=url, headers={"Accept": "application/json"}) as http:
        for project in PROJECTS:
            versions = http.get(f"/{USER}/{INDEX}/{project}").raise_for_status().json()["result"]
            for data in versions.values():
                for link in data.get("+links", []):
                    link["href"] = link["href"].removeprefix(url)  # the servers differ in port only
                    link["log"] = [{k: v for k, v in entry.items() if k != "when"} for entry in link["log"]]
            simple = http.get(f"/{USER}/{INDEX}/+simple/{project}/", headers={"Accept": SIMPLE_JSON})
            simple = simple.raise_for_status().json()
            # devpi lists a project's files in the order they arrived, which an import does not keep;
            # installers order candidates by version, never by their place on the page
            simple["files"].sort(key=lambda f: f["filename"])
            pages[project] = {"versions": versions, "simple": simple}
    return pages


def search_finds(url: str, project: str, timeout: float = SEARCH_INDEX_WAIT) -> bool:
    """devpi-web indexes in the background, after uploads and on a seeded server's first start alike."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = httpx.get(f"{url}/+search", params={"query": project}).text
        if f"/{USER}/{INDEX}/{project}" in page:
            return True
        time.sleep(0.5)
    return False


def indexing_report(url: str, log: Path) -> str:
    """What the server says of its indexing, for a failed search: its serials, its queues and its warnings."""
    warnings = [line for line in log.read_text(errors="replace").splitlines() if " WARNI " in line or " ERROR " in line]
    return "\n".join([f"{url}: {indexing_state(url)}", *warnings[-20:]])


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seed")
    files = wheels(tmp / "wheels")
    stops = []
    try:
        uploaded, stop = start_devpi_server(tmp / "uploaded")
        stops.append(stop)
        with user_client(uploaded, ROOT_PASSWORD, USER, PASSWORD) as client:
            client.ensure_index(USER, INDEX)
            # one at a time in filename order, the order the seed applies them in
            result = upload_missing(client, USER, INDEX, files, workers=1)
            assert len(result.uploaded) == len(files)

        def seed(serverdir: Path) -> None:
            done = seed_server_dir(serverdir, files, USER, INDEX, PASSWORD)
            assert done.returncode == 0, done.stderr

        seeded, stop = start_devpi_server(tmp / "seeded", seed=seed, args=("--role", "primary"))
        stops.append(stop)
        yield uploaded, seeded, tmp
    finally:
        for stop in reversed(stops):
            stop()


def test_seeded_index_is_the_uploaded_index(servers):
    uploaded, seeded, _ = servers
    assert project_pages(seeded) == project_pages(uploaded)
    versions = project_pages(seeded)["alpha"]["versions"]
    # the comparison has substance: metadata, both files of 1.0, their hashes, and an upload log by the user
    assert versions["1.0"]["summary"] == "the pure build" and versions["1.0"]["home_page"] == ""
    assert versions["1.0"]["classifiers"] == [
        "Programming Language :: Python :: 3",
        "Operating System :: OS Independent",
    ]
    assert len(versions["1.0"]["+links"]) == 2
    assert all(link["hashes"]["sha256"] for link in versions["1.0"]["+links"])
    assert versions["2.0"]["+links"][0]["log"] == [{"what": "upload", "who": USER, "dst": f"{USER}/{INDEX}"}]


def test_seeded_server_takes_its_passwords_and_refuses_others(servers):
    _, seeded, _ = servers
    with DevpiClient(seeded) as client:
        client.login(USER, PASSWORD)
        client.login("root", ROOT_PASSWORD)
        with pytest.raises(Exception, match="401"):
            client.login(USER, "not-the-password")


def test_devpi_web_search_finds_the_seeded_projects(servers):
    uploaded, seeded, tmp = servers
    for project in PROJECTS:
        for url, name in ((uploaded, "uploaded"), (seeded, "seeded")):
            assert search_finds(url, project), indexing_report(url, tmp / name / "devpi-server.log")


def test_a_replica_follows_the_seeded_server(servers):
    """It holds every file, as well as the pages, once it says it is in sync.

    It reaches the primary over a slow link, so its files arrive well after their
    metadata: a replica taken as in sync by its serial alone would still be without
    them, and would stream them from the primary or answer 500 (see wait_replicated).
    """
    _, seeded, tmp = servers
    with slow_link(int(seeded.rsplit(":", 1)[1]), delay=0.3) as link:
        primary = f"http://127.0.0.1:{link}"

        def init_replica(serverdir: Path) -> None:
            subprocess.run(
                [_bin("devpi-init"), "--serverdir", str(serverdir), "--role", "replica", "--primary-url", primary],
                check=True,
                capture_output=True,
            )

        replica, stop = start_devpi_server(
            tmp / "replica", seed=init_replica, args=("--primary-url", primary), secret_of=tmp / "seeded"
        )
        try:
            # the wait deploy runs on a replica's host, here beside it: 60 s of patience, a hard stop at 120
            port = replica.rsplit(":", 1)[1]
            waited = subprocess.run(
                [sys.executable, wait_replicated.__file__, port, "60"], capture_output=True, text=True, timeout=120
            )
            assert waited.returncode == 0, waited.stderr
            assert project_pages(replica) == project_pages(seeded)
            simple = httpx.URL(f"{replica}/{USER}/{INDEX}/+simple/alpha/")
            for wheel in project_pages(replica)["alpha"]["simple"]["files"]:
                got = httpx.get(simple.join(wheel["url"]))
                assert got.status_code == 200, got.text
                assert hashlib.sha256(got.content).hexdigest() == wheel["hashes"]["sha256"]
                # devpi sends this header only for a file it holds; one it streams from the primary lacks it
                assert got.headers.get("cache-control") == "max-age=365000000, immutable, public", got.headers
        finally:
            stop()


def test_a_failed_seed_leaves_no_server_directory(tmp_path):
    files = wheels(tmp_path / "wheels")
    bad = tmp_path / "bad"
    bad.mkdir()
    # a wheel damaged after its form (and sha256) was taken: devpi-import's own check must refuse it
    damaged = bad / files[0].name
    damaged.write_bytes(files[0].read_bytes() + b"damage")
    serverdir = tmp_path / "server"
    forms = seed_forms(files, sha256_file)
    done = seed_server_dir(serverdir, [damaged, *files[1:]], USER, INDEX, PASSWORD, forms=forms)
    assert done.returncode == 1
    assert "devpi-import failed" in done.stderr and files[0].name in done.stderr, done.stderr
    assert not serverdir.exists() and not Path(f"{serverdir}.seed").exists()
    assert not list(tmp_path.rglob("dataindex.json"))  # it held a password hash


def test_a_server_directory_with_stray_files_is_left_alone(tmp_path):
    serverdir = tmp_path / "server"
    serverdir.mkdir()
    (serverdir / "notes.txt").write_text("someone's\n")
    done = seed_server_dir(serverdir, wheels(tmp_path / "wheels"), USER, INDEX, PASSWORD)
    assert done.returncode == 1 and "holds files but no devpi data" in done.stderr, done.stderr
    assert [p.name for p in serverdir.iterdir()] == ["notes.txt"]
    assert not Path(f"{serverdir}.seed").exists()
