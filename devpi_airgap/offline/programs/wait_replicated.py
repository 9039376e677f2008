"""wait_replicated.py PORT PATIENCE: wait until a devpi replica holds its primary's serial and the files of it.

It waits as long as the replica moves on, and gives up only after PATIENCE
seconds without any move: a big wheelhouse over a slow link may take far
longer than that to replicate, and is no failure for it.
"""

import json
import sys
import time
import urllib.request

POLL = 0.25


def sync_state(status: dict) -> str:
    """'in sync', 'files catching up' or 'catching up', from a replica's /+status.

    The serial alone says only that the metadata arrived: devpi fetches the files
    after it, in its own threads. Until a file is there, the replica streams it from
    the primary, and a request that meets one of those threads storing the same file
    gets a 500 from devpi-server 6.20. So the files count too. devpi marks the time
    its file queue was last found drained (every second or two while idle); that
    mark, later than its mark of the metadata being in sync, means every file of
    that serial left the queue.
    """
    serial, primary = status.get("serial"), status.get("primary-serial")
    if primary is None or serial is None or serial < primary:
        return "catching up"
    if "replica-files-in-sync-at" not in status:
        return "in sync"  # devpi-server before 6.19 has no file mark: the serial is all it tells
    files, metadata = status.get("replica-files-in-sync-at"), status.get("replica-metadata-in-sync-at")
    if files is None or metadata is None or files <= metadata:
        return "files catching up"
    return "in sync"


def progress(status: dict) -> tuple:
    """What changes while a replica catches up: its serial, and the files still queued for download."""
    queued = {metric[0]: metric[2] for metric in status.get("metrics", []) if len(metric) == 3}
    return (
        status.get("serial"),
        queued.get("devpi_server_replica_file_download_queue_size"),
        queued.get("devpi_server_replica_file_download_error_queue_size"),
    )


def main() -> None:
    port, patience = sys.argv[1], float(sys.argv[2])
    last, moved_at = None, time.monotonic()
    while True:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/+status", headers={"Accept": "application/json"})
        status = json.load(urllib.request.urlopen(request, timeout=10))["result"]
        state = sync_state(status)
        if state == "in sync":
            sys.exit(0)
        moved = progress(status)
        if moved != last:
            last, moved_at = moved, time.monotonic()
        elif time.monotonic() - moved_at > patience:
            sys.exit(
                json.dumps(
                    dict(
                        state=state,
                        serial=status.get("serial"),
                        primary_serial=status.get("primary-serial"),
                        errors=status.get("replication-errors"),
                    )
                )
            )
        time.sleep(POLL)


if __name__ == "__main__":
    main()
