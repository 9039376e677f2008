"""The fake index is good enough for uv and pip: valid wheels/sdists, a PEP 503
index that uv resolves per target, sdists that build offline, wheels that install."""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import re
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")
from packaging.metadata import Metadata
from packaging.utils import parse_sdist_filename, parse_wheel_filename

from testing.fakeindex import Dist, add_release, build_index, serve_index, sha256_file

try:
    import uv as _uv

    UV = _uv.find_uv_bin()
except Exception:  # pragma: no cover - uv is a project dependency
    UV = None

needs_uv = pytest.mark.skipif(UV is None, reason="uv not installed")

NATEXT_TAGS = [
    "cp313-cp313-win_amd64",
    "cp312-cp312-macosx_11_0_arm64",
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
]

SPEC = [
    Dist(
        "app",
        "1.0",
        requires=[
            'winonly; sys_platform == "win32"',
            'posixonly; sys_platform != "win32"',
            'macdep; sys_platform == "darwin"',
            'newpy; python_version >= "3.13"',
            'oldpy; python_version < "3.12"',
            "natext",
            "sdistonly",
        ],
    ),
    Dist("winonly", "1.0"),
    Dist("posixonly", "1.0"),
    Dist("macdep", "1.0"),
    Dist("newpy", "1.0", requires_python=">=3.13"),
    Dist("oldpy", "1.0", requires_python="<3.12"),
    Dist("natext", "1.0", tags=NATEXT_TAGS),
    Dist("sdistonly", "1.0", sdist=True, wheel=False),
    Dist("impure", "1.0", sdist=True, wheel=False, pure_build=False),
    Dist("both", "2.0", sdist=True, wheel=True),
]


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment without this machine's pip/uv configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_CACHE_DIR="1",
        UV_PYTHON_DOWNLOADS="never",
        UV_CACHE_DIR=str(tmp / "uv-cache"),
        UV_NO_PROGRESS="1",
    )
    env.update(extra)
    return env


