"""`fab deploy`: devpi-server as a hardened systemd service, its index, and the uploads.

Each change is a Step (see `steps`): it reads the server's state, diffs it
against what the inventory wants, and applies only the difference, so a second
run reports "no changes" and `--check` shows what a run would change without
changing anything. Passwords reach the server only through ssh's stdin or the
tunnelled HTTP API.
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable

from devpi_airgap.core.console import ProgressFactory, human_bytes, no_progress
from devpi_airgap.core.errors import AirgapError, RemoteError
from devpi_airgap.core.files import sha256_file
from devpi_airgap.core.inventory import Inventory, Server, Target
from devpi_airgap.core.lock import read_lock
from devpi_airgap.core.platforms import target_platform
from devpi_airgap.core.requirements import resolution_sets, uv_compile
from devpi_airgap.offline.backup import backup
from devpi_airgap.offline.credentials import Credentials
from devpi_airgap.offline.devpi_api import (
    DevpiClient,
    DevpiError,
    UploadResult,
    index_matches,
    plan_upload,
    upload_files,
)
from devpi_airgap.offline.health import journal, service_active, wait_healthy
from devpi_airgap.offline.layout import (
    FILES,
    SECRETFILE,
    SERVER_HOME,
    SERVERDIR,
    SERVICE_USER,
    UNIT_NAME,
    UNIT_PATH,
    VENV,
    WHEELS,
    venv_for,
)
from devpi_airgap.offline.nginx import NginxFront
from devpi_airgap.offline.programs import facts as facts_program
from devpi_airgap.offline.programs import port_free
from devpi_airgap.offline.remote import Host
from devpi_airgap.offline.steps import Outcome, Runner, Step
from devpi_airgap.offline.systemd_unit import render_unit

DEVPI_SET = "devpi server"


@dataclass
class DeployResult:
    """What a deploy did (or, under --check, would do), for the task layer to show."""

    host: str
    check: bool
    outcomes: list[Outcome]
    user_url: str = ""
    trusted_host: str | None = None  # pip must be told to trust a plain-http index on another host
    conflicts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(outcome.changes for outcome in self.outcomes)


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


# ---- checks before any change --------------------------------------------------------------


def check_facts(host: Host, target: Target) -> None:
    """Refuse a server whose CPU, Python or libc cannot run the target's wheels, before installing anything."""
    facts = json.loads(host.run_program(facts_program, step="inspect server").stdout)
    platform = target_platform(target)
    markers = dict(platform.marker_env)
    where = f"{host.name} runs Python {facts['python']} on {facts['machine']}"
    if markers["sys_platform"] != "linux":
        raise RemoteError(
            f"inspect server: target {target.name!r} is for {markers['platform_system']}, but the "
            f"server is Linux; give servers.{host.name}.target a Linux target"
        )
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
                f"inspect server: {host.name} has glibc {version}, older than the target's "
                f"{manylinux[0]}; use an older manylinux platform for target {target.name!r}"
            )
    if not facts["ensurepip"]:
        raise RemoteError(f"inspect server: {host.name} lacks Python's venv support; install python3-venv there")
    if not facts["systemd"]:
        raise RemoteError(f"inspect server: {host.name} is not running systemd, which the service needs")


def check_port(host: Host, port: int) -> None:
    if service_active(host):
        return
    if not host.run_program(port_free, str(port), step="port check", check=False).ok:
        holder = host.run(f"ss -Hltnp 'sport = :{port}' 2>/dev/null", step="port check", check=False).stdout.strip()
        raise RemoteError(
            f"port check: port {port} on {host.name} is already taken{' by ' + holder if holder else ''}; "
            f"stop that service or set servers.{host.name}.port to a free port"
        )


# ---- steps on the host ---------------------------------------------------------------------


class CopyWheels(Step):
    """The wheels that install devpi, in WHEELS; compared by sha256, so only missing or changed ones travel."""

    name = "copy wheels"

    def __init__(self, wheels: list[Path]):
        self.wheels = wheels

    @staticmethod
    @cache
    def _local_sha256(path: Path) -> str:
        return sha256_file(path)

    def read(self, host: Host) -> dict[str, str]:
        listing = host.run(
            f"if [ -d {WHEELS} ]; then cd {WHEELS} && find . -maxdepth 1 -name '*.whl' -exec sha256sum {{}} +; fi",
            step=self.name,
        ).stdout
        return {line.split()[1][2:]: line.split()[0] for line in listing.splitlines() if line.strip()}

    def missing(self, present: dict[str, str]) -> list[Path]:
        return [w for w in self.wheels if present.get(w.name) != self._local_sha256(w)]

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


