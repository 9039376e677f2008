"""preflight's decisions from recorded server facts: no host is booted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from devpi_airgap.core.errors import RemoteError
from devpi_airgap.core.inventory import Target
from devpi_airgap.offline.preflight import judge_facts
from testing.wheels import make_wheel

FACTS = {"machine": "x86_64", "libc": ["glibc", "2.36"], "ensurepip": True, "systemd": True}
TARGET = Target("server", ("manylinux_2_28_x86_64",), "3.11", "cp", (), serves_devpi=True)


def devpi_server_wheel(tmp_path: Path, version: str, requires: str) -> list[Path]:
    return [make_wheel(tmp_path, "devpi_server", version, headers=[("Requires-Python", requires)])]


def test_a_python_too_old_for_devpi_server_is_named_with_the_last_release_that_runs_there(tmp_path):
    wheels = devpi_server_wheel(tmp_path, "6.20.3", ">=3.9")
    with pytest.raises(RemoteError) as caught:
        judge_facts("old-host", {**FACTS, "python": "3.7"}, TARGET, wheels)
    message = str(caught.value)
    assert "old-host runs Python 3.7" in message
    assert "devpi-server 6.20.3" in message and ">=3.9" in message
    assert "the last devpi-server that supports Python 3.7 is 6.15.0" in message
    assert "Nothing was changed" in message and 'python: "3.7"' in message


def test_a_python_devpi_server_supports_but_the_target_does_not_match_asks_for_another_target(tmp_path):
    wheels = devpi_server_wheel(tmp_path, "6.20.3", ">=3.9")
    with pytest.raises(RemoteError, match=r"runs Python 3.9 on x86_64, but target 'server' is for Python 3.11"):
        judge_facts("host", {**FACTS, "python": "3.9"}, TARGET, wheels)


def test_a_matching_server_passes_and_a_delta_without_the_devpi_wheel_is_judged_on_the_rest(tmp_path):
    judge_facts("host", {**FACTS, "python": "3.11"}, TARGET, devpi_server_wheel(tmp_path, "6.20.3", ">=3.9"))
    judge_facts("host", {**FACTS, "python": "3.11"}, TARGET, [])
    with pytest.raises(RemoteError, match="glibc 2.17, older than the target's manylinux_2_28"):
        judge_facts("host", {**FACTS, "python": "3.11", "libc": ["glibc", "2.17"]}, TARGET, [])


def test_a_server_whose_venvs_get_a_pip_too_old_for_devpis_wheels_is_refused_with_the_files_named(tmp_path):
    wheels = [
        *devpi_server_wheel(tmp_path, "6.20.3", ">=3.9"),
        make_wheel(
            tmp_path, "argon2_cffi_bindings", "25.1.0", tag="cp39-abi3-manylinux_2_26_x86_64.manylinux_2_28_x86_64"
        ),
    ]
    with pytest.raises(RemoteError) as caught:
        judge_facts("rhel8", {**FACTS, "python": "3.11", "pip": "20.2.4"}, TARGET, wheels)
    message = str(caught.value)
    assert "a new venv on rhel8 gets pip 20.2.4" in message
    assert "argon2_cffi_bindings-25.1.0-cp39-abi3-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl" in message
    assert "needs pip 20.3" in message and "Nothing was changed" in message and "manylinux2014_x86_64" in message
    judge_facts("bullseye", {**FACTS, "python": "3.11", "pip": "20.3.4"}, TARGET, wheels)
