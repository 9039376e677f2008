"""A devpi replica of a primary, through devpi's own replication protocol.

The replica shares the primary's secret (tokens signed by one verify on the
other), is initialised with `devpi-init --primary-url`, and runs with
`--primary-url` but without `--offline-mode`, which would stop replication.
Uploads always go to the primary; the replica follows its changelog.
"""

from __future__ import annotations

import json
import shlex

from devpi_airgap.offline.deploy import (
    SECRETFILE, SERVERDIR, SERVICE_USER, UNIT_PATH, VENV, check_targets, ensure_front_if_wanted, ensure_unit, finish, journal,
    prepare_host, wait_healthy,
)
from devpi_airgap.core.inventory import Inventory, Server
from devpi_airgap.offline.remote import Host, RemoteError

REPLICATION_TIMEOUT = 180

_SYNC_PROBE = """
import json, sys, time, urllib.request
deadline = time.monotonic() + {timeout}
while True:
    request = urllib.request.Request("http://127.0.0.1:{port}/+status", headers={{"Accept": "application/json"}})
    status = json.load(urllib.request.urlopen(request, timeout=10))["result"]
    serial, primary = status.get("serial"), status.get("primary-serial")
    if primary is not None and serial is not None and serial >= primary:
        sys.exit(0)
    if time.monotonic() > deadline:
        sys.exit(json.dumps(dict(serial=serial, primary_serial=primary, errors=status.get("replication-errors"))))
    time.sleep(1)
"""


def primary_host(host: Host, server: Server) -> Host:
    """The replica's primary, reached the way this run reaches servers: same ssh_config, same keys."""
    from fabric import Config, Connection

    config = host.c.config if host.is_remote else Config()
    return Host(Connection(server.primary, config=config))


def primary_url(primary: Host, inventory: Inventory, server: Server) -> str:
    return server.primary_url or f"http://{primary.address}:{inventory.server(server.primary).port}"


def check_primary(primary: Host, server: Server) -> None:
    """The primary must be deployed, with replication on, before a replica can follow it."""
    primary.become_root()
    redeploy = (f"run `fab -H {server.primary} deploy` with this inventory first (it lists {server.name} as a "
                f"replica, which turns replication on), then deploy {server.name} again")
    if not primary.run(f"test -s {SECRETFILE}", step="primary", check=False).ok:
        raise RemoteError(f"primary: {server.primary} has no devpi deployed yet; {redeploy}")
    if not primary.run(f"grep -q -- '--role primary' {UNIT_PATH}", step="primary", check=False).ok:
        raise RemoteError(f"primary: devpi on {server.primary} does not serve replicas yet; {redeploy}")


def share_secret(primary: Host, replica: Host, report) -> bool:
    """Copy the primary's secret unless the replica holds the same one; True when it changed."""
    digest = f"sha256sum {SECRETFILE} 2>/dev/null | cut -d' ' -f1"
    wanted = primary.run(digest, step="secret file").stdout.strip()
    if replica.run(digest, step="secret file", check=False).stdout.strip() == wanted:
        report.note("secret file")
        return False
    # The secret travels on stdin of both SSH sessions, never in an argv or a log.
    secret = primary.run(f"base64 -w0 {SECRETFILE}", step="secret file").stdout.strip()
    directory = shlex.quote(SECRETFILE.rsplit("/", 1)[0])
    replica.run(f"set -e; umask 077; install -d -m 0755 {directory}; base64 -d > {SECRETFILE}.new; "
                f"chown {SERVICE_USER}:{SERVICE_USER} {SECRETFILE}.new; mv -f {SECRETFILE}.new {SECRETFILE}",
                step="secret file", stdin=secret + "\n")
    report.note("secret file", f"{SECRETFILE} copied from the primary (0600)")
    return True


def check_reach(host: Host, url: str, server: Server) -> None:
    probe = f"import urllib.request; urllib.request.urlopen({url + '/+api'!r}, timeout=10).read()"
    result = host.run(f"python3 -c {shlex.quote(probe)}", step="reach primary", check=False)
    if not result.ok:
        reason = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        raise RemoteError(f"reach primary: {host.name} cannot reach its primary at {url} ({reason}); set "
                          f"servers.{server.name}.primary_url to an address {host.name} can reach, or open "
                          "that path between the two servers")


def ensure_replica_initialized(host: Host, url: str, report) -> None:
    nodeinfo = host.run(f"cat {SERVERDIR}/.nodeinfo", step="devpi-init", check=False)
    if nodeinfo.ok:
        role = json.loads(nodeinfo.stdout or "{}").get("role")
        if role != "replica":
            raise RemoteError(f"devpi-init: {SERVERDIR} on {host.name} holds a {role or 'standalone'} devpi, not a "
                              f"replica; a replica starts empty: move {SERVERDIR} aside (after `fab backup` if it "
                              "matters) and re-run deploy")
        return report.note("devpi-init")
    host.run(f"set -e; install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0700 /var/lib/devpi {SERVERDIR}; "
             f"runuser -u {SERVICE_USER} -- {VENV}/bin/devpi-init --serverdir {SERVERDIR} --role replica "
             f"--primary-url {shlex.quote(url)}", step="devpi-init")
    report.note("devpi-init", f"{SERVERDIR} initialised as a replica of {url}")


def wait_replicated(host: Host, server: Server) -> None:
    probe = _SYNC_PROBE.format(timeout=REPLICATION_TIMEOUT, port=server.port)
    result = host.run(f"python3 -c {shlex.quote(probe)}", step="replication", check=False)
    if not result.ok:
        raise RemoteError(f"replication: {host.name} did not catch up with {server.primary} within "
                          f"{REPLICATION_TIMEOUT}s ({result.stderr.strip()[-300:]}). Its journal:\n{journal(host)}\n"
                          "Re-run deploy once the cause above is fixed; replication resumes where it stopped.")


def deploy_replica(host: Host, inventory: Inventory, server: Server) -> None:
    primary = primary_host(host, server)
    check_primary(primary, server)  # before anything changes here
    report, venv_changed = prepare_host(host, inventory, server)
    url = primary_url(primary, inventory, server)
    check_reach(host, url, server)
    secret_changed = share_secret(primary, host, report)
    ensure_replica_initialized(host, url, report)
    ensure_unit(host, server, venv_changed or secret_changed, report, primary_url=url)
    wait_healthy(host, server.port)
    ensure_front_if_wanted(host, inventory, server, report)
    wait_replicated(host, server)
    with host.http(server.port) as base_url:
        problems = check_targets(base_url, inventory, server)
    finish(report, host, server, problems)