class DevpiInit(Step):
    """`devpi-init` once, with the root password on stdin and in devpi-init's environment, never in an argv."""

    name = "devpi-init"

    def __init__(self, root_password: str):
        self.root_password = root_password

    def read(self, host: Host) -> bool:
        return host.run(f"test -e {SERVERDIR}/.nodeinfo", step=self.name, check=False).ok

    def diff(self, initialised: bool) -> list[str]:
        return [] if initialised else [f"initialise {SERVERDIR}"]

    def apply(self, host: Host, initialised: bool) -> list[str]:
        host.run(
            f"set -e; install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0700 {SERVER_HOME} {SERVERDIR}; "
            "IFS= read -r DEVPISERVER_ROOT_PASSWD; export DEVPISERVER_ROOT_PASSWD; "
            f"runuser -u {SERVICE_USER} -- {VENV}/bin/devpi-init --serverdir {SERVERDIR} --no-root-pypi",
            step=self.name,
            stdin=self.root_password + "\n",
        )
        return [f"{SERVERDIR} initialised, root password set"]


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


# ---- steps through devpi's HTTP API ----------------------------------------------------------


@dataclass(frozen=True)
class IndexFacts:
    user_exists: bool
    index: dict | None  # the index's configuration, None when absent


class UserAndIndex(Step):
    """The index owner and a stage index with `bases=` (never an upstream) and `volatile=False`."""

    name = "user and index"

    def __init__(self, client: DevpiClient | None, server: Server, credentials: Credentials | None):
        self.client = client  # None while devpi is not serving yet (only under --check)
        self.server = server
        self.credentials = credentials

    def read(self, host: Host) -> IndexFacts:
        if self.client is None:
            return IndexFacts(False, None)
        return IndexFacts(
            self.client.user_exists(self.server.user), self.client.index_config(self.server.user, self.server.index)
        )

    def diff(self, facts: IndexFacts) -> list[str]:
        user, index = self.server.user, f"{self.server.user}/{self.server.index}"
        changes = [] if facts.user_exists else [f"user {user} created"]
        if facts.index is None or not index_matches(facts.index, bases=(), volatile=False):
            changes.append(f"index {index} set to bases= volatile=False")
        return changes

    def apply(self, host: Host, facts: IndexFacts) -> list[str]:
        server, client = self.server, self.client
        client.login("root", self.credentials.root_password)
        client.ensure_user(server.user, self.credentials.user_password)
        client.ensure_index(server.user, server.index, bases=(), volatile=False)
        return self.diff(facts)


class Upload(Step):
    """Every wheel of every carried target that the index lacks, by name and sha256."""

    name = "upload"

    def __init__(
        self,
        client: DevpiClient | None,
        server: Server,
        credentials: Credentials | None,
        files: list[Path],
        progress: ProgressFactory,
    ):
        self.client = client
        self.server = server
        self.credentials = credentials
        self.files = files
        self.progress = progress
        self.result = UploadResult()

    def read(self, host: Host) -> dict[str, str]:
        return self.client.index_files(self.server.user, self.server.index) if self.client else {}

    def diff(self, remote: dict[str, str]) -> list[str]:
        # Conflicts are problems, not changes: the index keeps its copy, and deploy says so at the end.
        self.result = plan_upload(
            self.files, remote, CopyWheels._local_sha256, f"{self.server.user}/{self.server.index}"
        )
        todo = self.result.todo
        return [f"{len(todo)} files, {human_bytes(sum(p.stat().st_size for p in todo))} to upload"] if todo else []

    def apply(self, host: Host, remote: dict[str, str]) -> list[str]:
        server = self.server
        self.client.login(server.user, self.credentials.user_password)
        total = sum(p.stat().st_size for p in self.result.todo)
        with self.progress(f"uploading to {server.user}/{server.index}", total) as advance:
            upload_files(
                self.client, server.user, server.index, self.result, progress=lambda name, nbytes: advance(nbytes)
            )
        return [f"{len(self.result.uploaded)} files, {human_bytes(self.result.bytes_uploaded)}"]


