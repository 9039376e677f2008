"""`fab deploy`: devpi-server as a hardened systemd service, its index, and the uploads.

Every step reads the server's current state first and acts only on the
difference (pyinfra style), so a second run reports "no changes". Passwords
reach the server only through ssh's stdin or the tunnelled HTTP API.
"""

from __future__ import annotations

import json
import shlex
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devpi_airgap.core.console import byte_progress, err, human_bytes, out, table
from devpi_airgap.offline.credentials import Credentials
from devpi_airgap.offline.devpi_api import DevpiClient, DevpiError, upload_missing
from devpi_airgap.core.errors import AirgapError
from devpi_airgap.core.inventory import Inventory, Server, Target
from devpi_airgap.offline.nginx import ensure_front
from devpi_airgap.core.platforms import target_platform
from devpi_airgap.offline.remote import Host, RemoteError
from devpi_airgap.online.resolve import resolution_sets, uv_compile
from devpi_airgap.offline.systemd_unit import UNIT_NAME, render_unit
from devpi_airgap.core.wheelhouse import read_lock, sha256_file

PREFIX = "/opt/devpi-airgap"
VENV = f"{PREFIX}/venv"
WHEELS = f"{PREFIX}/wheels"
SERVERDIR = "/var/lib/devpi/server"
SECRETFILE = "/etc/devpi-airgap/secret"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
SERVICE_USER = "devpi"
DEVPI_SET = "devpi server"
HEALTH_TIMEOUT = 90
BACKUPS_KEPT = 7

_FACTS = r"""
import json, os, platform, sys
print(json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "machine": platform.machine(),
    "libc": platform.libc_ver(),
    "ensurepip": __import__("importlib.util").util.find_spec("ensurepip") is not None,
    "systemd": os.path.isdir("/run/systemd/system"),
}))
"""


@dataclass
class Report:
    host: str
    steps: list[tuple[str, str]] = field(default_factory=list)  # (step, what changed or "")

    def note(self, step: str, change: str = "") -> None:
        self.steps.append((step, change))
        mark = "[yellow]changed[/]" if change else "[green]ok[/]"
        err.print(f"  {mark} {step}{': ' + change if change else ''}")

    @property
    def changed(self) -> bool:
        return any(change for _, change in self.steps)


def devpi_wheels(inventory: Inventory, target: Target, *, partial_ok: bool = False) -> tuple[list[Path], str]:
    """The wheels at hand that install devpi itself, and the devpi-server version the lock pins.

    A delta bundle carries only what changed, so with partial_ok some (or all)
    of them may be absent; the server must then already run that version.
    """
    directory = inventory.target_dir(target)
    if not directory.is_dir() and not partial_ok:
        raise AirgapError(f"no wheelhouse for target {target.name!r} at {directory}; "
                          f"run `inv download --target {target.name}` on the online side and carry it over")
    _, files = read_lock(inventory.lock_path(target))
    locked = [f for f in files if DEVPI_SET in f.sets]
    version = next((f.version for f in locked if f.name == "devpi-server"), None)
    wheels = [directory / f.filename for f in locked if (directory / f.filename).is_file()]
    if version is None or (len(wheels) < len(locked) and not partial_ok):
        missing = [f.filename for f in locked if not (directory / f.filename).is_file()]
        raise AirgapError(f"the wheelhouse for target {target.name!r} lacks the devpi-server wheels "
                          f"({', '.join(missing[:5]) or 'none locked'}); run `inv download --target {target.name}`")
    return wheels, version


