"""IndexRecord against a real devpi-server on loopback: an unchanged server is not listed again, a changed one is."""

from __future__ import annotations

import json

import pytest

from devpi_airgap.offline.devpi_api import DevpiClient, upload_missing
from devpi_airgap.offline.index_record import IndexRecord
from testing.devpi_server import devpi_server, user_client  # noqa: F401  (devpi_server: a pytest fixture)
from testing.wheels import make_wheel

USER = "recorded"
PASSWORD = "user-pw-5678"


@pytest.fixture(scope="module")
def client(devpi_server):  # noqa: F811
    with user_client(*devpi_server, USER, PASSWORD) as c:
        yield c


NAMES = iter(range(1000))


@pytest.fixture
def index(client, tmp_path):
    """A fresh index holding two wheels; its name."""
    name = f"ix{next(NAMES)}"
    client.ensure_index(USER, name)
    upload_missing(client, USER, name, [make_wheel(tmp_path / "first", f"rec_{n}", "1.0") for n in "ab"])
    return name


def listings(client, monkeypatch) -> list[str]:
    """The indexes listed page by page from now on (what the record is there to spare)."""
    listed = []
    real = DevpiClient.index_files

    def counted(self, user, index):
        listed.append(index)
        return real(self, user, index)

    monkeypatch.setattr(DevpiClient, "index_files", counted)
    return listed


def test_an_unchanged_server_is_not_listed_again(client, index, tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    first = IndexRecord(path).files(client, USER, index)
    listed = listings(client, monkeypatch)

    again = IndexRecord(path).files(client, USER, index)  # a later run reads the record anew

    assert again == first == client.index_files(USER, index)
    assert sorted(again) == ["rec_a-1.0-py3-none-any.whl", "rec_b-1.0-py3-none-any.whl"]
    assert listed == [index]  # only the comparison's own listing, one line above


def test_a_change_on_the_server_is_listed(client, index, tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    IndexRecord(path).files(client, USER, index)
    added = make_wheel(tmp_path / "later", "rec_c", "1.0")
    upload_missing(client, USER, index, [added])
    listed = listings(client, monkeypatch)

    files = IndexRecord(path).files(client, USER, index)

    assert added.name in files and listed == [index]


def test_a_change_during_the_listing_is_found_next_time(client, index, tmp_path, monkeypatch):
    """The server's state is read before the listing, so a change made once the listing is read is never
    recorded as seen: recorded with the state read after it, the next run would miss this file."""
    path = tmp_path / "record.json"
    added = make_wheel(tmp_path / "later", "rec_d", "1.0")
    real = DevpiClient.index_files

    def then_change(self, user, name):
        files = real(self, user, name)
        upload_missing(client, USER, name, [added])
        return files

    monkeypatch.setattr(DevpiClient, "index_files", then_change)
    assert added.name not in IndexRecord(path).files(client, USER, index)
    monkeypatch.setattr(DevpiClient, "index_files", real)

    assert added.name in IndexRecord(path).files(client, USER, index)


def test_a_server_restored_from_a_copy_is_listed_again(client, index, tmp_path, monkeypatch):
    """Same uuid, same serial, another last commit: a server directory put back and changed again since."""
    path = tmp_path / "record.json"
    IndexRecord(path).files(client, USER, index)
    status = client.status()
    restored = {**status, "last-commit-timestamp": status["last-commit-timestamp"] - 3600}
    monkeypatch.setattr(client, "status", lambda: restored)
    listed = listings(client, monkeypatch)

    IndexRecord(path).files(client, USER, index)

    assert listed == [index]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"x": 1}'])
def test_an_unreadable_record_is_listed_and_replaced(client, index, tmp_path, content):
    path = tmp_path / "record.json"
    path.write_text(content)
    files = IndexRecord(path).files(client, USER, index)
    assert files == client.index_files(USER, index)
    assert IndexRecord(path).files(client, USER, index) == files
    assert [entry["files"] for entry in json.loads(path.read_text()).values()] == [files]


def test_a_record_that_cannot_be_written_costs_only_time(client, index, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = blocker / "record.json"  # its directory is a file: no write can succeed
    assert IndexRecord(path).files(client, USER, index) == client.index_files(USER, index)
    assert not path.exists()