def run(cmd, env, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def index_root(tmp_path_factory) -> Path:
    return build_index(tmp_path_factory.mktemp("fakeindex"), SPEC)


@pytest.fixture(scope="module")
def served(index_root):
    with serve_index(index_root) as url:
        yield url


# --------------------------------------------------------------------------
# Artefacts are valid
# --------------------------------------------------------------------------


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def check_wheel(path: Path) -> tuple[Metadata, str]:
    """Validate a wheel's structure; return (metadata, WHEEL text)."""
    name, version, _, tags = parse_wheel_filename(path.name)
    distinfo = f"{name.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        files = {n: zf.read(n) for n in zf.namelist()}
    meta = Metadata.from_email(files[f"{distinfo}/METADATA"], validate=True)
    assert meta.name == name and meta.version == version
    wheel_txt = files[f"{distinfo}/WHEEL"].decode()
    assert "Wheel-Version: 1.0" in wheel_txt
    assert {str(t) for t in tags} == set(re.findall(r"^Tag: (\S+)$", wheel_txt, re.M))
    rows = [line.split(",") for line in files[f"{distinfo}/RECORD"].decode().splitlines()]
    assert {r[0] for r in rows} == set(files)
    for p, h, size in rows:
        if p.endswith("/RECORD"):
            assert (h, size) == ("", "")
        else:
            assert h == _record_hash(files[p]) and int(size) == len(files[p])
    assert f"{name.replace('-', '_')}.py" in files
    return meta, wheel_txt


def test_wheels_are_valid(index_root):
    wheels = sorted((index_root / "files").glob("*.whl"))
    assert {w.name for w in wheels if w.name.startswith("natext")} == {f"natext-1.0-{t}.whl" for t in NATEXT_TAGS}
    for w in wheels:
        meta, wheel_txt = check_wheel(w)
        pure = w.name.endswith("-py3-none-any.whl")
        assert f"Root-Is-Purelib: {'true' if pure else 'false'}" in wheel_txt
        # PEP 658 sidecar equals the wheel's METADATA
        side = (index_root / "files" / (w.name + ".metadata")).read_bytes()
        assert Metadata.from_email(side).name == meta.name
    app_meta, _ = check_wheel(index_root / "files" / "app-1.0-py3-none-any.whl")
    assert 'winonly; sys_platform == "win32"' in [str(r) for r in app_meta.requires_dist]
    newpy, _ = check_wheel(index_root / "files" / "newpy-1.0-py3-none-any.whl")
    assert str(newpy.requires_python) == ">=3.13"
    _, natext_wheel = check_wheel(index_root / "files" / f"natext-1.0-{NATEXT_TAGS[2]}.whl")
    assert "Tag: cp311-cp311-manylinux_2_17_x86_64\nTag: cp311-cp311-manylinux2014_x86_64\n" in natext_wheel


def test_sdists_are_valid_and_reproducible(index_root, tmp_path):
    sdist = index_root / "files" / "sdistonly-1.0.tar.gz"
    assert parse_sdist_filename(sdist.name)[0] == "sdistonly"
    with tarfile.open(sdist) as tf:
        names = set(tf.getnames())
        pkg_info = tf.extractfile("sdistonly-1.0/PKG-INFO").read()
        pyproject = tomllib.loads(tf.extractfile("sdistonly-1.0/pyproject.toml").read().decode())
    assert names == {f"sdistonly-1.0/{n}" for n in ("PKG-INFO", "pyproject.toml", "backend.py", "sdistonly.py")}
    meta = Metadata.from_email(pkg_info, validate=True)
    assert meta.metadata_version == "2.2" and not meta.dynamic
    assert pyproject["build-system"] == {"requires": [], "build-backend": "backend", "backend-path": ["."]}
    assert pyproject["project"]["name"] == "sdistonly"
    # Same spec -> byte-identical artefacts (stable hashes across runs).
    again = build_index(tmp_path / "again", [d for d in SPEC if d.name in ("sdistonly", "natext")])
    for f in (again / "files").iterdir():
        assert sha256_file(f) == sha256_file(index_root / "files" / f.name), f.name


def test_simple_pages(index_root):
    root_page = (index_root / "simple" / "index.html").read_text()
    for d in SPEC:
        assert f'href="{d.name}/"' in root_page
    page = (index_root / "simple" / "natext" / "index.html").read_text()
    for t in NATEXT_TAGS:
        fn = f"natext-1.0-{t}.whl"
        assert f'href="../../files/{fn}#sha256={sha256_file(index_root / "files" / fn)}"' in page
    assert 'data-requires-python="&lt;3.12"' in (index_root / "simple" / "oldpy" / "index.html").read_text()
    assert 'data-requires-python="&gt;=3.13"' in (index_root / "simple" / "newpy" / "index.html").read_text()
    both = (index_root / "simple" / "both" / "index.html").read_text()
    assert "both-2.0.tar.gz#sha256=" in both and "both-2.0-py3-none-any.whl#sha256=" in both


# --------------------------------------------------------------------------
# uv resolves per target against it
# --------------------------------------------------------------------------


def uv_compile(url, tmp: Path, platform_: str, python_version: str, reqs: str = "app\n", extra: tuple = (), **env):
    (tmp / "reqs.txt").write_text(reqs)
    out = tmp / "pylock.toml"
    run(
        [
            UV,
            "pip",
            "compile",
            "--no-config",
            "--python",
            sys.executable,
            "--index-url",
            url,
            "--python-platform",
            platform_,
            "--python-version",
            python_version,
            *extra,
            "-o",
            out,
            tmp / "reqs.txt",
        ],
        clean_env(tmp, **env),
    )
    return tomllib.loads(out.read_text())


@needs_uv
@pytest.mark.parametrize(
    "platform_, python_version, env, expected, natext_tag",
    [
        ("x86_64-pc-windows-msvc", "3.13", {}, {"app", "winonly", "newpy", "natext", "sdistonly"}, NATEXT_TAGS[0]),
        (
            "aarch64-apple-darwin",
            "3.12",
            {"MACOSX_DEPLOYMENT_TARGET": "11.0"},
            {"app", "posixonly", "macdep", "natext", "sdistonly"},
            NATEXT_TAGS[1],
        ),
    ],
)
def test_uv_compile_per_target(served, index_root, tmp_path, platform_, python_version, env, expected, natext_tag):
    lock = uv_compile(served, tmp_path, platform_, python_version, **env)
    pkgs = {p["name"]: p for p in lock["packages"]}
    assert set(pkgs) == expected
    files = index_root / "files"
    # Only the one wheel that fits the target is listed, with its sha256.
    [natext] = pkgs["natext"]["wheels"]
    assert natext["url"] == f"{served.files_url}/natext-1.0-{natext_tag}.whl"
    assert natext["hashes"]["sha256"] == sha256_file(files / f"natext-1.0-{natext_tag}.whl")
    # The sdist-only project appears with an sdist entry and no wheels.
    assert "wheels" not in pkgs["sdistonly"]
    assert pkgs["sdistonly"]["sdist"]["url"] == f"{served.files_url}/sdistonly-1.0.tar.gz"
    assert pkgs["sdistonly"]["sdist"]["hashes"]["sha256"] == sha256_file(files / "sdistonly-1.0.tar.gz")
    for name in expected - {"sdistonly"}:
        for w in pkgs[name]["wheels"]:
            assert w["hashes"]["sha256"] == sha256_file(files / w["url"].rsplit("/", 1)[1])


# --------------------------------------------------------------------------
# Sdists build offline with the in-tree backend
# --------------------------------------------------------------------------


def host_tag() -> str:
    impl = "cp" if sys.implementation.name == "cpython" else sys.implementation.name[:2]
    ver = "%d%d" % sys.version_info[:2]
    return f"{impl}{ver}-{impl}{ver}-" + re.sub(r"[-.]", "_", sysconfig.get_platform())


@needs_uv
@pytest.mark.parametrize("name, tag", [("sdistonly", "py3-none-any"), ("impure", None)])
def test_uv_build_wheel_from_sdist(index_root, tmp_path, name, tag):
    tag = tag or host_tag()
    out = tmp_path / "out"
    run(
        [
            UV,
            "build",
            "--wheel",
            "--no-config",
            "--offline",
            "--python",
            sys.executable,
            "-o",
            out,
            index_root / "files" / f"{name}-1.0.tar.gz",
        ],
        clean_env(tmp_path),
    )
    [wheel] = list(out.glob("*.whl"))
    assert wheel.name == f"{name}-1.0-{tag}.whl"
    check_wheel(wheel)


def test_pip_wheel_from_sdist(index_root, tmp_path):
    out = tmp_path / "out"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-index",
            "-w",
            out,
            index_root / "files" / "impure-1.0.tar.gz",
        ],
        clean_env(tmp_path),
    )
    assert [w.name for w in out.glob("*.whl")] == [f"impure-1.0-{host_tag()}.whl"]


