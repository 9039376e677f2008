"""isolated_env: pip and uv see only what we pass, and a dropped lookup costs uv a second, not five."""

from __future__ import annotations

from devpi_airgap.core.isolation import isolated_env


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
