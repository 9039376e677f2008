"""wait_replicated.py PORT TIMEOUT: wait until a devpi replica's serial has caught up with its primary's."""

import json
import sys
import time
import urllib.request


def main() -> None:
    port, timeout = sys.argv[1], float(sys.argv[2])
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/+status", headers={"Accept": "application/json"})
        status = json.load(urllib.request.urlopen(request, timeout=10))["result"]
        serial, primary = status.get("serial"), status.get("primary-serial")
        if primary is not None and serial is not None and serial >= primary:
            sys.exit(0)
        if time.monotonic() > deadline:
            sys.exit(json.dumps(dict(serial=serial, primary_serial=primary, errors=status.get("replication-errors"))))
        time.sleep(1)


if __name__ == "__main__":
    main()
