"""Run commands as root on the devpi server, over SSH (Fabric) or on this machine.

`fab -H devpi-host deploy` hands us a Fabric Connection; `fab deploy` on the
server itself hands us a plain Invoke Context. Both become a `Host` whose
`run()` executes as root (through `sudo -n` where we are not root), never
prompts, and turns every failure into one message naming the step.

Whatever a command reads on stdin (files, secrets) is written to the process
at wire speed: Invoke's own `in_stream` feeds one byte per 10 ms, which made a
2.4 KB unit file cost 24 s. Secrets still travel only on stdin, never in argv.
"""

from __future__ import annotations

import inspect
import os
import shlex
import shutil
import socket
import subprocess
import tarfile
import threading
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Callable

from invoke.runners import Result

from devpi_airgap.core.errors import AirgapError, RemoteError
from devpi_airgap.offline.host_keys import guard, known_hosts_files, refusal

CONNECT_TIMEOUT = 15


def _connection_class():
    from fabric import Connection

    return Connection


# A fab stopped mid-step (Ctrl-C, a closed laptop) leaves its command running on the server: without a PTY, the
# remote end hears nothing. A re-run started at once would then install into the same venv, or initialise the
# same server directory, beside it. So every command of ours holds this lock while it runs: the next run's
# commands wait for the one left running. `flock -o` keeps the lock from the command's own children, so a
# process it leaves behind (a service started with systemctl is systemd's, not its) cannot hold it for good.
SERVER_LOCK = "/run/devpi-airgap.lock"
_LOCK_HELD = 75  # flock's exit code, as asked with -E, when a command of another run holds SERVER_LOCK


