"""The steps that set up devpi on the host itself: wheels, service user, venv, secret, devpi-init, unit."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from devpi_airgap.core.console import human_bytes
from devpi_airgap.core.errors import RemoteError
from devpi_airgap.core.files import scratch_prefix, sha256_cached
from devpi_airgap.core.inventory import Server
from devpi_airgap.offline.credentials import Credentials
from devpi_airgap.offline.devpi_api import seed_forms
from devpi_airgap.offline.health import service_active, wait_healthy
from devpi_airgap.offline.layout import (
    SECRETFILE,
    SEED,
    SERVER_HOME,
    SERVERDIR,
    SERVICE_USER,
    UNIT_NAME,
    UNIT_PATH,
    VENV,
    WHEELS,
    venv_for,
)
from devpi_airgap.offline.programs import seed_index
from devpi_airgap.offline.remote import Host
from devpi_airgap.offline.steps import Step
from devpi_airgap.offline.systemd_unit import render_unit


class CopyWheels(Step):
    """The wheels that install devpi, in WHEELS; compared by sha256, so only missing or changed ones travel."""

    name = "copy wheels"

    def __init__(self, wheels: list[Path]):
        self.wheels = wheels

    def read(self, host: Host) -> dict[str, str]:
        listing = host.run(
            f"if [ -d {WHEELS} ]; then cd {WHEELS} && find . -maxdepth 1 -name '*.whl' -exec sha256sum {{}} +; fi",
            step=self.name,
        ).stdout
        return {line.split()[1][2:]: line.split()[0] for line in listing.splitlines() if line.strip()}

    def missing(self, present: dict[str, str]) -> list[Path]:
        return [w for w in self.wheels if present.get(w.name) != sha256_cached(w)]

    def diff(self, present: dict[str, str]) -> list[str]:
        missing = self.missing(present)
        return [f"{len(missing)} to copy"] if missing else []

    def apply(self, host: Host, present: dict[str, str]) -> list[str]:
        missing = self.missing(present)
        host.run(f"mkdir -p {WHEELS}", step=self.name)
        for wheel in missing:
            host.put(wheel, f"{WHEELS}/{wheel.name}", step=self.name)
        return [f"{len(missing)} copied"]


class ServiceUser(Step):
    name = "system user"

    def read(self, host: Host) -> bool:
        return host.run(f"id -u {SERVICE_USER}", step=self.name, check=False).ok

    def diff(self, exists: bool) -> list[str]:
        return [] if exists else [f"create {SERVICE_USER}"]

    def apply(self, host: Host, exists: bool) -> list[str]:
        host.run(
            f"useradd --system --user-group --home-dir {SERVER_HOME} --shell /usr/sbin/nologin {SERVICE_USER}",
            step=self.name,
        )
        return [f"created {SERVICE_USER}"]


@dataclass(frozen=True)
class VenvFacts:
    installed: str | None  # the devpi-server version VENV runs, if any
    is_link: bool  # False for a venv from before versioned venvs
    service_active: bool


class DevpiVenv(Step):
    """devpi-server `version` in a venv of its own; a running service is upgraded with a rollback."""

    name = "venv"

    def __init__(
        self, version: str, port: int, *, wheels_at_hand: bool = True, before_upgrade: Callable[[], str] = lambda: ""
    ):
        self.version = version
        self.port = port
        self.wheels_at_hand = wheels_at_hand
        self.before_upgrade = before_upgrade
        self.fresh = False  # set by apply: a new venv the service must be (re)started on

    def read(self, host: Host) -> VenvFacts:
        current = host.run(f"{VENV}/bin/devpi-server --version", step=self.name, check=False)
        return VenvFacts(
            current.stdout.strip() if current.ok else None,
            host.run(f"test -L {VENV}", step=self.name, check=False).ok,
            service_active(host),
        )

    def diff(self, facts: VenvFacts) -> list[str]:
        if facts.installed == self.version:
            return []
        if not self.wheels_at_hand:
            raise RemoteError(
                f"venv: the server has no devpi-server {self.version} and this delta bundle does not "
                "carry its wheels; deploy a full bundle (`inv bundle --full`) first"
            )
        if facts.installed and facts.service_active:
            return [f"upgrade devpi-server {facts.installed} -> {self.version}, after a backup"]
        return [f"install devpi-server {self.version} in {venv_for(self.version)}"]

    def apply(self, host: Host, facts: VenvFacts) -> list[str]:
        current = facts.installed
        if current and not facts.is_link:
            # A venv from before versioned venvs: give it its versioned name so it can be rolled back to.
            host.run(f"mv -T {VENV} {venv_for(current)} && ln -s {venv_for(current)} {VENV}", step=self.name)
        if current and facts.service_active:
            backup = self.before_upgrade()
            return [f"backup before upgrade: {backup}", upgrade(host, current, self.version, self.port)]
        _point_venv_at(host, _install_venv(host, self.version))
        self.fresh = True
        return [f"devpi-server {self.version} installed in {venv_for(self.version)}"]


def _installed_version(host: Host) -> str | None:
    current = host.run(f"{VENV}/bin/devpi-server --version", step="venv", check=False)
    return current.stdout.strip() if current.ok else None


def _install_venv(host: Host, version: str) -> str:
    path = venv_for(version)
    pip = (
        f"PIP_CONFIG_FILE=/dev/null PIP_NO_INPUT=1 {path}/bin/pip install --quiet --no-index "
        f"--find-links {WHEELS} devpi-server=={version} devpi-web devpi-client"
    )
    host.run(f"set -e; rm -rf {path}; python3 -m venv {path}; {pip}", step="venv")
    return path


def _point_venv_at(host: Host, path: str) -> None:
    # rename(2) over the symlink: the unit never sees a missing venv.
    host.run(f"ln -sfn {path} {VENV}.new && mv -Tf {VENV}.new {VENV}", step="switch venv")


def upgrade(host: Host, old: str, new: str, port: int) -> str:
    """Switch the running service to a new devpi-server; roll back to the old venv unless it comes up healthy."""
    path = _install_venv(host, new)
    _point_venv_at(host, path)
    host.run(f"systemctl restart {UNIT_NAME}", step="upgrade", check=False)
    try:
        wait_healthy(host, port)
        if _installed_version(host) != new:
            raise RemoteError(f"upgrade: {VENV} does not report devpi-server {new}")
    except RemoteError as exc:
        _point_venv_at(host, venv_for(old))
        host.run(f"systemctl reset-failed {UNIT_NAME}; systemctl restart {UNIT_NAME}", step="roll back", check=False)
        wait_healthy(host, port)
        host.run(f"rm -rf {path}", step="roll back", check=False)
        raise RemoteError(
            f"upgrade: devpi-server {new} did not come up healthy, so {host.name} was rolled back to "
            f"{old}, which is serving again. What failed:\n{exc}"
        ) from None
    return f"upgraded devpi-server {old} -> {new} (previous venv kept for a rollback)"


class SecretFile(Step):
    """devpi's token-signing secret, so logins survive restarts; 0600 and the service user's alone."""

    name = "secret file"

    def read(self, host: Host) -> str:
        state = host.run(f"stat -c '%U %a' {SECRETFILE}", step=self.name, check=False)
        return state.stdout.strip() if state.ok else ""

    def diff(self, owner_and_mode: str) -> list[str]:
        return [] if owner_and_mode == f"{SERVICE_USER} 600" else [f"write {SECRETFILE} (0600)"]

    def apply(self, host: Host, owner_and_mode: str) -> list[str]:
        host.run(
            f"set -e; install -d -o root -g root -m 0755 {Path(SECRETFILE).parent}; "
            f"test -s {SECRETFILE} || {VENV}/bin/devpi-gen-secret --secretfile {SECRETFILE}; "
            f"chown {SERVICE_USER}:{SERVICE_USER} {SECRETFILE}; chmod 0600 {SECRETFILE}",
            step=self.name,
        )
        return [f"{SECRETFILE} (0600)"]


class SeedServer(Step):
    """A fresh SERVERDIR made by `devpi-import` of the wheels into the user's index, instead of devpi-init.

    Why: devpi-server takes an upload slowly (it parses the multipart body line
    by line and commits once per file); devpi-import takes files from disk. The
    index ends up as an upload of the same files leaves it (see
    `programs.seed_index`), and the user and upload steps after this one find
    nothing left to do. A server already initialised is left to those steps.
    Passwords travel on stdin; the root password reaches devpi-import through its environment.
    """

    name = "devpi-import"

    def __init__(self, server: Server, credentials: Credentials | None, files: list[Path]):
        self.server = server
        self.credentials = credentials
        self.files = files

    def read(self, host: Host) -> bool:
        return host.run(f"test -e {SERVERDIR}/.nodeinfo", step=self.name, check=False).ok

    def diff(self, initialised: bool) -> list[str]:
        if initialised:
            return []
        size = human_bytes(sum(p.stat().st_size for p in self.files))
        return [
            f"initialise {SERVERDIR} with {len(self.files)} files, {size} in {self.server.user}/{self.server.index}"
        ]

    def apply(self, host: Host, initialised: bool) -> list[str]:
        with tempfile.TemporaryDirectory(prefix=scratch_prefix(None, "airgap-seed-")) as tmp:
            forms = Path(tmp) / seed_index.FORMS
            forms.write_text(json.dumps(seed_forms(self.files, sha256_cached)))
            host.run(f"install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0700 {SERVER_HOME}", step=self.name)
            try:
                host.put_files([*self.files, forms], SEED, step=self.name)
                host.run(f"chown -R {SERVICE_USER}:{SERVICE_USER} {SEED}", step=self.name)
                host.run_program(
                    seed_index,
                    SERVERDIR,
                    SEED,
                    self.server.user,
                    self.server.index,
                    step=self.name,
                    python=f"{VENV}/bin/python",
                    user=SERVICE_USER,
                    stdin=json.dumps(
                        {
                            "root_password": self.credentials.root_password,
                            "user_password": self.credentials.user_password,
                        }
                    ),
                )
            finally:
                host.run(f"rm -rf {SEED}", step=self.name, check=False)
        return self.diff(initialised)


@dataclass(frozen=True)
class ServiceFacts:
    unit_text: str | None  # None when the unit file is absent (or, for a packaged service, not ours to write)
    enabled: bool
    active: bool


def read_service(host: Host, unit: str, path: str | None, step: str) -> ServiceFacts:
    text = host.run(f"cat {path}", step=step, check=False) if path else None
    return ServiceFacts(
        text.stdout if text is not None and text.ok else None,
        host.run(f"systemctl is-enabled --quiet {unit}", step=step, check=False).ok,
        host.run(f"systemctl is-active --quiet {unit}", step=step, check=False).ok,
    )


def service_diff(facts: ServiceFacts, *, refresh: str | None) -> list[str]:
    """Enable and start a unit, or `refresh` ("restart", "reload") it when it already runs."""
    changes = [] if facts.enabled else ["enabled"]
    if not facts.active:
        changes.append("started")
    elif refresh:
        changes.append(f"{refresh}ed")
    return changes


def apply_service(host: Host, unit: str, changes: list[str], step: str) -> None:
    if "enabled" in changes:
        host.run(f"systemctl enable --quiet {unit}", step=step)
    if "started" in changes:
        # A unit that hit its start limit refuses `start` until its failure is reset.
        host.run(f"systemctl reset-failed {unit}; systemctl start {unit}", step=step, check=False)
    for refresh in ("restart", "reload"):
        if f"{refresh}ed" in changes:
            host.run(f"systemctl {refresh} {unit}", step=step, check=False)


class ServiceUnit(Step):
    """The hardened devpi.service, enabled and running; restarted when it or its venv changed."""

    name = "systemd unit"

    def __init__(self, unit_text: str, restart: Callable[[], bool]):
        self.unit_text = unit_text
        self.restart = restart  # asked at diff time: an earlier step may have made a restart necessary

    def read(self, host: Host) -> ServiceFacts:
        return read_service(host, UNIT_NAME, UNIT_PATH, self.name)

    def diff(self, facts: ServiceFacts) -> list[str]:
        rewrite = facts.unit_text != self.unit_text
        changes = [f"{UNIT_PATH} written"] if rewrite else []
        return changes + service_diff(facts, refresh="restart" if rewrite or self.restart() else None)

    def apply(self, host: Host, facts: ServiceFacts) -> list[str]:
        changes = self.diff(facts)
        if facts.unit_text != self.unit_text:
            host.run(
                f"cat > {UNIT_PATH}.tmp && mv -f {UNIT_PATH}.tmp {UNIT_PATH} && systemctl daemon-reload",
                step=self.name,
                stdin=self.unit_text,
            )
        apply_service(host, UNIT_NAME, changes, self.name)
        return changes


def unit_for(server: Server, *, primary_url: str | None = None, has_replicas: bool = False) -> str:
    """A replica runs with --primary-url; a primary serves the replication protocol only when asked to."""
    role_args = ["--primary-url", primary_url] if primary_url else ["--role", "primary"] if has_replicas else []
    return render_unit(
        venv=VENV,
        serverdir=SERVERDIR,
        secretfile=SECRETFILE,
        host="0.0.0.0",
        port=server.port,
        offline_mode=primary_url is None,
        extra_args=role_args,
    )
