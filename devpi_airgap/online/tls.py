"""One TLS context for every connection of a run.

Building a context reads the whole CA bundle: about 50 ms of CPU, which each
new client paid again. A run opens clients for the pages, the downloads, each
project listing an error message or a wheel-less project needs, and the
advisories; on a no-op re-run those 50 ms were a tenth of the wait.
"""

from __future__ import annotations

import ssl
import threading

import httpx

_built: list[ssl.SSLContext] = []
_building = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """httpx's own default (certifi, or SSL_CERT_FILE / SSL_CERT_DIR where set), built once.

    Built under a lock: the sixteen page readers of a re-run ask for it at once, and functools.cache
    let each of them build one, 0.4 s of interpreter time before the first page could be read.
    """
    with _building:
        if not _built:
            _built.append(httpx.create_ssl_context())
        return _built[0]
