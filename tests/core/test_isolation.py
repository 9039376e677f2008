"""isolated_env: pip and uv see only what we pass, a dropped lookup costs uv a second, not five, and what a child
says is read back whatever the machine's code page."""

from __future__ import annotations

import ast
import subprocess
import sys

from devpi_airgap.core.isolation import isolated_env
from testing.tasks import REPO


def test_the_users_pip_and_uv_settings_never_reach_them(monkeypatch):
    monkeypatch.setenv("PIP_FIND_LINKS", "/somewhere")
    monkeypatch.setenv("UV_INDEX_URL", "http://elsewhere/simple")
    monkeypatch.setenv("UV_CACHE_DIR", "/cache")  # where to cache, never what is chosen: kept
    env = isolated_env()
    assert "PIP_FIND_LINKS" not in env and "UV_INDEX_URL" not in env
    assert env["UV_CACHE_DIR"] == "/cache" and env["UV_NO_CONFIG"] == "1" and env["UV_PYTHON_DOWNLOADS"] == "never"


def test_a_dropped_lookup_is_asked_again_after_a_second_unless_the_user_says_otherwise(monkeypatch):
    monkeypatch.delenv("RES_OPTIONS", raising=False)
    env = isolated_env()
    assert env["RES_OPTIONS"] == "timeout:1 attempts:3"
    monkeypatch.setenv("RES_OPTIONS", "timeout:3")
    assert isolated_env()["RES_OPTIONS"] == "timeout:3"


def test_uv_trusts_the_systems_store_as_our_downloads_do_unless_the_user_says_no(monkeypatch):
    monkeypatch.delenv("UV_SYSTEM_CERTS", raising=False)
    assert isolated_env()["UV_SYSTEM_CERTS"] == "true"
    monkeypatch.setenv("UV_SYSTEM_CERTS", "0")  # which CAs to trust, never what is chosen: the user's is kept
    assert isolated_env()["UV_SYSTEM_CERTS"] == "0"


def test_a_python_child_writes_utf8_whatever_the_users_environment_says(monkeypatch):
    """On Windows a child writes its code page (cp949 on a Korean PC) unless told; here latin-1 stands in for it."""
    monkeypatch.setenv("PYTHONIOENCODING", "latin-1")
    said = subprocess.run(
        [sys.executable, "-c", r"print('C:\\Users\\김민수\\AppData')"],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        env=isolated_env(),
    )
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() == "C:\\Users\\김민수\\AppData"


def test_reading_what_a_child_says_never_fails_on_its_encoding():
    """Every child we read as text is read with errors= set: uv's UTF-8, or a console program's code page, can carry
    a path under C:\\Users\\김민수, and a decoding error would end the run in a traceback."""
    unguarded = []
    for path in (REPO / "devpi_airgap").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("run", "Popen", "check_output"):
                given = {k.arg for k in node.keywords}
                if given & {"text", "encoding", "universal_newlines"} and "errors" not in given:
                    unguarded.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert unguarded == []
