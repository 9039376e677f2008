"""One TLS context for every connection of a run, trusting what uv is told to trust.

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
import truststore

_built: list[ssl.SSLContext] = []
_building = threading.Lock()

# UV_SYSTEM_CERTS values that turn uv's system certificates off, as uv reads a yes/no variable.
_OFF = {"0", "false", "no", "off", "n", "f"}


def system_certs() -> bool:
    """Whether this machine's certificate store is trusted: yes, unless UV_SYSTEM_CERTS says no.

    An organisation that inspects TLS puts its CA into the store of the PCs it manages, and pip
    (since 24.2) trusts that store, so `pip install` works there. uv and certifi trust Mozilla's
    roots alone: without the store, a run on such a PC stopped at its first page, and the user had
    to export the CA to a PEM file first. uv hears the same setting (core/isolation.py).
    """
    return os.environ.get("UV_SYSTEM_CERTS", "").strip().lower() not in _OFF


def _trusted() -> ssl.SSLContext:
    """SSL_CERT_FILE or SSL_CERT_DIR where set, as uv trusts them; else the system's store, or certifi's bundle."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    if system_certs():
        # the operating system's own verifier, as pip's and uv's system certificates use: Windows' and macOS's
        # stores, and the distribution's bundle on Linux
        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
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