def check_facts(host: Host, target: Target) -> None:
    """Refuse a server whose CPU, Python or libc cannot run the target's wheels, before installing anything."""
    facts = json.loads(host.run(f"python3 -c {shlex.quote(_FACTS)}", step="inspect server").stdout)
    platform = target_platform(target)
    markers = dict(platform.marker_env)
    where = f"{host.name} runs Python {facts['python']} on {facts['machine']}"
    if markers["sys_platform"] != "linux":
        raise RemoteError(f"inspect server: target {target.name!r} is for {markers['platform_system']}, but the "
                          f"server is Linux; give servers.{host.name}.target a Linux target")
    if facts["python"] != target.python or facts["machine"] != markers["platform_machine"]:
        raise RemoteError(f"inspect server: {where}, but target {target.name!r} is for Python {target.python} on "
                          f"{markers['platform_machine']}; point the server at a target with python: "
                          f"\"{facts['python']}\" and a {facts['machine']} platform, then `inv download` it")
    libc, version = facts["libc"]
    manylinux = [t for t in platform.platform_tags if t.startswith("manylinux_")]
    if libc == "glibc" and manylinux:
        needed = tuple(int(x) for x in manylinux[0].split("_")[1:3])
        if tuple(int(x) for x in version.split(".")[:2]) < needed:
            raise RemoteError(f"inspect server: {host.name} has glibc {version}, older than the target's "
                              f"{manylinux[0]}; use an older manylinux platform for target {target.name!r}")
    if not facts["ensurepip"]:
        raise RemoteError(f"inspect server: {host.name} lacks Python's venv support; install python3-venv there")
    if not facts["systemd"]:
        raise RemoteError(f"inspect server: {host.name} is not running systemd, which the service needs")


def _service_active(host: Host) -> bool:
    return host.run(f"systemctl is-active --quiet {UNIT_NAME}", step="service state", check=False).ok


def check_port(host: Host, port: int) -> None:
    if _service_active(host):
        return
    probe = f"import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', {port}))"
    if not host.run(f"python3 -c {shlex.quote(probe)}", step="port check", check=False).ok:
        holder = host.run(f"ss -Hltnp 'sport = :{port}' 2>/dev/null", step="port check", check=False).stdout.strip()
        raise RemoteError(f"port check: port {port} on {host.name} is already taken{' by ' + holder if holder else ''}; "
                          f"stop that service or set servers.{host.name}.port to a free port")


def sync_wheels(host: Host, wheels: list[Path], report: Report) -> None:
    listing = host.run(f"mkdir -p {WHEELS} && cd {WHEELS} && find . -maxdepth 1 -name '*.whl' -exec sha256sum {{}} +",
                       step="copy wheels").stdout
    present = {line.split()[1][2:]: line.split()[0] for line in listing.splitlines() if line.strip()}
    missing = [w for w in wheels if present.get(w.name) != sha256_file(w)]
    for wheel in missing:
        host.put(wheel, f"{WHEELS}/{wheel.name}", step="copy wheels")
    report.note("copy wheels", f"{len(missing)} copied" if missing else "")


def ensure_service_user(host: Host, report: Report) -> None:
    if host.run(f"id -u {SERVICE_USER}", step="system user", check=False).ok:
        return report.note("system user")
    host.run(f"useradd --system --user-group --home-dir /var/lib/devpi --shell /usr/sbin/nologin {SERVICE_USER}",
             step="system user")
    report.note("system user", f"created {SERVICE_USER}")


def _installed_version(host: Host) -> str | None:
    current = host.run(f"{VENV}/bin/devpi-server --version", step="venv", check=False)
    return current.stdout.strip() if current.ok else None


def _install_venv(host: Host, version: str) -> str:
    """A venv of its own for each devpi-server version, so the previous one stays for a rollback."""
    path = f"{PREFIX}/venv-{version}"
    pip = (f"PIP_CONFIG_FILE=/dev/null PIP_NO_INPUT=1 {path}/bin/pip install --quiet --no-index "
           f"--find-links {WHEELS} devpi-server=={version} devpi-web devpi-client")
    host.run(f"set -e; rm -rf {path}; python3 -m venv {path}; {pip}", step="venv")
    return path


def _point_venv_at(host: Host, path: str) -> None:
    # rename(2) over the symlink: the unit never sees a missing venv.
    host.run(f"ln -sfn {path} {VENV}.new && mv -Tf {VENV}.new {VENV}", step="switch venv")


