"""The run's one TLS context."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from devpi_airgap.online import tls


def test_threads_asking_at_once_share_one_context(monkeypatch):
    built = []
    real = httpx.create_ssl_context

    def slow_to_build(*args, **kwargs):
        time.sleep(0.05)  # as reading the CA bundle takes: long enough for every thread to ask meanwhile
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(httpx, "create_ssl_context", slow_to_build)
    monkeypatch.setattr(tls, "_built", [])
    with ThreadPoolExecutor(8) as pool:
        contexts = list(pool.map(lambda _: tls.tls_context(), range(8)))
    assert len(built) == 1
    assert all(context is built[0] for context in contexts)
