"""Checks before a deploy changes anything: the wheels at hand, and a server that can run them."""

from __future__ import annotations

import json
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion, Version

from devpi_airgap.core.errors import AirgapError, RemoteError
from devpi_airgap.core.inventory import Inventory, Target
from devpi_airgap.core.lock import read_lock
from devpi_airgap.core.metadata import read_metadata
from devpi_airgap.core.pip_versions import UnknownToPip, unknown_to_pip
from devpi_airgap.core.platforms import target_platform
from devpi_airgap.offline.health import service_active
from devpi_airgap.offline.programs import facts as facts_program
from devpi_airgap.offline.programs import port_free
from devpi_airgap.offline.remote import Host

DEVPI_SET = "devpi server"  # the resolution set whose wheels install devpi itself

# The newest devpi-server release whose Requires-Python admits each Python that
# devpi-server has since dropped, read off the index's files. A dropped
# Python's last release never changes; tests/online/test_real_index.py checks
# this table against the live index.
LAST_DEVPI_SERVER = {
    "2.7": "5.5.1",
    "3.4": "5.5.1",
    "3.5": "5.5.1",
    "3.6": "6.3.1",
    "3.7": "6.15.0",
    "3.8": "6.15.0",
}


def devpi_wheels(inventory: Inventory, target: Target, *, partial_ok: bool = False) -> tuple[list[Path], str]:
    """The wheels at hand that install devpi itself, and the devpi-server version the lock pins.

    A delta bundle carries only what changed, so with partial_ok some (or all)
    of them may be absent; the server must then already run that version.
    """
    directory = inventory.target_dir(target)
    if not directory.is_dir() and not partial_ok:
        raise AirgapError(
            f"no wheelhouse for target {target.name!r} at {directory}; "
            f"run `inv download --target {target.name}` on the online side and carry it over"
        )
    _, files = read_lock(inventory.lock_path(target))
    locked = [f for f in files if DEVPI_SET in f.sets]
    version = next((f.version for f in locked if f.name == "devpi-server"), None)
    wheels = [directory / f.filename for f in locked if (directory / f.filename).is_file()]
    if version is None or (len(wheels) < len(locked) and not partial_ok):
        missing = [f.filename for f in locked if not (directory / f.filename).is_file()]
        raise AirgapError(
            f"the wheelhouse for target {target.name!r} lacks the devpi-server wheels "
            f"({', '.join(missing[:5]) or 'none locked'}); run `inv download --target {target.name}`"
        )
    return wheels, version


def devpi_requires_python(wheels: list[Path]) -> tuple[str, SpecifierSet] | None:
    """The devpi-server version among these wheels and the Pythons it supports; None if it isn't at hand."""
    for wheel in wheels:
        name, version, _, _ = parse_wheel_filename(wheel.name)
        if name == "devpi-server":
            try:
                return str(version), SpecifierSet(read_metadata(wheel).get("Requires-Python") or "")
            except InvalidSpecifier:
                return None  # an unreadable floor: the install itself will say more than a guess here
    return None


def check_facts(host: Host, target: Target, wheels: list[Path]) -> None:
    """Refuse a server whose CPU, Python or libc cannot run the target's wheels, before installing anything."""
    judge_facts(host.name, json.loads(host.run_program(facts_program, step="inspect server").stdout), target, wheels)


def judge_facts(host_name: str, facts: dict, target: Target, wheels: list[Path]) -> None:
    """check_facts' decision, from facts already read."""
    platform = target_platform(target)
    markers = dict(platform.marker_env)
    where = f"{host_name} runs Python {facts['python']} on {facts['machine']}"
    if markers["sys_platform"] != "linux":
        raise RemoteError(
            f"inspect server: target {target.name!r} is for {markers['platform_system']}, but the "
            f"server is Linux; give servers.{host_name}.target a Linux target"
        )
    devpi = devpi_requires_python(wheels)
    if devpi and facts["python"] not in devpi[1]:
        raise RemoteError(_python_too_old(host_name, facts["python"], *devpi))
    if facts["python"] != target.python or facts["machine"] != markers["platform_machine"]:
        raise RemoteError(
            f"inspect server: {where}, but target {target.name!r} is for Python {target.python} on "
            f"{markers['platform_machine']}; point the server at a target with python: "
            f'"{facts["python"]}" and a {facts["machine"]} platform, then `inv download` it'
        )
    libc, version = facts["libc"]
    manylinux = [t for t in platform.platform_tags if t.startswith("manylinux_")]
    if libc == "glibc" and manylinux:
        needed = tuple(int(x) for x in manylinux[0].split("_")[1:3])
        if tuple(int(x) for x in version.split(".")[:2]) < needed:
            raise RemoteError(
                f"inspect server: {host_name} has glibc {version}, older than the target's "
                f"{manylinux[0]}; use an older manylinux platform for target {target.name!r}"
            )
    if not facts["ensurepip"]:
        raise RemoteError(f"inspect server: {host_name} lacks Python's venv support; install python3-venv there")
    pip = _pip_version(facts.get("pip"))
    unseen = unknown_to_pip((w.name for w in wheels), platform.tag_ranks, pip) if pip else []
    if unseen:
        raise RemoteError(_pip_too_old(host_name, facts["pip"], target, unseen))
    if not facts["systemd"]:
        raise RemoteError(f"inspect server: {host_name} is not running systemd, which the service needs")


def _pip_version(text: str | None) -> Version | None:
    """The pip a new venv on the server gets; None when unknown, and then the install itself says more."""
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def _pip_too_old(host_name: str, pip: str, target: Target, unseen: list[UnknownToPip]) -> str:
    files = "; ".join(map(str, unseen))
    return (
        f"inspect server: a new venv on {host_name} gets pip {pip} (from its Python's ensurepip), which cannot see "
        f"{len(unseen)} of the wheels that install devpi, so the install would find no matching distribution: "
        f"{files}. Nothing was changed. Give target {target.name!r} legacy manylinux platforms only (such as "
        f"manylinux2014_x86_64) and `inv download` it again, so that wheels that also carry the old name are "
        f"chosen; or give the server a Python whose venvs get pip {max(u.needs for u in unseen)} or newer"
    )


def _python_too_old(host_name: str, python: str, version: str, supported: SpecifierSet) -> str:
    last = LAST_DEVPI_SERVER.get(python)
    older = (
        f"the last devpi-server that supports Python {python} is {last}" if last else "only an older devpi-server does"
    )
    return (
        f"inspect server: {host_name} runs Python {python}, which devpi-server {version} in the wheelhouse "
        f"does not support (it needs Python {supported}); {older}. Nothing was changed. Upgrade the server "
        f"to a release whose Python is supported (Debian 11 or newer), or point servers.{host_name}.target at "
        f'a target with python: "{python}" so that `inv download` locks the devpi-server that runs there '
        "(devpi-airgap is tested with devpi-server 6.20 on Debian 11 to 13)"
    )


def check_port(host: Host, port: int) -> None:
    if service_active(host):
        return
    if not host.run_program(port_free, str(port), step="port check", check=False).ok:
        holder = host.run(f"ss -Hltnp 'sport = :{port}' 2>/dev/null", step="port check", check=False).stdout.strip()
        raise RemoteError(
            f"port check: port {port} on {host.name} is already taken{' by ' + holder if holder else ''}; "
            f"stop that service or set servers.{host.name}.port to a free port"
        )
