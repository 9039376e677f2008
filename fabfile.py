"""Offline-side tasks: devpi-server as a hardened systemd service, its index, and uploads.

    fab -H devpi-host deploy      # over SSH; devpi-host resolves through ssh_config
    fab deploy                    # on the server itself (sudo when not root)
    fab -H devpi-host deploy --check   # what would change; changes nothing

The host name given to -H is matched against the inventory's `servers:`.
Passwords come from DEVPI_AIRGAP_ROOT_PASSWORD / DEVPI_AIRGAP_USER_PASSWORD, a
0600 secrets file (DEVPI_AIRGAP_SECRETS, default
~/.config/devpi-airgap/secrets.yaml), or a prompt when interactive.

Each task parses its options, calls one function of devpi_airgap.offline and
prints its result through devpi_airgap.cli; errors become their exit codes there.
"""

from pathlib import Path

from fabric import task

from devpi_airgap.cli import offline as show
from devpi_airgap.cli.outcome import usage_errors_exit_2, user_errors
from devpi_airgap.core.console import bar_progress, printable_anywhere
from devpi_airgap.core.errors import UsageError
from devpi_airgap.core.inventory import load_inventory
from devpi_airgap.core.policy import PolicyError
from devpi_airgap.offline.backup import backup as make_backup
from devpi_airgap.offline.backup import planned_backup, planned_restore
from devpi_airgap.offline.backup import restore as restore_data
from devpi_airgap.offline.bundle_import import deploy_bundle
from devpi_airgap.offline.client_config import client_config as render_client_config
from devpi_airgap.offline.credentials import load_credentials, stored_credentials
from devpi_airgap.offline.deploy import conflicts_error, upload_only
from devpi_airgap.offline.deploy import deploy as deploy_server
from devpi_airgap.offline.host_keys import known_hosts_files, trust
from devpi_airgap.offline.remote import Host
from devpi_airgap.offline.replica import deploy_replica
from devpi_airgap.offline.rescan import audit_live
from devpi_airgap.offline.status import read_status
from devpi_airgap.offline.steps import Runner

usage_errors_exit_2()
printable_anywhere()  # output redirected on Windows is in a code page that lacks most characters

HELP = {
    "inventory": "inventory file (default: inventory.yaml in the current directory)",
    "server": "the inventory's servers: entry to use (default: the -H name, or the only entry)",
}


def _server(inventory, host: Host, name: str | None):
    if name:
        return inventory.server(name)
    if host.is_remote or len(inventory.servers) != 1:
        return inventory.server(host.name)
    return next(iter(inventory.servers.values()))


def _connect(c, inventory, server):
    inv = load_inventory(inventory)
    host = Host(c, known_hosts=inv.known_hosts, on_wait=show.say_waiting)
    return inv, host, _server(inv, host, server)


@task(
    name="trust-host-key",
    help={
        "fingerprint": "the SHA256:... fingerprint you read on the server (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)",
        "inventory": HELP["inventory"],
    },
)
def trust_host_key(c, fingerprint=None, inventory="inventory.yaml"):
    """Accept the server's SSH host key on purpose: only when it has the fingerprint you read on the server.

    Writes it to the inventory's known_hosts file, else ssh_config's
    UserKnownHostsFile, else ~/.ssh/known_hosts. Every other task refuses a
    server whose key is unknown or changed, before anything is sent to it.
    """
    with user_errors():
        if not fingerprint:
            raise UsageError(
                "trust-host-key needs --fingerprint SHA256:...; read it on the server's console with "
                "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`"
            )
        known = load_inventory(inventory).known_hosts if Path(inventory).is_file() else None
        file = known_hosts_files(c.ssh_config, known)[0]
        line, new = trust(c.host, c.port, fingerprint, file)
        print(f"{'added to' if new else 'already in'} {file}: {line}")


