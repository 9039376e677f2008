"""Minimal devpi-server install on an OfflineHost, for testing the unit.

Deliberately small: the real deploy (Fabric) tests are expected to replace
this. The host has no network, so wheels are fetched here on the runner
(cached) and copied in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devpi_airgap.offline.systemd_unit import render_unit
from testing.offline_host import OfflineHost, cache_dir

VENV = "/opt/devpi/venv"
SERVERDIR = "/var/lib/devpi/server"
SECRETFILE = "/etc/devpi/secret"
PORT = 3141
GUEST_PY = ("3.11", "cp311")  # bookworm's python3
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
PACKAGES = ("devpi-server", "devpi-web")


def _pip(*args: str, cwd=None) -> None:
    env = dict(os.environ, PIP_CONFIG_FILE="/dev/null")
    env.pop("PIP_FIND_LINKS", None)  # this runner's local wheel dir must not leak in
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL)


def guest_wheels(dest: Path | None = None) -> Path:
    """Wheels for devpi-server(+web) matching the guest; needs network once."""
    dest = Path(dest or cache_dir().parent / f"devpi-wheels-{GUEST_PY[1]}")
    stamp = dest / ".complete"
    if stamp.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    # pyramid-chameleon only ships an sdist; it is pure Python, so a wheel
    # built here is valid for the guest too.
    _pip("wheel", "--no-deps", "-w", str(dest), "pyramid-chameleon")
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    _pip(
        "download",
        "--only-binary=:all:",
        *plat,
        "--python-version",
        GUEST_PY[0],
        "--implementation",
        "cp",
        "--abi",
        GUEST_PY[1],
        "--find-links",
        str(dest),
        "-d",
        str(dest),
        *PACKAGES,
    )
    stamp.write_text("")
    return dest


def install_devpi(host: OfflineHost, root_password: str, *, port: int = PORT, wheels: Path | None = None) -> str:
    """Install devpi-server as devpi.service; returns the rendered unit text."""
    wheels = guest_wheels(wheels)
    host.run("rm -rf /root/wheels", check=True)
    host.put(wheels, "/root/wheels")
    host.run(
        f"set -e; python3 -m venv {VENV}; "
        f"{VENV}/bin/pip install -q --no-index --find-links /root/wheels {' '.join(PACKAGES)}",
        check=True,
        timeout=600,
    )
    host.run(
        "set -e; id devpi >/dev/null 2>&1 || useradd --system --user-group "
        "--home-dir /var/lib/devpi --shell /usr/sbin/nologin devpi; "
        f"install -d -o devpi -g devpi -m 0700 /var/lib/devpi {SERVERDIR}; "
        # devpi refuses a secret whose dir is group/world writable or that is
        # readable by anyone but its owner.
        f"install -d -o root -g root -m 0755 {os.path.dirname(SECRETFILE)}; "
        f"test -e {SECRETFILE} || {VENV}/bin/devpi-gen-secret --secretfile {SECRETFILE}; "
        f"chown devpi:devpi {SECRETFILE}; chmod 0600 {SECRETFILE}",
        check=True,
    )
    # The root password travels over ssh's stdin into an environment variable
    # (DEVPISERVER_ROOT_PASSWD, which devpi-init reads like --root-passwd), so
    # it never shows up in any process's argv (ps, /proc/*/cmdline).
    host.run(
        "set -e; IFS= read -r DEVPISERVER_ROOT_PASSWD; export DEVPISERVER_ROOT_PASSWD; "
        f"test -e {SERVERDIR}/.nodeinfo || runuser -u devpi -- {VENV}/bin/devpi-init "
        f"--serverdir {SERVERDIR} --no-root-pypi",
        input=root_password + "\n",
        check=True,
        timeout=300,
    )
    unit = render_unit(venv=VENV, serverdir=SERVERDIR, secretfile=SECRETFILE, host="0.0.0.0", port=port)
    host.run("cat > /etc/systemd/system/devpi.service", input=unit, check=True)
    host.run("systemctl daemon-reload && systemctl enable --now devpi.service", check=True)
    return unit


def service_debug(host: OfflineHost) -> str:
    r = host.run("systemctl status --no-pager devpi.service; journalctl --no-pager -n 60 -u devpi.service")
    return r.stdout + r.stderr


def devpi_client(clientdir: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("devpi")
    return subprocess.run(
        [str(exe), "--clientdir", str(clientdir), *args], capture_output=True, text=True, input=input, timeout=120
    )
