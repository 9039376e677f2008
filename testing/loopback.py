"""The network, on loopback: a one-off HTTP server whose every answer a test writes itself, and a slow link."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Seen:
    """What the server was asked: (method, path, headers) of each request, and how many connections came."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.connections = 0


Answer = Callable[[http.server.BaseHTTPRequestHandler, Seen], None]


def send(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    """One whole answer; a header's underscores become dashes (Content_Type: Content-Type)."""
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


@contextmanager
def serving(answer: Answer, keep_alive: bool = True) -> Iterator[tuple[str, Seen]]:
    """Yield ("127.0.0.1:PORT", what was seen) while `answer` answers every GET and CONNECT."""
    seen = Seen()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def setup(self):
            seen.connections += 1
            super().setup()

        def do_GET(self):
            seen.requests.append(("GET", self.path, dict(self.headers)))
            answer(self, seen)

        def do_CONNECT(self):
            seen.requests.append(("CONNECT", self.path, dict(self.headers)))
            answer(self, seen)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def slow_link(port: int, delay: float) -> Iterator[int]:
    """Yield the port of a TCP relay to 127.0.0.1:`port` that holds each chunk of the answers `delay` seconds."""
    listener = socket.create_server(("127.0.0.1", 0))
    opened: list[socket.socket] = []

    def relay(source: socket.socket, sink: socket.socket, hold: float) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                time.sleep(hold)
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                upstream = socket.create_connection(("127.0.0.1", port))
                opened.extend((client, upstream))
                threading.Thread(target=relay, args=(client, upstream, 0.0), daemon=True).start()
                threading.Thread(target=relay, args=(upstream, client, delay), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone would leave waiting
        listener.close()
        for connection in opened:
            connection.close()
