"""Print what decides whether the server can run a target's wheels: Python, CPU, libc, venv and its pip, systemd."""

import importlib.util
import json
import os
import platform
import sys


def _ensurepip_version():
    """The pip that `python3 -m venv` puts in a new venv, or None."""
    try:
        import ensurepip

        return ensurepip.version()
    except Exception:  # absent (Debian without python3-venv) or its bundled wheel is missing
        return None


def main() -> None:
    print(
        json.dumps(
            {
                "python": "%d.%d" % sys.version_info[:2],
                "machine": platform.machine(),
                "libc": platform.libc_ver(),
                "ensurepip": importlib.util.find_spec("ensurepip") is not None,
                "pip": _ensurepip_version(),
                "systemd": os.path.isdir("/run/systemd/system"),
            }
        )
    )


if __name__ == "__main__":
    main()
