"""A devpi replica of a primary, through devpi's own replication protocol.

The replica shares the primary's secret (tokens signed by one verify on the
other), is initialised with `devpi-init --primary-url`, and runs with
`--primary-url` but without `--offline-mode`, which would stop replication.
Uploads always go to the primary; the replica follows its changelog.
"""

from __future__ import annotations

import json
import shlex
import time

from devpi_airgap.core.errors import RemoteError
from devpi_airgap.core.inventory import Inventory, Server
from devpi_airgap.offline.deploy import DeployResult, finish, prepare_host
from devpi_airgap.offline.health import journal, service_active, wait_healthy
from devpi_airgap.offline.host_steps import ServiceUnit, unit_for
from devpi_airgap.offline.index_steps import check_targets, devpi_api, target_files
from devpi_airgap.offline.layout import SECRETFILE, SERVER_HOME, SERVERDIR, SERVICE_USER, UNIT_NAME, UNIT_PATH, VENV
from devpi_airgap.offline.nginx import NginxFront
from devpi_airgap.offline.programs import reach
from devpi_airgap.offline.programs import wait_replicated as wait_replicated_program
from devpi_airgap.offline.remote import Host
from devpi_airgap.offline.steps import Runner, Step

REPLICATION_PATIENCE = 180  # seconds a replica may go without catching up any further


def primary_host(host: Host, server: Server) -> Host:
    """The replica's primary, reached the way this run reaches servers: same ssh_config, same keys."""
    from fabric import Config, Connection

    config = host.c.config if host.is_remote else Config()
    return Host(Connection(server.primary, config=config), known_hosts=host.known_hosts, on_wait=host.on_wait)


def primary_url(primary: Host, inventory: Inventory, server: Server) -> str:
    return server.primary_url or f"http://{primary.address}:{inventory.server(server.primary).port}"


def check_primary(primary: Host, server: Server) -> None:
    """The primary must be deployed, with replication on, before a replica can follow it."""
    primary.become_root()
    redeploy = (
        f"run `fab -H {server.primary} deploy` with this inventory first (it lists {server.name} as a "
        f"replica, which turns replication on), then deploy {server.name} again"
    )
    if not primary.run(f"test -s {SECRETFILE}", step="primary", check=False).ok:
        raise RemoteError(f"primary: {server.primary} has no devpi deployed yet; {redeploy}")
    if not primary.run(f"grep -q -- '--role primary' {UNIT_PATH}", step="primary", check=False).ok:
        raise RemoteError(f"primary: devpi on {server.primary} does not serve replicas yet; {redeploy}")


def _secret_digest(host: Host, *, check: bool) -> str:
    return host.run(
        f"sha256sum {SECRETFILE} 2>/dev/null | cut -d' ' -f1", step="secret file", check=check
    ).stdout.strip()


class SharedSecret(Step):
    """The primary's secret on the replica, so tokens signed by one verify on the other."""

    name = "secret file"

    def __init__(self, primary: Host):
        self.primary = primary
        self.copied = False  # set by apply: devpi must restart to use it

    def read(self, host: Host) -> tuple[str, str]:
        return _secret_digest(self.primary, check=True), _secret_digest(host, check=False)

    def diff(self, digests: tuple[str, str]) -> list[str]:
        wanted, present = digests
        return [] if wanted == present else [f"{SECRETFILE} copied from the primary (0600)"]

    def apply(self, host: Host, digests: tuple[str, str]) -> list[str]:
        # The secret travels on stdin of both SSH sessions, never in an argv or a log.
        secret = self.primary.run(f"base64 -w0 {SECRETFILE}", step=self.name).stdout.strip()
        directory = shlex.quote(SECRETFILE.rsplit("/", 1)[0])
        host.run(
            f"set -e; umask 077; install -d -m 0755 {directory}; base64 -d > {SECRETFILE}.new; "
            f"chown {SERVICE_USER}:{SERVICE_USER} {SECRETFILE}.new; mv -f {SECRETFILE}.new {SECRETFILE}",
            step=self.name,
            stdin=secret + "\n",
        )
        self.copied = True
        return self.diff(digests)


def check_reach(host: Host, url: str, server: Server) -> None:
    result = host.run_program(reach, url, step="reach primary", check=False)
    if not result.ok:
        reason = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        raise RemoteError(
            f"reach primary: {host.name} cannot reach its primary at {url} ({reason}); set "
            f"servers.{server.name}.primary_url to an address {host.name} can reach, or open "
            "that path between the two servers"
        )


