"""GETs over HTTP(S) with the standard library: files read into one buffer as fast as they arrive, and pages.

httpx hands a body over one TLS record (16 KB) at a time, through several
layers of Python each time. The sample's three targets (194 files, 480 MB,
8 threads) took 5.8 s and 7.2 CPU-s that way on this machine, against 2.0 s
and 2.5 CPU-s through http.client's readinto into a 1 MB buffer. What httpx
gave besides is kept: the proxy the environment names (HTTP_PROXY,
HTTPS_PROXY, NO_PROXY, as uv reads them), redirects, connections kept open
between files, credentials written into a URL, and the run's TLS context.

Project pages come this way too (`Session.read`, `Sessions`): a page read
through httpx holds the interpreter for every record as well, and the
downloads beside it wait (freshness.page_fingerprints says how much). So do
the single pages resolve reads (a listing for an error message, a wheel-less
project's newest sdist, whether the index is one): a run that asks no
advisories does not import httpx (44 ms by `python -X importtime`).
"""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urljoin, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

from devpi_airgap import __version__
from devpi_airgap.online.netrc_logins import login_for, where_credentials_go
from devpi_airgap.online.tls import tls_context

CONNECT_TIMEOUT = 15
READ_TIMEOUT = 60
MAX_REDIRECTS = 10
_REDIRECTS = {301, 302, 303, 307, 308}


class TransferError(Exception):
    """The connection or the server failed; another attempt may do better."""


# An organisation that inspects TLS signs every site with its own CA, which Mozilla's roots lack. uv and this
# tool trust it from this machine's certificate store (online/tls.py), or from SSL_CERT_FILE.
UNTRUSTED_CA = (
    "if your organisation inspects TLS, its CA certificate belongs in this machine's certificate store "
    "(where pip finds it too), or set SSL_CERT_FILE to a PEM file with it"
)


def _failed(exc: BaseException, proxy: SplitResult | None = None) -> TransferError:
    """The failure as a TransferError; one of the server's certificate says what to do, and a proxy is named.

    Without the proxy's name, a proxy that refused the connection read as the index refusing it: the user
    checked the index, not the variable that set the proxy.
    """
    said = f"{type(exc).__name__}: {exc}"
    if proxy is not None:
        said += (
            f", through the proxy {_without_credentials(proxy)} that the environment names "
            "(HTTPS_PROXY or HTTP_PROXY; NO_PROXY lists the hosts reached without it)"
        )
    return TransferError(f"{said}; {UNTRUSTED_CA}" if isinstance(exc, ssl.SSLCertVerificationError) else said)


class HTTPStatusError(TransferError):
    def __init__(self, url: str, status: int, reason: str):
        parts = urlsplit(url)
        said = f"HTTP {status} {reason} for {_without_credentials(parts)}"
        if status in (401, 403):
            said += f"; if the index wants credentials, {where_credentials_go(parts.hostname)}"
        super().__init__(said)
        self.status = status


class _ReadTimeout:
    """A connection that waits CONNECT_TIMEOUT to connect and READ_TIMEOUT for each read after."""

    sock: object
    timeout: float | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.sock.settimeout(READ_TIMEOUT)  # type: ignore[attr-defined]


class _HTTPConnection(_ReadTimeout, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_ReadTimeout, http.client.HTTPSConnection):
    pass


def _without_credentials(parts: SplitResult) -> str:
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 address
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc, fragment="").geturl()


def _basic(parts: SplitResult) -> str:
    return _basic_login(unquote(parts.username or ""), unquote(parts.password or ""))


