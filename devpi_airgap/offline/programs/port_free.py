"""port_free.py PORT: exit 0 when nothing listens on PORT yet, so devpi can bind it."""

import socket
import sys


def main() -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", int(sys.argv[1])))
        except OSError as exc:
            sys.exit(str(exc))


if __name__ == "__main__":
    main()