def _nodeinfo(host: Host, step: str) -> dict | None:
    found = host.run(f"cat {SERVERDIR}/.nodeinfo", step=step, check=False)
    return json.loads(found.stdout or "{}") if found.ok else None


class ReplicaInit(Step):
    """`devpi-init --role replica` once, and anew when the primary no longer has the data the replica followed.

    A serverdir holding anything but a replica is refused, not reused. A primary restored from a backup
    (or set up anew) has another uuid: devpi then answers its replica's every request with 400, while the
    replica's /+status still reads "in sync", so it would serve the old state for good. Its data is set
    aside, never removed: it may hold files the restored primary lacks.
    """

    name = "devpi-init"

    def __init__(self, url: str, server_name: str, primary: Host | None):
        self.url = url
        self.server_name = server_name
        self.primary = primary

    def read(self, host: Host) -> tuple[dict | None, str | None]:
        """The replica's nodeinfo (None: no devpi yet) and the primary's uuid now."""
        primary = _nodeinfo(self.primary, self.name) if self.primary else None
        return _nodeinfo(host, self.name), (primary or {}).get("uuid")

    def diff(self, state: tuple[dict | None, str | None]) -> list[str]:
        nodeinfo, primary_uuid = state
        if nodeinfo is None:
            return [f"{SERVERDIR} initialised as a replica of {self.url}"]
        role = nodeinfo.get("role")
        if role != "replica":
            raise RemoteError(
                f"devpi-init: {SERVERDIR} on {self.server_name} holds a {role or 'standalone'} devpi, "
                f"not a replica; a replica starts empty: move {SERVERDIR} aside (after `fab backup` if "
                "it matters) and re-run deploy"
            )
        followed = nodeinfo.get("primary-uuid")
        if followed and primary_uuid and followed != primary_uuid:
            return [
                f"{SERVERDIR} followed data its primary no longer has (restored or set up anew since): set aside "
                f"and initialised anew as a replica of {self.url}"
            ]
        return []

    def apply(self, host: Host, state: tuple[dict | None, str | None]) -> list[str]:
        changes = []
        if state[0] is not None:  # a replica of the primary's data from before: kept aside, not reused
            aside = f"{SERVERDIR}.stale-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
            host.run(f"systemctl stop {UNIT_NAME}; mv {SERVERDIR} {aside}", step=self.name)
            changes.append(f"{SERVERDIR} set aside as {aside}")
        host.run(
            f"set -e; install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0700 {SERVER_HOME} {SERVERDIR}; "
            f"runuser -u {SERVICE_USER} -- {VENV}/bin/devpi-init --serverdir {SERVERDIR} --role replica "
            f"--primary-url {shlex.quote(self.url)}",
            step=self.name,
        )
        return [*changes, *self.diff((None, None))]


def wait_replicated(host: Host, server: Server) -> None:
    result = host.run_program(
        wait_replicated_program, str(server.port), str(REPLICATION_PATIENCE), step="replication", check=False
    )
    if not result.ok:
        raise RemoteError(
            f"replication: {host.name} stopped catching up with {server.primary}: nothing moved for "
            f"{REPLICATION_PATIENCE}s ({result.stderr.strip()[-300:]}). Its journal:\n{journal(host)}\n"
            "Re-run deploy once the cause above is fixed; replication resumes where it stopped."
        )


def deploy_replica(runner: Runner, inventory: Inventory, server: Server) -> DeployResult:
    host = runner.host
    primary = primary_host(host, server)
    check_primary(primary, server)  # before anything changes here
    venv = prepare_host(runner, inventory, server)
    url = primary_url(primary, inventory, server)
    check_reach(host, url, server)
    secret = SharedSecret(primary)
    runner.run(secret)
    runner.run(ReplicaInit(url, server.name, primary))
    runner.run(ServiceUnit(unit_for(server, primary_url=url), lambda: venv.fresh or secret.copied))
    serving = not runner.check or service_active(host)
    if not runner.check:
        wait_healthy(host, server.port)
    if server.front:
        largest_wheel = max((f.stat().st_size for f in target_files(inventory)), default=0)
        runner.run(NginxFront(server, has_replicas=False, max_body_bytes=largest_wheel))
    if runner.check:
        return finish(runner, server, [], [])
    wait_replicated(host, server)
    with devpi_api(host, server, serving=serving) as (base_url, _):
        problems = check_targets(base_url, inventory, server)
    return finish(runner, server, problems, [])