def target_files(inventory: Inventory) -> list[Path]:
    """Every file of every target's wheelhouse, once per name."""
    files: dict[str, Path] = {}
    for target in inventory.targets.values():
        directory = inventory.target_dir(target)
        if directory.is_dir():
            for path in sorted(directory.glob("*.whl")):
                files.setdefault(path.name, path)
    return list(files.values())


def check_targets(base_url: str, inventory: Inventory, server: Server) -> list[str]:
    """Resolve every target's requirements from the live index alone; returns the problems."""
    index_url = f"{base_url}/{server.user}/{server.index}/+simple"
    # Only what this machine carries was uploaded; a target never downloaded here is not ours to check.
    carried = [
        t for t in inventory.targets.values() if inventory.lock_path(t).exists() and inventory.target_dir(t).is_dir()
    ]
    jobs = [(t, s) for t in carried for s in resolution_sets(t)]

    def check(job) -> str | None:
        target, resolution = job
        with tempfile.TemporaryDirectory(prefix="airgap-check-") as tmp:
            result = uv_compile(resolution, target_platform(target), index_url, Path(tmp), ("--only-binary", ":all:"))
        if result.returncode:
            return f"{target.name} ({resolution.label}): " + " ".join(result.stderr.split())[-600:]
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        return [problem for problem in pool.map(check, jobs) if problem]


# ---- where users point their clients -----------------------------------------------------


def user_url(host: Host, server: Server) -> str:
    """The index URL users are given: through the nginx front when there is one."""
    front = server.front
    if front is None:
        return f"http://{host.address}:{server.port}/{server.user}/{server.index}/+simple/"
    scheme, default_port = ("https", 443) if front.tls_cert else ("http", 80)
    port = "" if front.port == default_port else f":{front.port}"
    return f"{scheme}://{front.server_name}{port}/{server.user}/{server.index}/+simple/"


def trusted_host(host: Host, server: Server) -> str | None:
    """pip ignores a plain-http index from another host unless told to trust it; None over TLS."""
    if server.front and server.front.tls_cert:
        return None
    return server.front.server_name if server.front else host.address


def client_config(host: Host, server: Server) -> str:
    """What a user pastes: a pip.conf, a uv index, and a one-off pip command."""
    url = user_url(host, server)
    trusted = trusted_host(host, server)
    return f"""\
# pip.conf (Linux: ~/.config/pip/pip.conf, Windows: %APPDATA%\\pip\\pip.ini)
[global]
index-url = {url}
{f"trusted-host = {trusted}" + chr(10) if trusted else ""}
# pyproject.toml, for uv (or the same [[index]] table in uv.toml)
[[tool.uv.index]]
name = "airgap"
url = "{url}"
default = true

# one-off
pip install --index-url {url}{f" --trusted-host {trusted}" if trusted else ""} PACKAGE
"""


# ---- failures mid-upload -----------------------------------------------------------------


def upload_failure(host: Host, server: Server, exc: DevpiError) -> RemoteError:
    """Why talking to devpi failed mid-deploy, worked out on the server, and what to do about it."""
    again = (
        "then re-run deploy: files already on the index are kept and only the missing ones are uploaded "
        "(a half-sent file never reaches the index)"
    )
    if host.is_remote and not host.c.is_connected:
        return RemoteError(
            f"upload: the SSH connection to {host.name} broke mid-upload ({exc}); once {host.name} "
            f"answers over SSH again, {again}"
        )
    try:
        free_kb = host.run(
            f"df -Pk {FILES} {SERVERDIR} 2>/dev/null | awk 'NR>1 {{print $4}}' | sort -n | head -1",
            step="upload",
            check=False,
        ).stdout.strip()
        logged = journal(host, 200)
    except AirgapError:
        return RemoteError(
            f"upload: the connection to {host.name} broke mid-upload ({exc}); once {host.name} "
            f"answers over SSH again, {again}"
        )
    low = free_kb.isdigit() and int(free_kb) < 64 * 1024
    if "No space left" in str(exc) or ((exc.status or 0) >= 500 and (low or "No space left" in logged)):
        return RemoteError(
            f"upload: the disk holding {SERVERDIR} on {host.name} is full "
            f"({int(free_kb) // 1024 if free_kb.isdigit() else '?'} MB free; the server said: {exc}). "
            f"Free space there (or grow that filesystem), {again}"
        )
    systemd_lines = [line for line in logged.splitlines() if " INFO " not in line][-8:]
    return RemoteError(
        f"upload: devpi-server on {host.name} stopped answering or the connection to it broke "
        f"mid-upload ({exc}). Its journal:\n{chr(10).join(systemd_lines)}\nFix any cause shown above, {again}"
    )


