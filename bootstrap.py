#!/usr/bin/env python3
"""Set up this checkout on a fresh machine with only python3, then run the main job or the tests.

    python3 bootstrap.py download   # venv + every wheelhouse in inventory.yaml, verified offline
    python3 bootstrap.py test       # venv + test prerequisites + the whole test suite

Re-running is cheap: the venv is only reinstalled when pyproject.toml changed.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
# A venv keeps its programs in Scripts\ on Windows and in bin/ elsewhere.
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
# What the offline-host tests need: systemd-nspawn, debootstrap, sshd/ssh, ip.
DEBIAN_TEST_PACKAGES = ["systemd-container", "debootstrap", "openssh-server", "openssh-client", "iproute2", "chromium"]


def say(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


def ensure_venv(extras: str) -> None:
    if not PYTHON.exists():
        say(f"creating {VENV}")
        venv.create(VENV, with_pip=True)
    stamp = VENV / f".installed{extras}"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != wanted:
        say(f"installing devpi-airgap{extras} into {VENV}")
        subprocess.run(
            [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f"{ROOT}{extras}"],
            check=True,
        )
        stamp.write_text(wanted)
    # Byte-compiled, as pip compiles what it installs: an editable install leaves the checkout's modules to
    # each run where PYTHONDONTWRITEBYTECODE is set (as on our CI machines), 0.11 s of a 1.5 s no-op re-run.
    # Up to date, this only compares timestamps.
    compiled = [str(PYTHON), "-m", "compileall", "-q", "devpi_airgap", "tasks.py", "fabfile.py"]
    subprocess.run(compiled, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def ensure_debian_packages() -> None:
    if sys.platform == "win32" or os.geteuid() != 0 or not shutil.which("apt-get"):
        say("not root on Debian: the offline-host tests will be skipped (they fail under CI=1)")
        return
    missing = [
        p
        for p in DEBIAN_TEST_PACKAGES
        if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout
        != "install ok installed"
    ]
    if not missing:
        return
    say(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    os.chdir(ROOT)
    if command == "download":
        ensure_venv("")
        return subprocess.run([str(PYTHON), "-m", "invoke", "download", "--target", "all", *argv[1:]]).returncode
    if command == "test":
        ensure_venv("[test]")
        ensure_debian_packages()
        # Lint, format and types first: a slip fails in seconds, not after the whole suite. The type check runs
        # as Windows and macOS too, so a POSIX-only call on the ops workstation's side cannot land.
        checks = [["ruff", "check", "."], ["ruff", "format", "--check", "."]]
        checks += [["mypy", "--platform", platform] for platform in ("win32", "darwin", "linux")]
        for check in checks:
            say(" ".join(check))
            if subprocess.run([str(PYTHON), "-m", *check]).returncode:
                return 1
        pytest = [str(PYTHON), "-m", "pytest", "-ra", *argv[1:]]
        return subprocess.run(pytest).returncode
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
