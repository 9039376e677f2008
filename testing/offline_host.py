"""An offline Debian host for tests: a systemd-nspawn container in its own netns.

The container boots a real systemd (so units, sandboxing and reboots behave as
on the target), is reachable only over a point-to-point veth from this runner,
and has no default route: anything that silently needs the internet fails here
just as it would on the air-gapped machine.

Core functions do not import pytest; the fixtures at the bottom do, lazily.

PYTEST_DONT_REWRITE: test modules import this before pytest loads it as a
plugin; its asserts carry their own messages, so rewriting is not needed.
"""

from __future__ import annotations

import contextlib
import glob
import ipaddress
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

SUITE = "bookworm"
INCLUDE = "systemd,systemd-sysv,dbus,openssh-server,python3,python3-venv,iproute2,nginx,sudo"
# Bump when the prep of the cached image changes, so stale caches are rebuilt.
IMAGE_VERSION = "3"
BOOT_TIMEOUT = 60.0


def log(msg: str) -> None:
    print(f"[offline-host] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# mirror discovery: never hard-code a public host, use what this machine uses
# --------------------------------------------------------------------------


def _deb822_stanzas(text: str):
    stanza: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, None
            continue
        if line[0].isspace() and key:
            stanza[key] += " " + line.strip()
            continue
        if ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            stanza[key] = value.strip()
    if stanza:
        yield stanza


def find_debian_mirror(suite: str = SUITE, etc: str = "/etc/apt") -> str:
    """Return the Debian archive URI this machine's apt uses for `suite`."""
    candidates: list[str] = []
    for path in sorted(glob.glob(os.path.join(etc, "sources.list.d", "*.sources"))):
        with open(path) as f:
            for st in _deb822_stanzas(f.read()):
                if st.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" not in st.get("types", "").split():
                    continue
                if suite in st.get("suites", "").split():
                    candidates += st.get("uris", "").split()
    lists = [os.path.join(etc, "sources.list")]
    lists += sorted(glob.glob(os.path.join(etc, "sources.list.d", "*.list")))
    for path in lists:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                parts = line.split("#", 1)[0].split()
                if not parts or parts[0] != "deb":
                    continue
                parts = parts[1:]
                if parts and parts[0].startswith("["):  # [signed-by=...] options
                    while parts and not parts[0].endswith("]"):
                        parts.pop(0)
                    parts = parts[1:]
                if len(parts) >= 2 and parts[1] == suite:
                    candidates.append(parts[0])
    for uri in candidates:
        if uri.startswith(("http://", "https://", "file:/")):
            return uri.rstrip("/")
    raise RuntimeError(f"no apt source for suite {suite!r} found under {etc}")


def mirror_host(uri: str | None = None) -> str:
    return urlsplit(uri or find_debian_mirror()).hostname or ""


# --------------------------------------------------------------------------
# cached pristine rootfs
# --------------------------------------------------------------------------


def cache_dir(suite: str = SUITE) -> Path:
    env = os.environ.get("DEVPI_AIRGAP_CACHE")
    if env:
        return Path(env) if suite == SUITE else Path(env).with_name(f"{Path(env).name}-{suite}")
    # Versioned, so a bumped image builds beside the old one, which running tests may use as their lower dir.
    return Path.home() / ".cache" / "devpi-airgap" / f"rootfs-{suite}-v{IMAGE_VERSION}"


def debian_mirror(suite: str) -> str:
    """The archive for any suite: the one this machine's apt uses, which carries the other releases too."""
    try:
        return find_debian_mirror(suite)
    except RuntimeError:
        return find_debian_mirror(SUITE)


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def _prepare_image(root: Path) -> None:
    """One-time fixes baked into the cached image (shared by every boot)."""
    # sshd refuses to start without host keys; minbase debootstrap in a chroot
    # may skip their generation. Baking them in keeps every boot fast.
    if not list((root / "etc/ssh").glob("ssh_host_*_key")):
        _run(["chroot", str(root), "ssh-keygen", "-A"])
    # Units that cannot work inside a container would leave the system
    # "degraded", hiding real failures of the units under test.
    for unit in (
        "systemd-networkd-wait-online.service",
        "getty@tty1.service",
        "systemd-remount-fs.service",
    ):
        link = root / "etc/systemd/system" / unit
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("/dev/null")
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    ssh_link = wants / "ssh.service"
    if not ssh_link.exists():
        ssh_link.symlink_to("/lib/systemd/system/ssh.service")
    # The package enables nginx; only a deploy with a front should (and it then checks that it does).
    (wants / "nginx.service").unlink(missing_ok=True)
    # Debian's generated machine-id must be unique per boot; an empty file makes
    # systemd generate a transient one instead of "first boot" handling.
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("devpi-host\n")
    # A root password is never needed: access is by ssh key only.
    os.chmod(root, 0o755)
    (root / ".devpi-airgap-image").write_text(IMAGE_VERSION + "\n")


def ensure_rootfs(cache: Path | None = None, suite: str = SUITE) -> Path:
    """Build the pristine rootfs of a Debian suite once; later calls return the cached path."""
    cache = Path(cache or cache_dir(suite))
    stamp = cache / ".devpi-airgap-image"
    if stamp.exists() and stamp.read_text().strip() == IMAGE_VERSION:
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    mirror = debian_mirror(suite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}.build-", dir=cache.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would make dbus in the guest fail
        log(f"debootstrap {suite} from {mirror} into {tmp} (one-time)")
        t0 = time.monotonic()
        _run(
            ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", suite, str(tmp), mirror],
            stdout=subprocess.DEVNULL if not os.environ.get("OFFLINE_HOST_VERBOSE") else None,
        )
        _prepare_image(tmp)
        log(f"rootfs built in {time.monotonic() - t0:.0f}s")
        if cache.exists():  # stale version: swap it out, then delete
            old = cache.with_name(cache.name + f".old-{uuid.uuid4().hex[:8]}")
            cache.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            tmp.rename(cache)
        except OSError:
            if not (stamp.exists() and stamp.read_text().strip() == IMAGE_VERSION):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # a parallel build won the race
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return cache


# --------------------------------------------------------------------------
# per-boot network: a netns with a /30 veth link and nothing else
# --------------------------------------------------------------------------


def _host_ipv4_networks() -> list[ipaddress.IPv4Network]:
    out = _run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
    nets = []
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    return nets


def pick_subnet(base: str = "10.231.0.0/16") -> ipaddress.IPv4Network:
    """A free private /30; random so parallel runs rarely collide."""
    import random

    used = _host_ipv4_networks()
    subnets = list(ipaddress.ip_network(base).subnets(new_prefix=30))
    random.shuffle(subnets)
    for net in subnets:
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError(f"no free /30 left in {base}")


def copy_rootfs(src: Path, dst: Path) -> float:
    """Fresh writable copy of the pristine image; returns seconds taken."""
    t0 = time.monotonic()
    _run(["cp", "-a", "--reflink=auto", f"{src}/.", str(dst)])
    os.chmod(dst, 0o755)
    return time.monotonic() - t0


def overlay_rootfs(src: Path, dst: Path, scratch: Path) -> float:
    """Writable overlay over the pristine image (instant; writes go to scratch).

    The lower dir is never written through an overlay, so the cache stays
    pristine exactly as with a full copy.
    """
    t0 = time.monotonic()
    upper, work = scratch / "upper", scratch / "work"
    upper.mkdir(mode=0o755)
    work.mkdir(mode=0o700)
    os.chmod(upper, 0o755)  # becomes the mode of the guest's "/": dbus needs 0755
    _run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={src},upperdir={upper},workdir={work}", str(dst)])
    return time.monotonic() - t0


# --------------------------------------------------------------------------
# the host object
# --------------------------------------------------------------------------


class OfflineHostError(RuntimeError):
    pass


class OfflineHost:
    """A booted, network-isolated container reachable over ssh from here.

    Attributes: address, ssh_key_path, ssh_config_path, workdir, rootfs,
    netns, boot_seconds, copy_seconds.
    """

    ssh_alias = "devpi-host"

    def __init__(
        self,
        *,
        subnet: str | None = None,
        image: Path | None = None,
        workdir: Path | None = None,
        boot_timeout: float = BOOT_TIMEOUT,
        copy_mode: str | None = None,
        suite: str = SUITE,
    ):
        """copy_mode: "overlay" (default; falls back to "copy" if the kernel
        refuses) or "copy" (cp -a --reflink=auto), also via
        $OFFLINE_HOST_COPY_MODE."""
        self.suite = suite
        self.image = ensure_rootfs(image, suite)
        self.copy_mode = copy_mode or os.environ.get("OFFLINE_HOST_COPY_MODE", "overlay")
        if self.copy_mode not in ("overlay", "copy"):
            raise ValueError(f"copy_mode must be 'overlay' or 'copy', not {self.copy_mode!r}")
        self._mounted = False
        self.boot_timeout = boot_timeout
        tag = uuid.uuid4().hex[:8]
        self.name = f"dah-{tag}"
        self.netns = self.name
        self.veth_host = f"dah{tag}h"
        self.veth_guest = f"dah{tag}g"
        net = ipaddress.ip_network(subnet) if subnet else pick_subnet()
        if net.prefixlen != 30:
            raise ValueError("subnet must be a /30")
        self.network = net
        self.host_address, self.address = (str(a) for a in net.hosts())
        base = Path(workdir) if workdir else self.image.parent
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=base))
        self.rootfs = self.workdir / "rootfs"
        self.ssh_key_path = self.workdir / "id_ed25519"
        self.ssh_config_path = self.workdir / "ssh_config"
        # The host's real keys, so that ssh and every fab task verify the host as a user's would.
        self.known_hosts_path = self.workdir / "known_hosts"
        self.console_log = self.workdir / "console.log"
        self._proc: subprocess.Popen | None = None
        self._netns_created = False
        self.copy_seconds = 0.0
        self.boot_seconds = 0.0

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "OfflineHost":
        try:
            self.rootfs.mkdir(mode=0o755)
            if self.copy_mode == "overlay":
                try:
                    self.copy_seconds = overlay_rootfs(self.image, self.rootfs, self.workdir)
                    self._mounted = True
                except subprocess.CalledProcessError:
                    log("overlay mount failed, falling back to a full copy")
                    self.copy_mode = "copy"
            if self.copy_mode == "copy":
                self.copy_seconds = copy_rootfs(self.image, self.rootfs)
            log(f"{self.name}: rootfs {self.copy_mode} took {self.copy_seconds:.2f}s")
            self._prepare_copy()
            self._setup_network()
            self._boot()
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> "OfflineHost":
        return self.start() if self._proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _prepare_copy(self) -> None:
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name, "-f", str(self.ssh_key_path)])
        ssh_dir = self.rootfs / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(ssh_dir, 0o700)
        ak = ssh_dir / "authorized_keys"
        ak.write_text(Path(f"{self.ssh_key_path}.pub").read_text())
        os.chmod(ak, 0o600)
        os.chown(ssh_dir, 0, 0)
        os.chown(ak, 0, 0)
        (self.rootfs / "etc/hostname").write_text("devpi-host\n")
        self.known_hosts_path.write_text(
            "".join(
                f"{self.address} {' '.join(pub.read_text().split()[:2])}\n"
                for pub in sorted((self.rootfs / "etc/ssh").glob("ssh_host_*_key.pub"))
                if "ed25519" in pub.name
            )
        )
        self.ssh_config_path.write_text(
            f"Host {self.ssh_alias}\n"
            f"    HostName {self.address}\n"
            f"    User root\n"
            f"    IdentityFile {self.ssh_key_path}\n"
            f"    IdentitiesOnly yes\n"
            f"    StrictHostKeyChecking yes\n"
            f"    UserKnownHostsFile {self.known_hosts_path}\n"
            f"    LogLevel ERROR\n"
            f"    BatchMode yes\n"
            f"    ConnectTimeout 5\n"
        )

    def _setup_network(self) -> None:
        ns = ["ip", "-n", self.netns]
        _run(["ip", "netns", "add", self.netns])
        self._netns_created = True
        _run(
            ["ip", "link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_guest, "netns", self.netns]
        )
        _run(["ip", "addr", "add", f"{self.host_address}/30", "dev", self.veth_host])
        _run(["ip", "link", "set", self.veth_host, "up"])
        _run(ns + ["link", "set", self.veth_guest, "name", "eth0"])
        _run(ns + ["addr", "add", f"{self.address}/30", "dev", "eth0"])
        _run(ns + ["link", "set", "eth0", "up"])
        _run(ns + ["link", "set", "lo", "up"])
        # Deliberately no default route and no NAT: the only peer is us.

    def _spawn(self) -> None:
        logf = open(self.console_log, "ab")
        try:
            self._proc = subprocess.Popen(
                [
                    "systemd-nspawn",
                    "-b",
                    "--register=no",
                    "--keep-unit",
                    "--console=read-only",
                    f"--machine={self.name}",
                    f"--network-namespace-path=/run/netns/{self.netns}",
                    "-D",
                    str(self.rootfs),
                ],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a ^C to pytest must not kill it mid-boot
            )
        finally:
            logf.close()

    def _boot(self) -> None:
        t0 = time.monotonic()
        self._spawn()
        self.wait_running(t0 + self.boot_timeout)
        self.boot_seconds = time.monotonic() - t0
        log(f"{self.name}: booted at {self.address} in {self.boot_seconds:.1f}s")

    def console_tail(self, lines: int = 40) -> str:
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return "<no console log>"
        text = text.replace("\r", "")
        return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])

    def _fail(self, msg: str) -> None:
        raise OfflineHostError(
            f"{self.name}: {msg}\n--- console log tail ({self.console_log}) ---\n{self.console_tail()}"
        )

    def _ssh_port_open(self) -> bool:
        try:
            with socket.create_connection((self.address, 22), timeout=1):
                return True
        except OSError:
            return False

    def wait_running(self, deadline: float) -> None:
        while not self._ssh_port_open():
            if self._proc is not None and self._proc.poll() is not None:
                self._fail(f"systemd-nspawn exited with {self._proc.returncode}")
            if time.monotonic() > deadline:
                self._fail("timed out waiting for sshd on port 22")
            time.sleep(0.2)
        state = ""
        while time.monotonic() < deadline:
            left = max(1, int(deadline - time.monotonic()))
            r = self.run(f"timeout {left} systemctl is-system-running --wait", timeout=left + 10)
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                break
            if r.returncode == 255:  # ssh itself failed: sshd still settling
                time.sleep(0.3)
        if state == "degraded":
            failed = self.run("systemctl --failed --no-pager").stdout
            self._fail(f"system is degraded:\n{failed}")
        if state != "running":
            self._fail(f"system did not reach 'running' (last state {state!r})")

    def _init_starttime(self) -> str:
        r = self.run("cut -d' ' -f22 /proc/1/stat")
        return r.stdout.strip() if r.returncode == 0 else ""

    def reboot(self) -> None:
        """Reboot the container in place (same rootfs copy, same netns)."""
        before = self._init_starttime()
        t0 = time.monotonic()
        deadline = t0 + self.boot_timeout
        self.run("systemctl reboot --no-block", timeout=15)
        # nspawn either restarts init itself or exits (133 = reboot request);
        # in the latter case boot the same tree again.
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._spawn()
                break
            if not self._ssh_port_open():
                break
            if self._init_starttime() not in ("", before):
                break
            time.sleep(0.3)
        while time.monotonic() < deadline:
            if self._proc.poll() is not None and self._proc.returncode != 0:
                self._spawn()
            if self._ssh_port_open() and self._init_starttime() not in ("", before):
                break
            time.sleep(0.3)
        self.wait_running(deadline)
        log(f"{self.name}: rebooted in {time.monotonic() - t0:.1f}s")

    def stop(self) -> None:
        """Power off, then remove netns, veth and the rootfs copy. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # SIGTERM makes nspawn ask the guest's init for an orderly poweroff.
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._netns_created:
            subprocess.run(["ip", "netns", "del", self.netns], stderr=subprocess.DEVNULL)
            self._netns_created = False
        # The host end vanishes with its peer; this only covers a half-made pair.
        subprocess.run(["ip", "link", "del", self.veth_host], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self._mounted:
            r = subprocess.run(["umount", str(self.rootfs)], stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", str(self.rootfs)])
            self._mounted = False
        if self.workdir.exists() and not os.path.ismount(self.rootfs):
            # Never rmtree through a still-mounted overlay: its lower dir is
            # the read-only cache, but the upper must not be half-deleted.
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- use ---------------------------------------------------------------
    def ssh_argv(self, *extra: str) -> list[str]:
        return ["ssh", "-F", str(self.ssh_config_path), *extra, self.ssh_alias]

    def run(
        self, cmd, *, check: bool = False, input=None, timeout: float = 120, text: bool = True
    ) -> subprocess.CompletedProcess:
        """Run a shell command line (str) or argv (list) inside the container."""
        if not isinstance(cmd, str):
            cmd = shlex.join(cmd)
        r = subprocess.run(
            self.ssh_argv() + ["--", cmd],
            input=input,
            text=text,
            capture_output=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and r.returncode != 0:
            raise OfflineHostError(f"{cmd!r} failed ({r.returncode}) on {self.name}:\n{r.stdout}\n{r.stderr}")
        return r

    def put(self, src: str | os.PathLike, dest: str) -> None:
        """Copy a local file or directory tree into the guest (absolute dest)."""
        _run(["scp", "-F", str(self.ssh_config_path), "-q", "-r", str(src), f"{self.ssh_alias}:{dest}"])


def cleanup_stale(base: Path | None = None) -> list[str]:
    """Remove netns/overlays/dirs left by killed runs (no live nspawn uses them).

    Not called automatically: a parallel session could be between creating its
    netns and starting nspawn. Run `python -m testing.offline_host --cleanup`.
    """
    base = Path(base or cache_dir().parent)
    live = set()
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            args = Path(cmdline).read_bytes().split(b"\0")
            if args and args[0].endswith(b"systemd-nspawn"):
                live.update(a.decode().rsplit("/", 1)[-1] for a in args if a.startswith(b"--network-namespace-path="))
    removed = []
    for ns in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
        if ns.startswith("dah-") and ns not in live:
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
            removed.append(ns)
    for d in base.glob("dah-*-*"):
        if d.name.split("-")[0] + "-" + d.name.split("-")[1] in live:
            continue
        if os.path.ismount(d / "rootfs"):
            subprocess.run(["umount", "-l", str(d / "rootfs")])
        shutil.rmtree(d, ignore_errors=True)
        removed.append(str(d))
    return removed


# --------------------------------------------------------------------------
# isolation check
# --------------------------------------------------------------------------


def registry_hosts() -> list[str]:
    """Package registry hosts this runner uses, derived at runtime."""
    hosts = []
    with contextlib.suppress(Exception):
        hosts.append(mirror_host())
    with contextlib.suppress(Exception):
        from pip._internal.models.index import PyPI  # pip's own default index

        hosts += [PyPI.netloc, PyPI.file_storage_domain]
    return [h for h in dict.fromkeys(hosts) if h]


def assert_no_route_out(host: OfflineHost, hosts: list[str] | None = None) -> None:
    for family in ("-4", "-6"):
        routes = host.run(["ip", family, "route", "show"], check=True).stdout
        assert "default" not in routes, f"guest has a default route ({family}):\n{routes}"
    hosts = hosts if hosts is not None else registry_hosts()
    assert hosts, "could not derive any registry host to probe"
    probe = (
        "import socket,sys\n"
        "ip=sys.argv[1]\n"
        "try:\n"
        "    socket.create_connection((ip,int(sys.argv[2])),timeout=3).close()\n"
        "except OSError as e:\n"
        "    print('blocked',type(e).__name__,e); sys.exit(0)\n"
        "print('CONNECTED'); sys.exit(1)\n"
    )
    for name in hosts:
        r = host.run(["getent", "ahosts", name], timeout=30)
        assert r.returncode != 0, f"guest resolved {name}: {r.stdout}"
        infos = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)
        for ip in sorted({i[4][0] for i in infos if i[0] == socket.AF_INET})[:2]:
            for port in (80, 443):
                t0 = time.monotonic()
                r = host.run(["python3", "-c", probe, ip, str(port)], timeout=30)
                assert r.returncode == 0, f"guest reached {name} ({ip}:{port}): {r.stdout}{r.stderr}"
                assert time.monotonic() - t0 < 10, f"probe to {ip} took too long"


# --------------------------------------------------------------------------
# pytest fixtures (pytest is imported only here)
# --------------------------------------------------------------------------


def missing_requirements() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for tool in ("systemd-nspawn", "debootstrap", "ssh", "ssh-keygen", "ip", "scp"):
        if shutil.which(tool) is None:
            missing.append(tool)
    return missing


try:
    import pytest
except ImportError:  # core functions stay usable without pytest
    pytest = None

if pytest is not None:

    def require_offline_host_support() -> None:
        missing = missing_requirements()
        if missing:
            msg = "offline host needs: " + ", ".join(missing)
            if os.environ.get("CI"):
                pytest.fail(msg + " (a skip in CI is a failure)", pytrace=False)
            pytest.skip(msg)

    @pytest.fixture(scope="session")
    def offline_host():
        """One booted offline host shared by the whole session."""
        require_offline_host_support()
        with OfflineHost() as host:
            yield host

    @pytest.fixture
    def fresh_offline_host():
        """A host of its own for tests that break or reboot it (boots in ~1s)."""
        require_offline_host_support()
        with OfflineHost() as host:
            yield host


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":  # manual use: boot, print the ssh config, wait
    if "--cleanup" in sys.argv:
        print("\n".join(cleanup_stale()) or "nothing stale")
        sys.exit(0)
    # Stopped by SIGTERM as by Ctrl-C: started in the background, a shell ignores SIGINT for it, and a plain
    # SIGTERM ended it without stopping the container, which then ran on without it.
    signal.signal(signal.SIGTERM, _interrupt)
    with OfflineHost() as h:
        print(h.ssh_config_path.read_text())
        print(f"ssh -F {h.ssh_config_path} {h.ssh_alias}   (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