@task(
    help=dict(
        HELP,
        bundle="deploy from this bundle file (checked here and on the server first)",
        check="show what would change on the server, and change nothing (no secrets needed; given, passwords are compared)",
    )
)
def deploy(c, inventory="inventory.yaml", server=None, bundle=None, check=False):
    """Install or update devpi-server on the host, create the user and index, upload missing wheels.

    A server with `role: replica` instead follows its primary through devpi's
    replication: `fab -H primary,replica1 deploy` sets up both. Safe to
    re-run: every step acts only on what differs, and a run with nothing to
    do prints "no changes". Ends by resolving every target from
    the live index alone and printing the URL users need.
    """
    with user_errors(changes_nothing=check):
        inv, host, entry = _connect(c, inventory, server)
        runner = Runner(host, check=check, on_outcome=show.step_printer(check))
        if entry.is_replica:
            if bundle:
                raise UsageError(
                    f"{entry.name} is a replica: deploy the bundle to its primary {entry.primary}, "
                    "and the replica follows"
                )
            show.say_deploying(host.name, host.address, f"a replica of {entry.primary}", entry.target, check)
            show.print_deploy(deploy_replica(runner, inv, entry))
            return
        credentials = stored_credentials(entry.name) if check else load_credentials(entry.name)
        show.say_deploying(host.name, host.address, "devpi", entry.target, check)
        if bundle:
            result = deploy_bundle(
                runner, inv, entry, credentials, Path(bundle), progress=bar_progress, on_checked=show.say_bundle_checked
            )
        else:
            result = deploy_server(runner, inv, entry, credentials, progress=bar_progress)
        show.print_deploy(result)
        if result.conflicts:
            raise conflicts_error(result.conflicts)


@task(help=dict(HELP, check="show what an upload would send, and send nothing (no secrets needed)"))
def upload(c, inventory="inventory.yaml", server=None, check=False):
    """Upload every wheel the index does not hold yet (name and sha256), nothing else."""
    with user_errors(changes_nothing=check):
        inv, host, entry = _connect(c, inventory, server)
        if entry.is_replica:
            raise UsageError(
                f"{entry.name} is a replica: upload to its primary {entry.primary}, and the replica follows"
            )
        runner = Runner(host, check=check, on_outcome=show.step_printer(check))
        credentials = None if check else load_credentials(entry.name)
        result = upload_only(runner, inv, entry, credentials, progress=bar_progress)
        show.print_upload(result)
        if result.conflicts:
            raise conflicts_error(result.conflicts)


@task(help=HELP)
def audit(c, inventory="inventory.yaml", server=None):
    """Re-check every file on the live index against the advisory snapshot last carried in (changes nothing).

    The snapshot arrives in a bundle made with `inv bundle --advisories`.
    Exits 9 when a file is affected at or above policy.advisories.block
    (default: high), so a scheduled run can raise the alarm; a recall stays a
    person's decision.
    """
    with user_errors(changes_nothing=True):
        inv, host, entry = _connect(c, inventory, server)
        report = audit_live(host, entry, inv.policy.advisories)
        show.print_rescan(report)
        if report.blocked:
            raise PolicyError(
                f"{len(report.blocked)} advisories at or above the threshold affect files on {host.name}'s index "
                f"({', '.join(sorted({f.id for f in report.blocked}))}); recall them or waive them after review"
            )


@task(help=HELP)
def status(c, inventory="inventory.yaml", server=None):
    """Show the unit's state, devpi's version, the index's projects and files, disk used, imported bundles."""
    with user_errors(changes_nothing=True):
        _, host, entry = _connect(c, inventory, server)
        show.print_status(read_status(host, entry))


@task(name="client-config", help=HELP)
def client_config(c, inventory="inventory.yaml", server=None):
    """Print what users paste: pip.conf, a uv index with the platforms it holds wheels for, and a pip command line."""
    with user_errors():
        inv, host, entry = _connect(c, inventory, server)
        print(render_client_config(host, entry, inv), end="")


@task(
    help=dict(
        HELP,
        to="directory here for backups (default: backups/)",
        keep="how many to keep (default 7)",
        check="show what the backup would stop, write and remove, and change nothing",
    )
)
def backup(c, inventory="inventory.yaml", server=None, to="backups", keep=7, check=False):
    """devpi-export the server's data into a dated backup, copy it here, keep the newest --keep."""
    with user_errors(changes_nothing=check):
        _, host, entry = _connect(c, inventory, server)
        if check:
            show.print_backup_check(planned_backup(host, Path(to), int(keep)))
            return
        print(make_backup(host, entry, Path(to), int(keep)))


@task(
    name="restore",
    help=dict(
        HELP,
        **{"from": "a backup file made by fab backup"},
        check="show what the restore would put back and what it would drop, and change nothing",
    ),
)
def restore_backup(c, inventory="inventory.yaml", server=None, from_=None, check=False):
    """Replace the server's data with a backup; the previous data is kept aside and put back on failure.

    Files recalled on the server since the backup was made stay off the index.
    """
    with user_errors(changes_nothing=check):
        if not from_:
            raise UsageError("restore needs --from BACKUP.tar (a file made by fab backup)")
        inv, host, entry = _connect(c, inventory, server)
        if check:
            show.print_restore_check(planned_restore(host, entry, Path(from_)))
            return
        show.print_restored(from_, restore_data(host, entry, Path(from_)), [r.name for r in inv.replicas_of(entry)])
