"""wait_healthy.py PORT UNIT TIMEOUT: poll devpi's /+status on loopback until it answers.

Gives up early when systemd has marked the unit failed, and exits non-zero
with the last error after TIMEOUT seconds.
"""

import subprocess
import sys
import time
import urllib.request


def main() -> None:
    port, unit, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/+status", timeout=5).read()
            sys.exit(0)
        except Exception as exc:
            failed = subprocess.run(["systemctl", "is-failed", "--quiet", unit]).returncode == 0
            if failed or time.monotonic() > deadline:
                sys.exit(f"{exc}")
            time.sleep(0.5)


if __name__ == "__main__":
    main()