def ensure_venv(host: Host, version: str, port: int, report: Report, *, wheels_at_hand: bool = True,
                before_upgrade=lambda: None) -> bool:
    """Install devpi-server `version`; True when the service must (re)start on a new venv."""
    current = _installed_version(host)
    if current == version:
        report.note("venv")
        return False
    if not wheels_at_hand:
        raise RemoteError(f"venv: {host.name} has no devpi-server {version} and this delta bundle does not carry "
                          "its wheels; deploy a full bundle (`inv bundle --full`) first")
    if current and not host.run(f"test -L {VENV}", step="venv", check=False).ok:
        # A venv from before versioned venvs: give it its versioned name so it can be rolled back to.
        host.run(f"mv -T {VENV} {PREFIX}/venv-{current} && ln -s {PREFIX}/venv-{current} {VENV}", step="venv")
    if current and _service_active(host):
        before_upgrade()
        upgrade(host, current, version, port, report)
        return False
    _point_venv_at(host, _install_venv(host, version))
    report.note("venv", f"devpi-server {version} installed in {PREFIX}/venv-{version}")
    return True


def upgrade(host: Host, old: str, new: str, port: int, report: Report) -> None:
    """Switch the running service to a new devpi-server; roll back to the old venv unless it comes up healthy."""
    path = _install_venv(host, new)
    _point_venv_at(host, path)
    host.run(f"systemctl restart {UNIT_NAME}", step="upgrade", check=False)
    try:
        wait_healthy(host, port)
        if _installed_version(host) != new:
            raise RemoteError(f"upgrade: {VENV} does not report devpi-server {new}")
    except RemoteError as exc:
        _point_venv_at(host, f"{PREFIX}/venv-{old}")
        host.run(f"systemctl reset-failed {UNIT_NAME}; systemctl restart {UNIT_NAME}", step="roll back", check=False)
        wait_healthy(host, port)
        host.run(f"rm -rf {path}", step="roll back", check=False)
        raise RemoteError(f"upgrade: devpi-server {new} did not come up healthy, so {host.name} was rolled back to "
                          f"{old}, which is serving again. What failed:\n{exc}") from None
    report.note("venv", f"upgraded devpi-server {old} -> {new} (previous venv kept for a rollback)")


def ensure_secret(host: Host, report: Report) -> None:
    state = host.run(f"stat -c '%U %a' {SECRETFILE}", step="secret file", check=False)
    if state.ok and state.stdout.strip() == f"{SERVICE_USER} 600":
        return report.note("secret file")
    host.run(f"set -e; install -d -o root -g root -m 0755 {Path(SECRETFILE).parent}; "
             f"test -s {SECRETFILE} || {VENV}/bin/devpi-gen-secret --secretfile {SECRETFILE}; "
             f"chown {SERVICE_USER}:{SERVICE_USER} {SECRETFILE}; chmod 0600 {SECRETFILE}", step="secret file")
    report.note("secret file", f"{SECRETFILE} (0600)")


def ensure_initialized(host: Host, credentials: Credentials, report: Report) -> None:
    if host.run(f"test -e {SERVERDIR}/.nodeinfo", step="devpi-init", check=False).ok:
        return report.note("devpi-init")
    # The root password arrives on stdin and lives only in devpi-init's environment, never in an argv.
    host.run(f"set -e; install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0700 /var/lib/devpi {SERVERDIR}; "
             "IFS= read -r DEVPISERVER_ROOT_PASSWD; export DEVPISERVER_ROOT_PASSWD; "
             f"runuser -u {SERVICE_USER} -- {VENV}/bin/devpi-init --serverdir {SERVERDIR} --no-root-pypi",
             step="devpi-init", stdin=credentials.root_password + "\n")
    report.note("devpi-init", f"{SERVERDIR} initialised, root password set")


def ensure_unit(host: Host, server: Server, restart: bool, report: Report, *, primary_url: str | None = None,
                has_replicas: bool = False) -> None:
    """A replica runs with --primary-url; a primary serves the replication protocol only when asked to."""
    role_args = ["--primary-url", primary_url] if primary_url else ["--role", "primary"] if has_replicas else []
    unit = render_unit(venv=VENV, serverdir=SERVERDIR, secretfile=SECRETFILE, host="0.0.0.0", port=server.port,
                       offline_mode=primary_url is None, extra_args=role_args)
    current = host.run(f"cat {UNIT_PATH}", step="systemd unit", check=False)
    changes = []
    if not current.ok or current.stdout != unit:
        host.run(f"cat > {UNIT_PATH}.tmp && mv -f {UNIT_PATH}.tmp {UNIT_PATH} && systemctl daemon-reload",
                 step="systemd unit", stdin=unit)
        changes.append(f"{UNIT_PATH} written")
        restart = True
    changes += host.ensure_service(UNIT_NAME, step="systemd unit", refresh="restart" if restart else None)
    report.note("systemd unit", ", ".join(changes))


