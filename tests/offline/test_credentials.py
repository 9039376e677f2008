"""Secrets for the offline side: from the environment or a private secrets file, named when missing."""

from __future__ import annotations

import sys

import pytest

from devpi_airgap.offline.credentials import MissingSecret, load_credentials

SECRETS = "host1:\n  root_password: r00t\n  user_password: us3r\n"


@pytest.fixture
def secrets(tmp_path, monkeypatch):
    path = tmp_path / "secrets.yaml"
    monkeypatch.setenv("DEVPI_AIRGAP_SECRETS", str(path))
    monkeypatch.delenv("DEVPI_AIRGAP_ROOT_PASSWORD", raising=False)
    monkeypatch.delenv("DEVPI_AIRGAP_USER_PASSWORD", raising=False)
    return path


def test_a_private_file_gives_the_servers_secrets(secrets):
    secrets.write_text(SECRETS)
    secrets.chmod(0o600)
    got = load_credentials("host1", interactive=False)
    assert (got.root_password, got.user_password) == ("r00t", "us3r")


def test_a_file_others_may_read_is_refused_naming_the_fix(secrets):
    secrets.write_text(SECRETS)
    secrets.chmod(0o644)
    with pytest.raises(MissingSecret, match=r"readable by others \(mode 0644\); run `chmod 600 "):
        load_credentials("host1", interactive=False)


def test_on_windows_the_file_is_as_private_as_its_folder(secrets, monkeypatch):
    """Windows reports mode 0666 for every writable file, whatever its ACL: a 0600 rule would refuse them all."""
    secrets.write_text(SECRETS)
    secrets.chmod(0o666)
    monkeypatch.setattr(sys, "platform", "win32")
    assert load_credentials("host1", interactive=False).root_password == "r00t"


def test_a_file_saved_by_powershell_is_read_as_any_other(secrets):
    """PowerShell's `>` writes UTF-16 with a byte-order mark."""
    secrets.write_bytes(SECRETS.replace("\n", "\r\n").encode("utf-16"))
    secrets.chmod(0o600)
    assert load_credentials("host1", interactive=False).user_password == "us3r"


def test_a_file_in_another_encoding_is_named(secrets):
    secrets.write_bytes((SECRETS + "# Zürich\n").encode("latin-1"))
    secrets.chmod(0o600)
    with pytest.raises(MissingSecret, match="secrets.yaml: not UTF-8 or UTF-16 text"):
        load_credentials("host1", interactive=False)


def test_each_missing_secret_is_named_with_where_to_put_it(secrets, monkeypatch):
    monkeypatch.setenv("DEVPI_AIRGAP_ROOT_PASSWORD", "from-env")
    with pytest.raises(MissingSecret) as raised:
        load_credentials("host1", interactive=False)
    said = str(raised.value)
    assert "user_password (set DEVPI_AIRGAP_USER_PASSWORD" in said and "root_password" not in said
    assert "Nothing was changed." in said