def _basic_login(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode("ascii")


def _proxy_for(parts: SplitResult) -> SplitResult | None:
    proxy = getproxies_environment().get(parts.scheme)
    if not proxy or proxy_bypass_environment(parts.hostname or ""):
        return None
    found = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if found.scheme != "http":
        raise TransferError(
            f"the {parts.scheme} proxy {_without_credentials(found)} is not an http:// proxy, the only kind "
            "devpi-airgap downloads through; set an http:// proxy in the environment"
        )
    return found


@dataclass(frozen=True)
class Answer:
    url: str  # after any redirect: what a relative link on the page is relative to
    status: int
    content_type: str
    etag: str | None
    body: bytes


class Sessions:
    """Sessions lent to the threads of pools that come and go, so connections outlive each pool."""

    def __init__(self) -> None:
        self._idle: list[Session] = []
        self._lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._lock:
            session = self._idle.pop() if self._idle else Session()
        try:
            yield session
        finally:
            with self._lock:
                self._idle.append(session)

    def close(self) -> None:
        with self._lock:
            for session in self._idle:
                session.close()
            self._idle.clear()


class Session:
    """The connections one thread keeps open between its GETs: one per host, or per proxy and host."""

    def __init__(self) -> None:
        self._open: dict[tuple, http.client.HTTPConnection] = {}

    def close(self) -> None:
        for connection in self._open.values():
            connection.close()
        self._open.clear()

    @contextmanager
    def get(self, url: str, headers: dict[str, str], buffer: memoryview) -> Iterator[Iterator[memoryview | bytes]]:
        """The body of a 200 answer to GET url, as pieces; a piece is good until the next one is asked for.

        Raises HTTPStatusError for any other final answer, and TransferError when the connection fails.
        """
        key, _, response = self._final(url, headers)
        if response.status != 200:
            response.read()
            raise HTTPStatusError(url, response.status, response.reason)
        whole = False
        try:
            yield _pieces(response, buffer)
            whole = response.isclosed()
        finally:
            if not whole:  # a body left unread would come before the next answer: this connection is done
                self._drop(key)

    def read(self, url: str, headers: dict[str, str]) -> Answer:
        """The final answer to GET url, whatever its status, its body read whole (a page, not a file)."""
        key, final_url, response = self._final(url, headers)
        try:
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop(key)
            raise _failed(exc) from exc
        content_type = response.getheader("Content-Type") or ""
        return Answer(final_url, response.status, content_type, response.getheader("ETag"), body)

    def _final(self, url: str, headers: dict[str, str]) -> tuple[tuple, str, http.client.HTTPResponse]:
        """The answer after every redirect, its body not yet read, with the URL that gave it."""
        origin = urlsplit(url)
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https"):
                raise TransferError(f"cannot download {_without_credentials(parts)}: not an http(s) URL")
            sent = {"User-Agent": f"devpi-airgap/{__version__}", **headers}
            if parts.username and parts.netloc == origin.netloc:  # credentials never follow a redirect elsewhere
                sent["Authorization"] = _basic(parts)
            elif not parts.username and (login := login_for(parts.hostname)) is not None:
                sent["Authorization"] = _basic_login(*login)  # the netrc file's, for this very host
            key, response = self._send(parts, sent)
            if response.status in _REDIRECTS and response.getheader("Location"):
                response.read()  # the connection is free again once the answer is read
                url = urljoin(url, response.getheader("Location"))
                continue
            return key, url, response
        raise TransferError(f"more than {MAX_REDIRECTS} redirects from {_without_credentials(origin)}")

    def _send(self, parts: SplitResult, headers: dict[str, str]) -> tuple[tuple, http.client.HTTPResponse]:
        proxy = _proxy_for(parts)
        key = (parts.scheme, parts.hostname, parts.port, proxy)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if proxy is not None and parts.scheme == "http":  # a plain HTTP proxy is asked for the whole URL
            target = _without_credentials(parts)
            if proxy.username:
                headers = {**headers, "Proxy-Authorization": _basic(proxy)}
        for attempt in (1, 2):
            connection = self._open.get(key)
            reused = connection is not None and connection.sock is not None
            if connection is None:
                connection = self._open[key] = _connection(parts, proxy)
            try:
                connection.request("GET", target, headers=headers)
                return key, connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                self._drop(key)
                # a server may close a kept-open connection while it waits: that one is opened again, once
                if not (reused and attempt == 1):
                    raise _failed(exc, proxy) from exc
        raise AssertionError("unreachable")

    def _drop(self, key: tuple) -> None:
        connection = self._open.pop(key, None)
        if connection is not None:
            connection.close()


def _connection(parts: SplitResult, proxy: SplitResult | None) -> http.client.HTTPConnection:
    host, port = parts.hostname or "", parts.port
    if proxy is None:
        if parts.scheme == "https":
            return _HTTPSConnection(host, port, timeout=CONNECT_TIMEOUT, context=tls_context())
        return _HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
    if parts.scheme == "http":
        return _HTTPConnection(proxy.hostname or "", proxy.port or 80, timeout=CONNECT_TIMEOUT)
    tunnel = _HTTPSConnection(proxy.hostname or "", proxy.port or 80, timeout=CONNECT_TIMEOUT, context=tls_context())
    tunnel.set_tunnel(host, port or 443, headers={"Proxy-Authorization": _basic(proxy)} if proxy.username else None)
    return tunnel


def _pieces(response: http.client.HTTPResponse, buffer: memoryview) -> Iterator[memoryview | bytes]:
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise TransferError(f"the server sent the file {encoding}-encoded, which cannot be undone here")
    # asked for as they are, files arrive as they are; a server that compresses anyway is undone
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding != "identity" else None
    try:
        while n := response.readinto(buffer):
            if inflate is None:
                yield buffer[:n]
            elif piece := inflate.decompress(buffer[:n]):
                yield piece
    except (OSError, http.client.HTTPException, zlib.error) as exc:
        raise _failed(exc) from exc
    if inflate is not None and (tail := inflate.flush()):
        yield tail