@contextmanager
def explained_upload_errors(host: Host, server: Server):
    try:
        yield
    except DevpiError as exc:
        raise upload_failure(host, server, exc) from None


@contextmanager
def devpi_api(host: Host, server: Server, *, serving: bool):
    """A client for devpi's API through the SSH connection, or None while devpi is not up (only under --check)."""
    if not serving:
        yield None, None
        return
    with host.http(server.port) as base_url, DevpiClient(base_url) as client, explained_upload_errors(host, server):
        yield base_url, client


# ---- the whole deploy ----------------------------------------------------------------------


def prepare_host(
    runner: Runner,
    inventory: Inventory,
    server: Server,
    *,
    partial_ok: bool = False,
    before_upgrade: Callable[[], str] = lambda: "",
) -> DevpiVenv:
    """What primaries and replicas share: checks, wheels, service user and venv. Returns the venv step."""
    host = runner.host
    target = inventory.targets[server.target]
    wheels, version = devpi_wheels(inventory, target, partial_ok=partial_ok)
    host.become_root()
    check_facts(host, target)
    check_port(host, server.port)
    runner.run(CopyWheels(wheels))
    runner.run(ServiceUser())
    venv = DevpiVenv(version, server.port, wheels_at_hand=bool(wheels), before_upgrade=before_upgrade)
    runner.run(venv)
    return venv


def finish(runner: Runner, server: Server, problems: list[str], conflicts: list[tuple[str, str]]) -> DeployResult:
    if problems:
        raise AirgapError("the index cannot serve every target yet:\n" + "\n".join(f"  - {p}" for p in problems))
    if not runner.check:
        runner.record("every target resolves from the index alone")
    host = runner.host
    return DeployResult(
        host.name, runner.check, runner.outcomes, user_url(host, server), trusted_host(host, server), conflicts
    )


def deploy(
    runner: Runner,
    inventory: Inventory,
    server: Server,
    credentials: Credentials | None,
    *,
    progress: ProgressFactory = no_progress,
    from_bundle: bool = False,
    after: list[Step] = (),
) -> DeployResult:
    """Converge one primary (or standalone) devpi server; `after` are steps that only a full success may run.

    Under runner.check nothing on the server changes and no credentials are needed.
    """
    host = runner.host
    venv = prepare_host(
        runner,
        inventory,
        server,
        partial_ok=from_bundle,
        before_upgrade=lambda: str(backup(host, server, inventory.path.parent / "backups")),
    )
    runner.run(SecretFile())
    runner.run(DevpiInit(credentials.root_password if credentials else ""))
    runner.run(ServiceUnit(unit_for(server, has_replicas=bool(inventory.replicas_of(server))), lambda: venv.fresh))
    serving = not runner.check or service_active(host)
    if not runner.check:
        wait_healthy(host, server.port)
    if server.front:
        largest_wheel = max((f.stat().st_size for f in target_files(inventory)), default=0)
        runner.run(NginxFront(server, has_replicas=bool(inventory.replicas_of(server)), max_body_bytes=largest_wheel))
    with devpi_api(host, server, serving=serving) as (base_url, client):
        runner.run(UserAndIndex(client, server, credentials))
        upload = Upload(client, server, credentials, target_files(inventory), progress)
        runner.run(upload)
        problems = [] if runner.check else check_targets(base_url, inventory, server)
    result = finish(runner, server, problems, upload.result.conflicts)
    if not result.conflicts:
        for step in after:
            runner.run(step)
    return result


def upload_only(
    runner: Runner,
    inventory: Inventory,
    server: Server,
    credentials: Credentials | None,
    *,
    progress: ProgressFactory = no_progress,
) -> DeployResult:
    """Just the upload step, for a server deploy already set up."""
    host = runner.host
    host.become_root()
    wait_healthy(host, server.port)
    with devpi_api(host, server, serving=True) as (_, client):
        upload = Upload(client, server, credentials, target_files(inventory), progress)
        runner.run(upload)
    return DeployResult(host.name, runner.check, runner.outcomes, conflicts=upload.result.conflicts)


def conflicts_error(conflicts: list[tuple[str, str]]) -> AirgapError:
    return AirgapError(
        f"{len(conflicts)} files conflict with different files of the same name on the index "
        "(listed above); the index keeps its copies. Remove the stale files from the wheelhouse."
    )
