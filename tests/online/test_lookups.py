"""shared_lookups: one lookup per host a run, however many connections ask at once."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from devpi_airgap.online.lookups import shared_lookups


@pytest.fixture
def resolver(monkeypatch):
    """This machine's resolver, counted: what shared_lookups must spare it."""
    asked: list[str] = []
    failing: set[str] = set()

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        asked.append(host)
        time.sleep(0.05)  # long enough for every thread to ask while the first lookup is out
        if host in failing:
            failing.discard(host)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked, failing, getaddrinfo


def test_a_burst_of_lookups_of_one_host_asks_the_resolver_once(resolver):
    asked, _, real = resolver
    answers = []
    with shared_lookups():
        threads = [
            threading.Thread(target=lambda: answers.append(socket.getaddrinfo("pypi.org", 443))) for _ in range(24)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        socket.getaddrinfo("files.pythonhosted.org", 443)
    assert asked == ["pypi.org", "files.pythonhosted.org"]
    assert len(answers) == 24 and all(a == answers[0] for a in answers)
    assert socket.getaddrinfo is real  # the process's resolver is its own again after the run


def test_a_failed_lookup_is_not_kept(resolver):
    asked, failing, _ = resolver
    failing.add("pypi.org")
    with shared_lookups():
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("pypi.org", 443)
        assert socket.getaddrinfo("pypi.org", 443)[0][4] == ("127.0.0.1", 443)
    assert asked == ["pypi.org", "pypi.org"]