class Host:
    def __init__(self, c, *, known_hosts: Path | None = None, on_wait: Callable[[str], None] = lambda said: None):
        """`known_hosts`: a file the inventory names, checked before ssh_config's and the user's own.

        `on_wait` hears, before this run's first command waits behind another run's (see SERVER_LOCK), why it waits.
        """
        self.c = c
        self.known_hosts = known_hosts
        self.on_wait = on_wait
        self.is_remote = isinstance(c, _connection_class())
        self.name = c.original_host if self.is_remote else socket.gethostname()
        self.address = c.host if self.is_remote else socket.getfqdn()
        self._prefix: str | None = None
        self._reconnect_lock = threading.Lock()
        self.known_hosts_files: list[Path] = []
        if self.is_remote:
            if c.connect_timeout is None:
                c.connect_timeout = CONNECT_TIMEOUT
            self.known_hosts_files = known_hosts_files(c.ssh_config, known_hosts)
            guard(c, self.known_hosts_files)

    def _raw(self, command: str, stdin: str | None) -> Result:
        if stdin is None:
            try:
                return self.c.run(command, hide=True, warn=True, pty=False, in_stream=False)
            except Exception as exc:
                raise self._connection_error(exc) from None
        data = stdin.encode()
        return self._fed(command, lambda write: write(data))

    def _fed(self, command: str, feed: Callable[[Callable[[bytes], object]], None]) -> Result:
        """Run `command` with `feed(write)` writing its stdin, then EOF, while both outputs are drained."""
        try:
            if self.is_remote:
                return self._remote_fed(command, feed)
            return _local_fed(command, feed)
        except Exception as exc:
            raise self._connection_error(exc) from None

    def _remote_fed(self, command: str, feed) -> Result:
        """One SSH exec channel: stdin at wire speed, then EOF, while both outputs are drained."""
        channel = self._transport().open_session()
        try:
            channel.exec_command(command)
            errors: list[bytes] = []
            # stderr has its own reader, so a command that fills one pipe cannot block on the other.
            drain = threading.Thread(target=lambda: errors.append(_read_all(channel.recv_stderr)), daemon=True)
            drain.start()
            feed(channel.sendall)
            channel.shutdown_write()
            out = _read_all(channel.recv)
            drain.join()
            exited = channel.recv_exit_status()
        finally:
            channel.close()
        return Result(
            stdout=out.decode(errors="replace"),
            stderr=b"".join(errors).decode(errors="replace"),
            command=command,
            exited=exited,
        )

    def _connection_error(self, exc: Exception) -> AirgapError:
        import paramiko

        where = f"{self.name} ({self.address})" if self.is_remote else "this machine"
        refused = refusal(exc, self.name, self.address, self.known_hosts_files) if self.is_remote else None
        if refused is not None:
            return refused
        if isinstance(exc, paramiko.AuthenticationException):
            return RemoteError(
                f"connect: {where} rejected our SSH key ({exc}); add the key to the server's "
                "authorized_keys, or point ssh_config's IdentityFile at the right key"
            )
        if isinstance(exc, (OSError, paramiko.SSHException, EOFError)):
            return RemoteError(
                f"connect: cannot reach {where}: {exc}; check the HostName and Port that ssh_config gives "
                f"for {self.name}, and that sshd runs there and the network path is open"
            )
        return RemoteError(f"running a command on {where} failed: {exc}")

    def become_root(self) -> None:
        """Work out how to be root: directly, or with passwordless sudo. Fails before any change.

        Worked out once per connection: every entry point asks, and each answer costs SSH round trips.
        """
        if self._prefix is not None:
            return
        self._prefix = self._root_prefix()
        self._look_at_lock()

    def _root_prefix(self) -> str:
        uid = self._raw("id -u", None)
        if uid.ok and uid.stdout.strip() == "0":
            return ""
        if self._raw("sudo -n true", None).ok:
            return "sudo -n "
        user = self._raw("id -un", None).stdout.strip() or "this user"
        raise RemoteError(
            f"privileges: {user} on {self.name} is not root and has no passwordless sudo; "
            f"grant it (e.g. '{user} ALL=(ALL) NOPASSWD: ALL' in /etc/sudoers.d/devpi-airgap) "
            "or connect as root"
        )

    def _look_at_lock(self) -> None:
        """Say why the first command will wait, if another run's command holds SERVER_LOCK; and fail before any
        change on a server without flock, which every command needs.

        Without this, a run started right after a stopped one sat silent at its first step until the stopped run's
        command (a venv's install, a bundle's check) had ended on the server.
        """
        looked = self._raw(f"{self._prefix}flock -n -E {_LOCK_HELD} {SERVER_LOCK} true", None)
        if looked.exited == _LOCK_HELD:
            self.on_wait(
                f"{self.name} is still running a command of another devpi-airgap run (one stopped mid-command, or "
                f"one running beside this); this run goes on when it ends. There, `lslocks` shows it on {SERVER_LOCK}."
            )
        elif not looked.ok:
            detail = (looked.stderr or looked.stdout).strip()
            raise RemoteError(
                f"preflight: flock failed on {self.name} (exit {looked.exited}: {detail}); devpi-airgap runs its "
                "commands there one at a time through flock, from util-linux: install util-linux there and run again"
            )

    def _as_root(self, command: str) -> str:
        """The command as root, one at a time on the server (see SERVER_LOCK)."""
        if self._prefix is None:
            self.become_root()
        return f"{self._prefix}flock -o {SERVER_LOCK} sh -c {shlex.quote(command)}"

    def run(self, command: str, *, step: str, stdin: str | None = None, check: bool = True):
        """Run a shell command as root; stdin carries anything secret, never argv."""
        result = self._raw(self._as_root(command), stdin)
        if check and not result.ok:
            detail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-20:])
            raise RemoteError(f"{step}: failed on {self.name} (exit {result.exited}):\n{detail}")
        return result

    def run_program(
        self,
        program: ModuleType,
        *args: str,
        step: str,
        check: bool = True,
        python: str = "python3",
        user: str | None = None,
        stdin: str | None = None,
    ) -> Result:
        """Run one of `offline.programs` (or the bundle checker) with the server's `python` and these arguments.

        The source goes in argv, which is fast and safe: a program holds no secret; secrets go on `stdin`.
        `user` runs it as that user instead of root.
        """
        source = inspect.getsource(program)
        as_user = ("runuser", "-u", user, "--") if user else ()
        argv = " ".join(shlex.quote(a) for a in (*as_user, python, "-c", source, *args))
        return self.run(argv, step=step, check=check, stdin=stdin)

    def ensure_service(self, unit: str, *, step: str, refresh: str | None = None) -> list[str]:
        """Enable and start a systemd unit, or `refresh` ("restart", "reload") a running one; returns what changed."""
        changes = []
        if not self.run(f"systemctl is-enabled --quiet {unit}", step=step, check=False).ok:
            self.run(f"systemctl enable --quiet {unit}", step=step)
            changes.append("enabled")
        if not self.run(f"systemctl is-active --quiet {unit}", step=step, check=False).ok:
            # A unit that hit its start limit refuses `start` until its failure is reset.
            self.run(f"systemctl reset-failed {unit}; systemctl start {unit}", step=step, check=False)
            changes.append("started")
        elif refresh:
            self.run(f"systemctl {refresh} {unit}", step=step, check=False)
            changes.append(f"{refresh}ed")
        return changes

    def put(self, local: Path, remote: str, *, step: str) -> None:
        """Copy one file to a root-owned path, through a private temporary name so a cut leaves no half file."""
        if self.is_remote and self._prefix == "":
            self.c.put(str(local), f"{remote}.part")
            self.run(f"mv -f {shlex.quote(remote)}.part {shlex.quote(remote)}", step=step)
        elif self.is_remote:
            # The staging file is the login user's own, so SFTP (which runs as that user) may write it;
            # root then installs it in place. It is removed whatever happens.
            made = self._raw("mktemp", None)
            if not made.ok:
                raise RemoteError(f"{step}: cannot make a temporary file on {self.name}: {made.stderr.strip()}")
            staging = made.stdout.strip()
            try:
                self.c.put(str(local), staging)
                self.run(f"install -m 0644 {shlex.quote(staging)} {shlex.quote(remote)}", step=step)
            except OSError as exc:
                raise RemoteError(f"{step}: copying {local.name} to {self.name} failed: {exc}") from None
            finally:
                self._raw(f"rm -f {shlex.quote(staging)}", None)
        elif self._prefix == "":
            shutil.copyfile(local, f"{remote}.part")
            os.replace(f"{remote}.part", remote)
        else:
            self.run(f"install -m 0644 {shlex.quote(str(local))} {shlex.quote(remote)}", step=step)

    def put_files(self, files: list[Path], remote_dir: str, *, step: str) -> None:
        """Many files into one new root-owned directory as one tar stream: no round trip per file.

        `remote_dir` is created afresh; on any failure it is removed, so it never holds a part of the files.
        """
        target = shlex.quote(remote_dir)
        command = f"rm -rf {target} && install -d -m 0700 {target} && tar -x --no-same-owner -C {target}"

        def feed(write: Callable[[bytes], object]) -> None:
            with tarfile.open(fileobj=_Writer(write), mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for path in files:
                    info = tar.gettarinfo(str(path), arcname=path.name)
                    info.uid = info.gid = 0
                    info.uname = info.gname = "root"
                    info.mode = 0o644
                    with open(path, "rb") as f:
                        tar.addfile(info, f)

        result = self._fed(self._as_root(command), feed)
        if not result.ok:
            self.run(f"rm -rf {target}", step=step, check=False)
            detail = "\n".join(result.stderr.strip().splitlines()[-5:])
            raise RemoteError(f"{step}: copying {len(files)} files to {self.name}:{remote_dir} failed:\n{detail}")

    def get(self, remote: str, local: Path, *, step: str) -> None:
        """Fetch one root-owned file from the server, through a temporary copy the login user may read."""
        local.parent.mkdir(parents=True, exist_ok=True)
        if not self.is_remote:
            self.run(f"install -m 0600 -o {os.getuid()} {shlex.quote(remote)} {shlex.quote(str(local))}", step=step)
            return
        if self._prefix == "":
            self.c.get(remote, str(local))
            return
        login = self._raw("id -un", None).stdout.strip()
        staging = self.run(
            f"f=$(mktemp) && install -m 0600 -o {shlex.quote(login)} {shlex.quote(remote)} $f && echo $f", step=step
        ).stdout.strip()
        try:
            self.c.get(staging, str(local))
        finally:
            self.run(f"rm -f {shlex.quote(staging)}", step=step, check=False)

    def _transport(self):
        """The live SSH transport, reconnecting once a broken one is noticed (Fabric does the same for run)."""
        with self._reconnect_lock:
            if not self.c.is_connected:
                self.c.open()
            return self.c.transport

    @contextmanager
    def http(self, port: int):
        """A base URL on this machine that reaches the server's port on its loopback."""
        if not self.is_remote:
            yield f"http://127.0.0.1:{port}"
            return
        try:
            self.c.open()
        except Exception as exc:
            raise self._connection_error(exc) from None
        with _Tunnel(self._transport, port) as local:
            yield f"http://127.0.0.1:{local}"


class _Tunnel:
    """Forward a local port to the server's loopback over the SSH connection.

    Why not Fabric's forward_local: the hang-up test's traffic (600 clients
    that drop a 20 MB response mid-way, half of them with a reset) took it
    down on the offline test host (2026-11-26, Fabric 3): the SSH transport
    died, 583 of the clients and every request after them timed out, and it
    raised ThreadException (BrokenPipeError) at exit. This tunnel keeps the
    same connection alive through it (test_tunnel_survives_clients_hanging_up_
    mid_response); here each connection's end is its own business.
    Never select() on a channel: paramiko then backs it with an OS pipe, and a
    client hanging up mid-response closes that pipe while the transport thread
    still writes to it, which kills the whole SSH connection (paramiko #1157).
    Blocking reads, one thread per direction, need no pipe. Should the SSH
    connection still break, the next client connection opens a fresh one.
    """

    def __init__(self, transport, remote_port: int):
        self.transport = transport  # a callable: the live transport
        self.remote_port = remote_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.open: set = set()
        self.lock = threading.Lock()

    def __enter__(self) -> int:
        threading.Thread(target=self._accept, daemon=True).start()
        return self.listener.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.listener.close()
        with self.lock:
            pairs, self.open = list(self.open), set()
        for pair in pairs:
            _close_pair(*pair)

    def _accept(self) -> None:
        while True:
            try:
                client, peer = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client, peer), daemon=True).start()

    def _connect(self, client: socket.socket, peer) -> None:
        try:
            channel = self.transport().open_channel("direct-tcpip", ("127.0.0.1", self.remote_port), peer)
        except Exception:
            client.close()
            return
        pair = (client, channel)
        with self.lock:
            self.open.add(pair)
        threading.Thread(target=_client_to_server, args=pair, daemon=True).start()
        try:
            while data := channel.recv(1 << 16):
                client.sendall(data)
        except Exception:  # the client hung up, or the SSH connection is gone: this connection ends either way
            pass
        finally:
            with self.lock:
                self.open.discard(pair)
            _close_pair(client, channel)


