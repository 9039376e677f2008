"""The server's SSH host key is checked against known_hosts before anything is sent to it.

Fabric on its own accepts any host key and reads no known_hosts file, so a
deploy would send both devpi passwords to whoever answers at the server's
address. Here every connection refuses, inside the SSH handshake and so before
authentication, a key that no known_hosts file lists (unknown) or that differs
from the listed one (changed). OpenSSH's StrictHostKeyChecking=no is not
honoured: accepting a key is always a deliberate act, `fab trust-host-key`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import socket
from pathlib import Path

import paramiko

from devpi_airgap.core.errors import RemoteError

DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")
CONSOLE_HINT = "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"


class HostKeyError(RemoteError):
    """The server's host key is unknown, or not the one known_hosts holds; nothing was sent."""


class UnknownHostKey(paramiko.SSHException):
    def __init__(self, hostname: str, key: paramiko.PKey):
        super().__init__(f"unknown host key for {hostname}")
        self.hostname, self.key = hostname, key


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):
        raise UnknownHostKey(hostname, key)


def fingerprint(key: paramiko.PKey) -> str:
    """The fingerprint OpenSSH shows: SHA256 of the key blob, base64 without padding."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def known_hosts_files(ssh_config: dict, extra: Path | None = None) -> list[Path]:
    """The files that may vouch for a server: the inventory's, then ssh_config's UserKnownHostsFile or the defaults."""
    named = ssh_config.get("userknownhostsfile")
    if isinstance(named, list):
        named = " ".join(named)
    paths = shlex.split(named) if named else list(DEFAULT_KNOWN_HOSTS)
    files = [Path(os.path.expanduser(p)) for p in paths if p != "/dev/null"]
    return ([extra] if extra else []) + files


def guard(connection, files: list[Path]) -> None:
    """Make `connection` refuse any host key that `files` do not vouch for, before it is opened."""
    client = connection.client
    client.set_missing_host_key_policy(_RefuseUnknown())
    for path in files:
        if path.is_file():
            client.get_host_keys().load(str(path))


def hostkey_name(host: str, port: int) -> str:
    """How known_hosts names a server: its address, with the port in brackets when it is not 22."""
    return host if port == 22 else f"[{host}]:{port}"


def refusal(exc: Exception, name: str, address: str, files: list[Path]) -> HostKeyError | None:
    """The one message a host-key refusal gets; None when `exc` is not one."""
    checked = ", ".join(str(f) for f in files) or "(none)"
    accept = f"fab -H {name} trust-host-key --fingerprint FINGERPRINT"
    if isinstance(exc, UnknownHostKey):
        offered = fingerprint(exc.key)
        return HostKeyError(
            f"host key: {name} ({address}) offered the {exc.key.get_name()} host key {offered}, "
            f"which no known_hosts file lists ({checked}); nothing was sent to it. Compare the fingerprint with "
            f"the one the server itself shows (`{CONSOLE_HINT}` on its console); if they match, accept it with: "
            f"{accept.replace('FINGERPRINT', offered)}"
        )
    if isinstance(exc, paramiko.BadHostKeyException):
        offered, expected = fingerprint(exc.key), fingerprint(exc.expected_key)
        where = f" -f {files[0]}" if files else ""
        return HostKeyError(
            f"host key: {name} ({address}) offered host key {offered}, but known_hosts holds {expected} for it "
            f"({checked}). Either the server was reinstalled, or something between you and it is answering in "
            "its stead; nothing was sent. Only if you know it was reinstalled: check the new fingerprint on its "
            f"console (`{CONSOLE_HINT}`), remove the old entry with `ssh-keygen -R {exc.hostname}{where}`, then "
            f"{accept.replace('FINGERPRINT', offered)}"
        )
    return None


def offered_key(host: str, port: int, timeout: float) -> paramiko.PKey:
    """The host key the server offers, read in a bare key exchange that authenticates nothing."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            transport = paramiko.Transport(sock)
            try:
                transport.start_client(timeout=timeout)
                return transport.get_remote_server_key()
            finally:
                transport.close()
    except (OSError, paramiko.SSHException, EOFError) as exc:  # as Host says it of every other task's connection
        raise RemoteError(
            f"trust-host-key: cannot reach {hostkey_name(host, port)}: {exc}; check the HostName and Port that "
            "ssh_config gives for it, and that sshd runs there and the network path is open. Nothing was written."
        ) from None


def trust(host: str, port: int, given: str, file: Path, *, timeout: float = 15) -> tuple[str, bool]:
    """Add the server's key to `file` when its fingerprint is `given`; returns (the key's line, whether it was new).

    Refuses a mismatch, and a server `file` already lists with another key: that must be removed on purpose.
    """
    key = offered_key(host, port, timeout)
    offered = fingerprint(key)
    name = hostkey_name(host, port)
    if offered != given.strip():
        raise HostKeyError(
            f"trust-host-key: {name} offers {offered}, not the fingerprint you gave ({given.strip()}); "
            f"nothing was written to {file}. Read the fingerprint on the server's console (`{CONSOLE_HINT}`)."
        )
    line = f"{name} {key.get_name()} {key.get_base64()}"
    known = paramiko.HostKeys(str(file)) if file.is_file() else paramiko.HostKeys()
    listed = known.lookup(name)
    if listed is not None and key.get_name() in listed:
        if listed[key.get_name()] == key:
            return line, False
        raise HostKeyError(
            f"trust-host-key: {file} holds another {key.get_name()} key for {name}; remove it on purpose first "
            f"(`ssh-keygen -R {name} -f {file}`), then run this again"
        )
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(file, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    return line, True
