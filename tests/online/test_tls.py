"""The run's one TLS context."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import certifi

from devpi_airgap.online import tls


def test_threads_asking_at_once_share_one_context(monkeypatch):
    built = []
    real = tls._trusted

    def slow_to_build():
        time.sleep(0.05)  # as reading the CA bundle takes: long enough for every thread to ask meanwhile
        built.append(real())
        return built[-1]

    monkeypatch.setattr(tls, "_trusted", slow_to_build)
    monkeypatch.setattr(tls, "_built", [])
    with ThreadPoolExecutor(8) as pool:
        contexts = list(pool.map(lambda _: tls.tls_context(), range(8)))
    assert len(built) == 1
    assert all(context is built[0] for context in contexts)


def test_the_environments_ca_file_is_trusted_instead_of_certifis(monkeypatch, tmp_path):
    bundle = tmp_path / "one-ca.pem"
    bundle.write_text(
        Path(certifi.where()).read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert len(tls._trusted().get_ca_certs()) == 1
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert len(tls._trusted().get_ca_certs()) > 100
