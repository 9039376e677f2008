"""Print what decides whether the server can run a target's wheels: Python, CPU, libc, venv, systemd."""

import importlib.util
import json
import os
import platform
import sys


def main() -> None:
    print(
        json.dumps(
            {
                "python": "%d.%d" % sys.version_info[:2],
                "machine": platform.machine(),
                "libc": platform.libc_ver(),
                "ensurepip": importlib.util.find_spec("ensurepip") is not None,
                "systemd": os.path.isdir("/run/systemd/system"),
            }
        )
    )


if __name__ == "__main__":
    main()