def journal(host: Host) -> str:
    return host.run(f"journalctl --no-pager -n 25 -u {UNIT_NAME}", step="journal", check=False).stdout


_HEALTH_PROBE = """
import subprocess, sys, time, urllib.request
deadline = time.monotonic() + {timeout}
while True:
    try:
        urllib.request.urlopen("http://127.0.0.1:{port}/+status", timeout=5).read()
        sys.exit(0)
    except Exception as exc:
        failed = subprocess.run(["systemctl", "is-failed", "--quiet", "{unit}"]).returncode == 0
        if failed or time.monotonic() > deadline:
            sys.exit(f"{{exc}}")
        time.sleep(0.5)
"""


def wait_healthy(host: Host, port: int) -> None:
    """Poll /+status on the server itself: a tunnel to a port nobody listens on yet fails noisily."""
    probe = _HEALTH_PROBE.format(timeout=HEALTH_TIMEOUT, port=port, unit=UNIT_NAME)
    result = host.run(f"python3 -c {shlex.quote(probe)}", step="health", check=False)
    if not result.ok:
        raise RemoteError(f"health: devpi-server on {host.name} did not answer /+status "
                          f"({result.stderr.strip()[-200:]}). Its journal:\n{journal(host)}\n"
                          "Fix the cause above and re-run deploy.")


def ensure_index(client: DevpiClient, server: Server, credentials: Credentials, report: Report) -> None:
    client.login("root", credentials.root_password)
    user_created = client.ensure_user(server.user, credentials.user_password)
    index_changed = client.ensure_index(server.user, server.index, bases=(), volatile=False)
    changes = [c for c, done in ((f"user {server.user} created", user_created),
                                 (f"index {server.user}/{server.index} set to bases= volatile=False", index_changed)) if done]
    report.note("user and index", ", ".join(changes))


def target_files(inventory: Inventory) -> list[Path]:
    """Every file of every target's wheelhouse, once per name."""
    files: dict[str, Path] = {}
    for target in inventory.targets.values():
        directory = inventory.target_dir(target)
        if directory.is_dir():
            for path in sorted(directory.glob("*.whl")):
                files.setdefault(path.name, path)
    return list(files.values())


def upload(client: DevpiClient, server: Server, credentials: Credentials, inventory: Inventory, report: Report) -> list:
    client.login(server.user, credentials.user_password)
    files = target_files(inventory)
    with byte_progress() as progress:
        task = progress.add_task(f"uploading to {server.user}/{server.index}", total=sum(f.stat().st_size for f in files))
        result = upload_missing(client, server.user, server.index, files,
                                progress=lambda name, nbytes: progress.advance(task, nbytes))
    for name, reason in result.conflicts:
        err.print(f"  [red]conflict[/] {name}: {reason}")
    change = f"{len(result.uploaded)} files, {human_bytes(result.bytes_uploaded)}" if result.uploaded else ""
    report.note("upload", change + (f"; {len(result.conflicts)} conflicts" if result.conflicts else ""))
    return result.conflicts


def check_targets(base_url: str, inventory: Inventory, server: Server) -> list[str]:
    """Resolve every target's requirements from the live index alone; returns the problems."""
    index_url = f"{base_url}/{server.user}/{server.index}/+simple"
    # Only what this machine carries was uploaded; a target never downloaded here is not ours to check.
    carried = [t for t in inventory.targets.values() if inventory.lock_path(t).exists() and inventory.target_dir(t).is_dir()]
    jobs = [(t, s) for t in carried for s in resolution_sets(t)]

    def check(job) -> str | None:
        target, resolution = job
        with tempfile.TemporaryDirectory(prefix="airgap-check-") as tmp:
            result = uv_compile(resolution, target_platform(target), index_url, Path(tmp),
                                ("--only-binary", ":all:"))
        if result.returncode:
            return f"{target.name} ({resolution.label}): " + " ".join(result.stderr.split())[-600:]
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        return [problem for problem in pool.map(check, jobs) if problem]


