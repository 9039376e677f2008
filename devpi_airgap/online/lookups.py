"""Each host is looked up once a run, however many connections go to it.

A run opens dozens of connections to the same two hosts (the index and the
host of its files) within a second: pages, downloads, and uv beside them. Some
resolvers drop a burst of identical queries. This machine's answered 16 lookups
at once but not 24, and each dropped query cost the resolver's 5 s timeout,
often in the middle of a resolution that everything else waited for. So within
a run the first lookup of a host answers every later one.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def shared_lookups() -> Iterator[None]:
    """For the `with` block, this process looks each (host, port, ...) up once; a failed lookup is asked again."""
    real = socket.getaddrinfo
    answers: dict[tuple, list] = {}
    pending: dict[tuple, threading.Lock] = {}
    guard = threading.Lock()

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's own signature
        key = (host, port, family, type, proto, flags)
        with guard:
            lock = pending.setdefault(key, threading.Lock())
        with lock:  # the first caller asks; the others wait for its answer instead of asking too
            if key not in answers:
                answers[key] = real(host, port, family, type, proto, flags)
            return answers[key]

    # socket.create_connection, which every HTTP connection goes through, calls the module's getaddrinfo.
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real
