"""Offline-side tasks: devpi-server as a hardened systemd service, its index, and uploads.

    fab -H devpi-host deploy      # over SSH; devpi-host resolves through ssh_config
    fab deploy                    # on the server itself (sudo when not root)

The host name given to -H is matched against the inventory's `servers:`.
Passwords come from DEVPI_AIRGAP_ROOT_PASSWORD / DEVPI_AIRGAP_USER_PASSWORD, a
0600 secrets file (DEVPI_AIRGAP_SECRETS, default
~/.config/devpi-airgap/secrets.yaml), or a prompt when interactive.
"""

from pathlib import Path

from fabric import task

from devpi_airgap.offline.backup import backup as make_backup
from devpi_airgap.offline.backup import restore as restore_data
from devpi_airgap.offline.bundle_import import deploy_bundle, print_imported

from devpi_airgap.core.console import user_errors
from devpi_airgap.offline.credentials import load_credentials
from devpi_airgap.offline.deploy import client_config as render_client_config
from devpi_airgap.offline.deploy import deploy as deploy_server
from devpi_airgap.offline.deploy import status as show_status
from devpi_airgap.offline.deploy import upload_only
from devpi_airgap.core.errors import UsageError
from devpi_airgap.core.inventory import load_inventory
from devpi_airgap.offline.remote import Host
from devpi_airgap.offline.replica import deploy_replica

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


@task(help=dict(HELP, bundle="deploy from this bundle file (checked here and on the server first)"))
def deploy(c, inventory="inventory.yaml", server=None, bundle=None):
    """Install or update devpi-server on the host, create the user and index, upload missing wheels.

    A server with `role: replica` instead follows its primary through devpi's
    replication: `fab -H primary,replica1 deploy` sets up both. Safe to
    re-run: every step acts only on what differs, and a run with nothing to
    do prints "no changes". Ends by resolving every target from
    the live index alone and printing the URL users need.
    """
    with user_errors():
        inv, host, entry = _connect(c, inventory, server)
        if entry.is_replica:
            if bundle:
                raise UsageError(f"{entry.name} is a replica: deploy the bundle to its primary {entry.primary}, "
                                 "and the replica follows")
            deploy_replica(host, inv, entry)
            return
        credentials = load_credentials(entry.name)
        if bundle:
            deploy_bundle(host, inv, entry, credentials, Path(bundle))
        else:
            deploy_server(host, inv, entry, credentials)


def _connect(c, inventory, server):
    inv = load_inventory(inventory)
    host = Host(c)
    return inv, host, _server(inv, host, server)


@task(help=HELP)
def upload(c, inventory="inventory.yaml", server=None):
    """Upload every wheel the index does not hold yet (name and sha256), nothing else."""
    with user_errors():
        inv, host, entry = _connect(c, inventory, server)
        if entry.is_replica:
            raise UsageError(f"{entry.name} is a replica: upload to its primary {entry.primary}, and the replica follows")
        upload_only(host, inv, entry, load_credentials(entry.name))


@task(help=HELP)
def status(c, inventory="inventory.yaml", server=None):
    """Show the unit's state, devpi's version, the index's projects and files, and disk used."""
    with user_errors():
        _, host, entry = _connect(c, inventory, server)
        show_status(host, entry)
        print_imported(host)


@task(name="client-config", help=HELP)
def client_config(c, inventory="inventory.yaml", server=None):
    """Print what users paste: pip.conf, a uv index with default = true, and a pip command line."""
    with user_errors():
        _, host, entry = _connect(c, inventory, server)
        print(render_client_config(host, entry), end="")


@task(help=dict(HELP, to="directory here for backups (default: backups/)", keep="how many to keep (default 7)"))
def backup(c, inventory="inventory.yaml", server=None, to="backups", keep=7):
    """devpi-export the server's data into a dated backup, copy it here, keep the newest --keep."""
    with user_errors():
        _, host, entry = _connect(c, inventory, server)
        print(make_backup(host, entry, Path(to), int(keep)))


@task(name="restore", help=dict(HELP, **{"from": "a backup file made by fab backup"}))
def restore_backup(c, inventory="inventory.yaml", server=None, from_=None):
    """Replace the server's data with a backup; the previous data is kept aside and put back on failure."""
    with user_errors():
        if not from_:
            raise UsageError("restore needs --from BACKUP.tar (a file made by fab backup)")
        _, host, entry = _connect(c, inventory, server)
        aside = restore_data(host, entry, Path(from_))
        print(f"restored {from_}; the data it replaced is kept on the server in {aside}")