def user_url(host: Host, server: Server) -> str:
    """The index URL users are given: through the nginx front when there is one."""
    front = server.front
    if front is None:
        return f"http://{host.address}:{server.port}/{server.user}/{server.index}/+simple/"
    scheme, default_port = ("https", 443) if front.tls_cert else ("http", 80)
    port = "" if front.port == default_port else f":{front.port}"
    return f"{scheme}://{front.server_name}{port}/{server.user}/{server.index}/+simple/"


def trust_option(host: Host, server: Server) -> str:
    """pip ignores a plain-http index from another host unless told to trust it."""
    if server.front and server.front.tls_cert:
        return ""
    return f" --trusted-host {server.front.server_name if server.front else host.address}"


def ensure_front_if_wanted(host: Host, inventory: Inventory, server: Server, report: Report) -> None:
    if server.front:
        largest_wheel = max((f.stat().st_size for f in target_files(inventory)), default=0)
        ensure_front(host, server, inventory, largest_wheel, report)


def upload_failure(host: Host, server: Server, exc: DevpiError) -> RemoteError:
    """Why talking to devpi failed mid-deploy, worked out on the server, and what to do about it."""
    again = ("then re-run deploy: files already on the index are kept and only the missing ones are uploaded "
             "(a half-sent file never reaches the index)")
    if host.is_remote and not host.c.is_connected:
        return RemoteError(f"upload: the SSH connection to {host.name} broke mid-upload ({exc}); once {host.name} "
                           f"answers over SSH again, {again}")
    try:
        free_kb = host.run(f"df -Pk {SERVERDIR}/+files {SERVERDIR} 2>/dev/null | awk 'NR>1 {{print $4}}' | sort -n | head -1",
                           step="upload", check=False).stdout.strip()
        logged = host.run(f"journalctl --no-pager -n 200 -u {UNIT_NAME}", step="upload", check=False).stdout
    except AirgapError:
        return RemoteError(f"upload: the connection to {host.name} broke mid-upload ({exc}); once {host.name} "
                           f"answers over SSH again, {again}")
    low = free_kb.isdigit() and int(free_kb) < 64 * 1024
    if "No space left" in str(exc) or ((exc.status or 0) >= 500 and (low or "No space left" in logged)):
        return RemoteError(f"upload: the disk holding {SERVERDIR} on {host.name} is full "
                           f"({int(free_kb) // 1024 if free_kb.isdigit() else '?'} MB free; the server said: {exc}). Free space there "
                           f"(or grow that filesystem), {again}")
    systemd_lines = [line for line in logged.splitlines() if " INFO " not in line][-8:]
    return RemoteError(f"upload: devpi-server on {host.name} stopped answering or the connection to it broke "
                       f"mid-upload ({exc}). Its journal:\n{chr(10).join(systemd_lines)}\nFix any cause shown above, {again}")


@contextmanager
def explained_upload_errors(host: Host, server: Server):
    try:
        yield
    except DevpiError as exc:
        raise upload_failure(host, server, exc) from None


def prepare_host(host: Host, inventory: Inventory, server: Server, *, partial_ok: bool = False,
                 before_upgrade=None) -> tuple[Report, bool]:
    """What primaries and replicas share: checks, wheels, service user and venv. True when the venv is new.

    before_upgrade(report) runs before a running devpi-server is replaced by another version.
    """
    target = inventory.targets[server.target]
    wheels, version = devpi_wheels(inventory, target, partial_ok=partial_ok)
    report = Report(host.name)
    role = f"a replica of {server.primary}" if server.is_replica else "devpi"
    err.print(f"deploying {role} to {host.name} ({host.address}) from target {target.name!r}")
    host.become_root()
    check_facts(host, target)
    check_port(host, server.port)
    sync_wheels(host, wheels, report)
    ensure_service_user(host, report)
    venv_changed = ensure_venv(host, version, server.port, report, wheels_at_hand=bool(wheels),
                               before_upgrade=lambda: before_upgrade and before_upgrade(report))
    return report, venv_changed


def finish(report: Report, host: Host, server: Server, problems: list[str]) -> None:
    if problems:
        raise AirgapError("the index cannot serve every target yet:\n" + "\n".join(f"  - {p}" for p in problems))
    report.note("every target resolves from the index alone")
    out.print("no changes" if not report.changed else
              f"{sum(1 for _, c in report.steps if c)} steps changed something")
    out.print(f"users install with: pip install --index-url {user_url(host, server)}{trust_option(host, server)} PACKAGE")


