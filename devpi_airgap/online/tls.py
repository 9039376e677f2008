"""One TLS context for every connection of a run.

Building a context reads the whole CA bundle: about 50 ms of CPU, which each
new client paid again. A run opens connections for the pages, the downloads,
each project listing an error message or a wheel-less project needs, and the
advisories; on a no-op re-run those 50 ms were a tenth of the wait.
"""

from __future__ import annotations

import os
import ssl
import threading

import certifi

_built: list[ssl.SSLContext] = []
_building = threading.Lock()


def _trusted() -> ssl.SSLContext:
    """SSL_CERT_FILE or SSL_CERT_DIR where set, else certifi's bundle: what httpx (and uv) trust by default."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())


def tls_context() -> ssl.SSLContext:
    """The run's context, built once.

    Built under a lock: the sixteen page readers of a re-run ask for it at once, and functools.cache
    let each of them build one. Each of the first sixteen pages then took 0.47 s, against 0.13-0.16 s.
    """
    with _building:
        if not _built:
            _built.append(_trusted())
        return _built[0]