def _client_to_server(client: socket.socket, channel) -> None:
    """Close (never half-close) the channel when the client is done.

    paramiko builds an EOF under its lock but sends it after; should the
    server's close arrive in between, the EOF follows our CLOSE and sshd drops
    the whole connection. close() re-checks under the lock, so it cannot race.
    """
    try:
        while data := client.recv(1 << 16):
            channel.sendall(data)
    except Exception:  # the client reset, or the channel is already gone
        pass
    _close_quietly(channel)  # ends the other direction too


def _close_quietly(channel) -> None:
    # A channel whose SSH connection is already gone raises on close; that connection's end
    # is not news to anyone, and a thread's traceback after a good deploy would be.
    try:
        channel.close()
    except Exception:
        pass


class _Writer:
    """The file object tarfile's stream mode writes to, over any `write(bytes)`."""

    def __init__(self, write: Callable[[bytes], object]):
        self.write = write


def _local_fed(command: str, feed) -> Result:
    proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    outputs: dict[str, bytes] = {}
    drains = [
        threading.Thread(target=lambda n=name, r=stream.read: outputs.__setitem__(n, _read_all(r)), daemon=True)
        for name, stream in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for drain in drains:
        drain.start()
    try:
        feed(proc.stdin.write)
    except BrokenPipeError:
        pass  # the command stopped reading; its exit status and stderr say why
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
    for drain in drains:
        drain.join()
    return Result(
        stdout=outputs["out"].decode(errors="replace"),
        stderr=outputs["err"].decode(errors="replace"),
        command=command,
        exited=proc.wait(),
    )


def _read_all(recv) -> bytes:
    chunks = []
    while chunk := recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _close_pair(client: socket.socket, channel) -> None:
    _close_quietly(channel)
    try:
        client.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    client.close()