def deploy(host: Host, inventory: Inventory, server: Server, credentials: Credentials, *,
           from_bundle: bool = False, on_uploaded=lambda: None) -> Report:
    def backup_first(report: Report) -> None:
        from devpi_airgap.offline.backup import backup  # backup builds on this module; importing it here keeps the cycle out of load time

        report.note("backup before upgrade", str(backup(host, server, inventory.path.parent / "backups", BACKUPS_KEPT)))

    report, venv_changed = prepare_host(host, inventory, server, partial_ok=from_bundle, before_upgrade=backup_first)
    ensure_secret(host, report)
    ensure_initialized(host, credentials, report)
    ensure_unit(host, server, venv_changed, report, has_replicas=bool(inventory.replicas_of(server)))
    wait_healthy(host, server.port)
    ensure_front_if_wanted(host, inventory, server, report)
    with host.http(server.port) as base_url, DevpiClient(base_url) as client:
        with explained_upload_errors(host, server):
            ensure_index(client, server, credentials, report)
            conflicts = upload(client, server, credentials, inventory, report)
        on_uploaded()
        problems = check_targets(base_url, inventory, server)
    finish(report, host, server, problems)
    if conflicts:
        raise AirgapError(f"{len(conflicts)} files conflict with different files of the same name on the index "
                          "(listed above); the index keeps its copies. Remove the stale files from the wheelhouse.")
    return report


def upload_only(host: Host, inventory: Inventory, server: Server, credentials: Credentials) -> None:
    """Just the upload step, for a server deploy already set up."""
    report = Report(host.name)
    host.become_root()
    wait_healthy(host, server.port)
    with host.http(server.port) as base_url, DevpiClient(base_url) as client, explained_upload_errors(host, server):
        conflicts = upload(client, server, credentials, inventory, report)
    out.print("no changes" if not report.changed else "uploaded")
    if conflicts:
        raise AirgapError(f"{len(conflicts)} files conflict with files of the same name on the index (listed above)")


def status(host: Host, server: Server) -> None:
    """Unit state, devpi version, the index's projects and files, and disk used; changes nothing."""
    host.become_root()
    state = host.run(f"systemctl is-active {UNIT_NAME}; systemctl is-enabled {UNIT_NAME}", step="status",
                     check=False).stdout.split()
    version = host.run(f"{VENV}/bin/devpi-server --version", step="status", check=False).stdout.strip() or "not installed"
    disk = host.run(f"du -sh {SERVERDIR} 2>/dev/null | cut -f1", step="status", check=False).stdout.strip() or "-"
    rows = [["unit", " / ".join(state) or "absent"], ["devpi-server", version], ["data on disk", disk]]
    if state[:1] == ["active"]:
        with host.http(server.port) as base_url, DevpiClient(base_url) as client:
            files = client.index_files(server.user, server.index)
            devpi = client.status()
        projects = {name.split("-")[0].lower() for name in files}
        rows.append([f"{server.user}/{server.index}", f"{len(projects)} projects, {len(files)} files"])
        if server.is_replica:
            serial, primary = devpi.get("serial"), devpi.get("primary-serial")
            behind = "in sync" if primary is not None and serial >= primary else "catching up"
            rows.append([f"replica of {server.primary}", f"{behind}: serial {serial} of {primary}"])
    out.print(table(f"devpi on {host.name}", ["what", "state"], rows, right_from=2))


def client_config(host: Host, server: Server) -> str:
    """What a user pastes: a pip.conf, a uv index, and a one-off pip command."""
    url = user_url(host, server)
    trust = trust_option(host, server)
    trusted_host = f"trusted-host = {trust.split()[-1]}\n" if trust else ""
    return f"""\
# pip.conf (Linux: ~/.config/pip/pip.conf, Windows: %APPDATA%\\pip\\pip.ini)
[global]
index-url = {url}
{trusted_host}
# pyproject.toml, for uv (or the same [[index]] table in uv.toml)
[[tool.uv.index]]
name = "airgap"
url = "{url}"
default = true

# one-off
pip install --index-url {url}{trust} PACKAGE
"""