# --------------------------------------------------------------------------
# Wheels install with pip
# --------------------------------------------------------------------------


def bare_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=False).create(path)
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def pip_into(py: Path, args: list, tmp: Path) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "pip", "--python", py, "install", *args], clean_env(tmp))


def test_pip_install_find_links(index_root, tmp_path):
    py = bare_venv(tmp_path / "venv")
    pip_into(py, ["--no-index", "--find-links", index_root / "files", "winonly", "sdistonly"], tmp_path)
    r = run([py, "-c", "import winonly, sdistonly; print(winonly.__version__, sdistonly.NAME)"], clean_env(tmp_path))
    assert r.stdout.split() == ["1.0", "sdistonly"]


@pytest.mark.skipif(
    not (sys.platform == "linux" and platform.machine() == "x86_64" and sys.version_info[:2] == (3, 11)),
    reason="natext only ships a cp311 manylinux x86_64 wheel",
)
def test_pip_install_from_served_index(served, tmp_path):
    py = bare_venv(tmp_path / "venv")
    pip_into(py, ["--index-url", served, "app"], tmp_path)
    mods = "app posixonly oldpy natext sdistonly".split()
    r = run([py, "-c", f"import {', '.join(mods)}; print('ok')"], clean_env(tmp_path))
    assert r.stdout.strip() == "ok"
    # Markers were honoured: no Windows/macOS/3.13-only packages.
    for absent in ("winonly", "macdep", "newpy"):
        assert subprocess.run([py, "-c", f"import {absent}"], capture_output=True).returncode != 0
    fetched = served.file_requests()
    assert f"/files/natext-1.0-{NATEXT_TAGS[2]}.whl" in fetched
    assert not any("win_amd64" in p or "macosx" in p for p in fetched)


# --------------------------------------------------------------------------
# New releases and request accounting
# --------------------------------------------------------------------------


@needs_uv
def test_add_release_and_request_log(tmp_path):
    root = build_index(tmp_path / "idx", [Dist("lib", "1.0"), Dist("tool", "1.0", requires=["lib"])])
    with serve_index(root) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/simple")
        lock = uv_compile(url, tmp_path, "x86_64-unknown-linux-gnu", "3.12", reqs="tool\n")
        assert {p["name"]: p["version"] for p in lock["packages"]} == {"lib": "1.0", "tool": "1.0"}
        assert url.counts["/simple/lib/"] >= 1
        # uv resolves from PEP 658 metadata: no wheel itself was downloaded.
        assert url.file_requests() == []
        assert "/files/lib-1.0-py3-none-any.whl.metadata" in url.file_requests(include_metadata=True)

        url.clear()
        assert add_release(root, Dist("lib", "1.1")) == ["lib-1.1-py3-none-any.whl"]
        # An existing -o pylock.toml acts as pin preferences: still 1.0 ...
        lock = uv_compile(url, tmp_path, "x86_64-unknown-linux-gnu", "3.12", reqs="tool\n")
        assert {p["name"]: p["version"] for p in lock["packages"]} == {"lib": "1.0", "tool": "1.0"}
        # ... until --upgrade (or a fresh output file).
        lock = uv_compile(url, tmp_path, "x86_64-unknown-linux-gnu", "3.12", reqs="tool\n", extra=("--upgrade",))
        assert {p["name"]: p["version"] for p in lock["packages"]} == {"lib": "1.1", "tool": "1.0"}
        # The old release is still listed, and cached metadata wasn't re-fetched.
        assert "lib-1.0-py3-none-any.whl" in (root / "simple" / "lib" / "index.html").read_text()
        assert url.file_requests(include_metadata=True) == ["/files/lib-1.1-py3-none-any.whl.metadata"]
