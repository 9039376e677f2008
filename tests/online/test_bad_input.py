"""Bad input: one clear paragraph, a distinct non-zero exit code, and nothing written."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from testing.disks import resize
from testing.download_project import DISTS, TARGETS, make_project
from testing.environment import clean_env
from testing.fakeindex import build_index, serve_index
from testing.tasks import run_task

BAD_INVENTORIES = [
    ("targets: [\n", "malformed YAML"),
    (TARGETS + "colour: blue\n", "colour: got 'blue', expected no such key"),
    (TARGETS.replace('python: "3.13"', "python: 3.13"), 'quoted version such as "3.13"'),
    (TARGETS.replace("platform: win_amd64", "platform: beos_x86"), "unknown platform tag 'beos_x86'"),
    (TARGETS + "servers:\n  devpi-host: {target: nosuch}\n", "servers.devpi-host.target: got 'nosuch'"),
]

# A file that is not a valid requirements file is bad input (exit 2); valid requirements that cannot be
# resolved for the target are a resolution failure (exit 3), as the README's table of exit codes says.
BAD_REQUIREMENTS = [
    ("app==\n", 2, "invalid requirement 'app=='"),
    ("-e .\n", 2, "option '-e' is not supported"),
    ("app @ https://example.invalid/app-1.0.tar.gz\n", 2, "points at a URL or a path"),
    ("--index-url https://example.invalid/simple\n", 2, "is not allowed in a requirements file"),
    ("no-such-package\n", 3, "no-such-package"),
    ("natext==9.9\n", 3, "natext"),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    with serve_index(build_index(tmp_path_factory.mktemp("index"), DISTS)) as url:
        yield url


def assert_clean_failure(result: subprocess.CompletedProcess, code: int, fragment: str, project: Path) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert fragment in message
    assert "Traceback" not in result.stderr and result.stderr.count("error:") == 1
    assert not (project / "wheelhouse").exists() and not (project / "locks").exists()


@pytest.mark.parametrize("text, fragment", BAD_INVENTORIES)
def test_bad_inventory(index, tmp_path, text, fragment):
    project = make_project(tmp_path, index, "app\n", targets=text)
    result = run_task("download", "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
    assert_clean_failure(result, 2, fragment, project)


@pytest.mark.parametrize("requirements, code, fragment", BAD_REQUIREMENTS)
def test_bad_requirements(index, tmp_path, requirements, code, fragment):
    project = make_project(tmp_path, index, requirements)
    result = run_task(
        "download", "--inventory", str(project / "inventory.yaml"), "--target", "win313", env=clean_env(project)
    )
    assert_clean_failure(result, code, fragment, project)


@pytest.mark.parametrize("requirements", ["", "# nothing yet\n", "-c pins.txt\n"])
def test_requirements_that_name_no_package_are_refused_before_anything_is_written(index, tmp_path, requirements):
    """An empty wheelhouse would be found out only on the closed network, a trip across the gap too late."""
    project = make_project(tmp_path, index, requirements)
    (project / "pins.txt").write_text("natext==1.0\n")
    result = run_task("download", "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
    assert_clean_failure(result, 2, "its requirements (", project)
    assert "name no package, so its wheelhouse would be empty" in " ".join(result.stderr.split())


def test_python_version_without_wheels(index, tmp_path):
    targets = 'targets:\n  future: {platform: win_amd64, python: "3.99", requirements: [requirements.txt]}\n'
    project = make_project(tmp_path, index, "natext\n", targets=targets)
    result = run_task("download", "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
    assert_clean_failure(result, 3, "'future'", project)


def test_bundle_from_another_inventory_is_refused_before_connecting(index, tmp_path):
    made = make_project(tmp_path / "one", index, "app\n") if (tmp_path / "one").mkdir() is None else None
    assert (
        run_task(
            "download", "--inventory", str(made / "inventory.yaml"), "--target", "win313", env=clean_env(made)
        ).returncode
        == 0
    )
    bundle = run_task("bundle", "--inventory", str(made / "inventory.yaml"), env=clean_env(made))
    path = bundle.stdout.strip().splitlines()[-1]
    other = tmp_path / "two"
    other.mkdir()
    make_project(
        other,
        index,
        "app\n",
        targets=TARGETS.replace("win313", "win312").replace('"3.13"', '"3.12"')
        + "servers:\n  devpi-host: {target: lin311}\n",
    )
    (other / "ssh_config").write_text("Host devpi-host\n    HostName 127.0.0.1\n    Port 9\n")
    env = clean_env(other)
    env.update(
        DEVPI_AIRGAP_ROOT_PASSWORD="x", DEVPI_AIRGAP_USER_PASSWORD="y", DEVPI_AIRGAP_SECRETS=str(other / "none.yaml")
    )
    result = run_task(
        "-S",
        str(other / "ssh_config"),
        "-H",
        "devpi-host",
        "deploy",
        "--bundle",
        path,
        "--inventory",
        str(other / "inventory.yaml"),
        program="fabric",
        env=env,
    )
    assert result.returncode == 7
    assert "made for a different inventory" in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    "requirements, fragment",
    [
        ("natext\n-r other.txt\n", "requirements.txt:2: -r 'other.txt' names a file that does not exist"),
        ("natext\n-c pins.txt\n", "requirements.txt:2: the constraints file 'pins.txt' does not exist"),
    ],
)
def test_a_missing_include_names_the_line(index, tmp_path, requirements, fragment):
    project = make_project(tmp_path, index, requirements)
    result = run_task("download", "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
    assert_clean_failure(result, 2, fragment, project)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_files_saved_by_windows_tools_read_as_any_other(index, tmp_path, encoding):
    """PowerShell's `>` writes UTF-16 with a byte-order mark (`pip freeze > pins.txt` too); Notepad may write UTF-8
    with one. The inventory, a requirements file and the constraints file it names are all read as they are."""
    project = make_project(tmp_path, index, "")
    (project / "requirements.txt").write_bytes("natext\r\n-c pins.txt\r\n".encode(encoding))
    (project / "pins.txt").write_bytes("natext==1.0\r\n".encode(encoding))
    inventory = project / "inventory.yaml"
    inventory.write_bytes(inventory.read_text().replace("\n", "\r\n").encode(encoding))
    download = ["download", "--inventory", str(inventory), "--target", "win313"]
    result = run_task(*download, env=clean_env(project))
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(p.name.startswith("natext-1.0") for p in (project / "wheelhouse" / "win313").iterdir())
    again = run_task(*download, env=clean_env(project))
    assert again.returncode == 0 and "no changes" in again.stdout, again.stdout + again.stderr


def test_an_inventory_in_another_encoding_gets_a_clear_error(index, tmp_path):
    project = make_project(tmp_path, index, "natext\n")
    inventory = project / "inventory.yaml"
    inventory.write_bytes(inventory.read_bytes() + "# Zürich\n".encode("latin-1"))
    result = run_task("download", "--inventory", str(inventory), env=clean_env(project))
    assert_clean_failure(result, 2, "inventory.yaml: not UTF-8 or UTF-16 text", project)


def test_requirements_in_another_encoding_get_a_clear_error(index, tmp_path):
    project = make_project(tmp_path, index, "")
    (project / "requirements.txt").write_bytes("natext  # Zürich\n".encode("latin-1"))
    result = run_task("download", "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
    assert_clean_failure(result, 2, "not UTF-8 or UTF-16 text", project)


class LoginPage(http.server.BaseHTTPRequestHandler):
    """What a captive proxy answers for every URL: a friendly page, and HTTP 200."""

    def do_GET(self):
        body = b"<html><head><title>Please sign in to the proxy</title></head><body><form>...</form></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def login_page():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LoginPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()


def test_an_index_answering_with_a_login_page_is_named_not_the_requirement(login_page, tmp_path):
    project = make_project(tmp_path, login_page, "natext\n")
    result = run_task("download", "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
    assert_clean_failure(result, 5, f"the index {login_page} answered", project)
    message = " ".join(result.stderr.split())
    assert "not a package index" in message and "Please sign in to the proxy" in message
    assert "relax the requirement" not in message


@pytest.mark.parametrize("argv", [["audit"], ["bundle"], ["bundle", "--check"]])
def test_a_task_that_needs_a_download_before_any_says_so_and_prints_no_pass(index, tmp_path, argv):
    """An audit of nothing passed (exit 0), and `inv bundle` printed that empty pass before it stopped with exit 1."""
    project = make_project(tmp_path, index, "app\n")
    result = run_task(*argv, "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
    assert_clean_failure(
        result,
        4,
        "no target has been downloaded yet (win313, mac312, lin311: no lock file); run `inv download`",
        project,
    )
    assert result.stdout == ""


def test_an_index_url_naming_the_site_points_at_its_simple_api(index, tmp_path):
    """index_url: https://pypi.org (the site) for https://pypi.org/simple: uv says only "natext was not found"."""
    site = index.removesuffix("/simple")
    project = make_project(tmp_path, site, "natext\n")
    result = run_task("download", "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
    assert_clean_failure(result, 5, f"index_url {site} is a site, not its package index", project)
    assert f"set index_url to {index}" in " ".join(result.stderr.split())
    assert "relax the requirement" not in result.stderr


def test_an_unreachable_index_is_named_not_the_requirement(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/simple"
    project = make_project(tmp_path, closed, "natext\n")
    result = run_task("download", "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
    assert_clean_failure(result, 5, f"the index {closed} cannot be reached", project)
    assert "relax the requirement" not in result.stderr


@pytest.mark.parametrize(
    "program, argv, fragment",
    [
        ("invoke", ["downlaod"], "No idea what 'downlaod' is"),
        ("invoke", ["download", "--target"], "needed value and was not given one"),
        ("invoke", ["download", "--bogus"], "No idea what '--bogus' is"),
        ("fabric", ["deploy", "--nope"], "No idea what '--nope' is"),
        ("fabric", ["backup", "--keep", "x"], "an option got a value it cannot take (invalid literal for int()"),
    ],
)
def test_a_mistyped_command_line_exits_2_with_one_message(tmp_path, program, argv, fragment):
    result = run_task(*argv, program=program, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert fragment in result.stderr and result.stderr.count("error:") == 1 and "Traceback" not in result.stderr


# Room left on the disk, and where the run then fails: uv's own cache during resolution (cache on the
# disk), the downloads into the pool, and the copy of a wheel built from an sdist.
@pytest.mark.parametrize("room_kb, cache_on_disk", [(64, True), (8, False), (32, False), (48, False)])
def test_a_full_disk_at_any_moment_exits_5_keeps_nothing_half_written_and_a_rerun_converges(
    index, small_disk, tmp_path, room_kb, cache_on_disk
):
    project = make_project(small_disk, index, "app\nlib\n")
    env = clean_env(project)
    if not cache_on_disk:
        env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")
    resize(small_disk, room_kb)
    result = run_task("download", "--inventory", str(project / "inventory.yaml"), env=env)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("error:") == 1
    leftovers = [p for p in project.rglob("*") if p.name.endswith((".tmp", ".part")) and "uv-cache" not in p.parts]
    assert leftovers == []
    for lock in (project / "locks").glob("*.lock.json"):  # a lock is written only once its files are all there
        target = project / "wheelhouse" / lock.name.removesuffix(".lock.json")
        assert all((target / f["filename"]).is_file() for f in json.loads(lock.read_text())["packages"]), lock

    resize(small_disk, 8192)
    again = run_task("download", "--inventory", str(project / "inventory.yaml"), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert run_task("verify", "--inventory", str(project / "inventory.yaml"), env=env).returncode == 0
