"""The run's one TLS context, and the CA it trusts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import certifi
import truststore

from devpi_airgap.online import tls
from testing.download_project import make_project
from testing.environment import clean_env
from testing.fakeindex import Dist, build_index, serve_index
from testing.tasks import REPO, require_or_fail, run_task
from testing.tls import organisation_ca, self_signed_server


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


def test_the_environments_ca_file_is_trusted_instead_of_the_systems_store_or_certifis(monkeypatch, tmp_path):
    bundle = tmp_path / "one-ca.pem"
    bundle.write_text(
        Path(certifi.where()).read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.delenv("UV_SYSTEM_CERTS", raising=False)
    assert len(tls._trusted().get_ca_certs()) == 1
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert isinstance(tls._trusted(), truststore.SSLContext)  # the operating system's verifier, as pip's
    for no in ("0", "false", " No "):
        monkeypatch.setenv("UV_SYSTEM_CERTS", no)
        context = tls._trusted()
        assert not isinstance(context, truststore.SSLContext) and len(context.get_ca_certs()) > 100  # certifi's


ONE_TARGET = 'targets:\n  win313: {platform: win_amd64, python: "3.13", requirements: [requirements.txt]}\n'


@contextmanager
def served_over_tls(tmp_path, server_context):
    """A project for win313 that needs lib, from a fake index served with this TLS context; and a download
    of it, with this CA file (or none) as SSL_CERT_FILE."""
    root = build_index(tmp_path / "index", [Dist("lib", "1.0")])
    with serve_index(root, tls=server_context) as url:
        (tmp_path / "project").mkdir()
        project = make_project(tmp_path / "project", url, "lib\n", ONE_TARGET)
        env = {k: v for k, v in clean_env(project).items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}

        def download(ca_file=None, *args: str):
            trust = {"SSL_CERT_FILE": str(ca_file)} if ca_file else {}
            return run_task("download", "--inventory", str(project / "inventory.yaml"), *args, env={**env, **trust})

        yield project, download


def test_an_index_signed_by_an_organisations_own_ca_is_read_once_ssl_cert_file_names_it(tmp_path):
    """As behind a proxy that inspects TLS: refused with the remedy, then trusted by uv and by us alike."""
    ca, server_context = organisation_ca(tmp_path)
    with served_over_tls(tmp_path, server_context) as (project, download):
        refused = download()
        assert refused.returncode == 5, refused.stderr
        message = " ".join(refused.stderr.split())
        assert "CERTIFICATE_VERIFY_FAILED" in message and "belongs in this machine's certificate store" in message
        assert "or set SSL_CERT_FILE to a PEM file with it" in message
        assert "Traceback" not in refused.stderr and not (project / "wheelhouse" / "win313").exists()
        trusted = download(ca)
        assert trusted.returncode == 0, trusted.stderr
        assert [p.name for p in (project / "wheelhouse" / "win313").iterdir()] == ["lib-1.0-py3-none-any.whl"]
        # The downloads say it too: --locked fetches the lock's files again, resolving nothing.
        shutil.rmtree(project / "wheelhouse")
        fetching = download(None, "--locked")
        assert fetching.returncode == 5, fetching.stderr
        message = " ".join(fetching.stderr.split())
        assert "lib-1.0-py3-none-any.whl" in message and "set SSL_CERT_FILE to a PEM file with it" in message


def test_an_index_only_uv_refuses_is_reported_as_the_index_not_as_the_requirements(tmp_path):
    """Our read of the page passes (OpenSSL takes the certificate from SSL_CERT_FILE); uv's TLS refuses it."""
    certificate, server_context = self_signed_server(tmp_path)
    with served_over_tls(tmp_path, server_context) as (project, download):
        result = download(certificate)
    assert result.returncode == 5, result.stderr
    message = " ".join(result.stderr.split())
    assert "uv could not read the index" in message and "peer certificate" in message
    assert "set SSL_CERT_FILE to a PEM file with it" in message and "relax the requirement" not in message
    assert "Traceback" not in result.stderr and not (project / "wheelhouse" / "win313").exists()


SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # where Debian's OpenSSL and uv's verifier read the store


def test_an_organisations_ca_in_the_systems_store_is_trusted_by_uv_and_by_us_alike(tmp_path):
    """As on a PC the organisation manages: its CA is in the machine's store, and no SSL_CERT_FILE is set.

    The store is this machine's own bundle with the CA added, mounted over it in a mount namespace of the
    run's own, so that nothing outside the run trusts the test's CA.
    """
    require_or_fail(os.geteuid() == 0 and SYSTEM_BUNDLE.is_file(), f"needs root and {SYSTEM_BUNDLE}")
    ca, server_context = organisation_ca(tmp_path)
    store = tmp_path / "store.pem"
    store.write_text(SYSTEM_BUNDLE.read_text() + ca.read_text())
    with served_over_tls(tmp_path, server_context) as (project, download):
        env = {k: v for k, v in clean_env(project).items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}

        def download_with_the_ca_in_the_store(**extra: str) -> subprocess.CompletedProcess:
            mount = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh", str(store)]
            command += [str(SYSTEM_BUNDLE), sys.executable, "-m", "invoke", "--search-root", str(REPO), "download"]
            command += ["--inventory", str(project / "inventory.yaml")]
            return subprocess.run(command, env={**env, **extra}, capture_output=True, text=True, cwd=REPO)

        refused = download_with_the_ca_in_the_store(UV_SYSTEM_CERTS="0")  # Mozilla's roots alone
        assert refused.returncode == 5, refused.stderr
        assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr and not (project / "wheelhouse" / "win313").exists()
        trusted = download_with_the_ca_in_the_store()
        assert trusted.returncode == 0, trusted.stderr
        assert [p.name for p in (project / "wheelhouse" / "win313").iterdir()] == ["lib-1.0-py3-none-any.whl"]
    assert ca.read_text().strip() not in SYSTEM_BUNDLE.read_text()  # the machine's own store never held it
