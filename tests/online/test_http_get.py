"""http_get against small servers on loopback: redirects, credentials, proxies, and connections kept open."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from devpi_airgap.core.errors import UsageError
from devpi_airgap.online.http_get import HTTPStatusError, Session, TransferError
from testing.loopback import send, serving

BODY = b"a wheel's bytes " * 100_000  # 1.6 MB: more than one buffer's worth


def the_file(handler, seen) -> None:
    send(handler, 200, BODY)


def get(url: str, session: Session | None = None) -> bytes:
    session = session or Session()
    buffer = memoryview(bytearray(1 << 20))
    with session.get(url, {"Accept-Encoding": "identity"}, buffer) as pieces:
        return b"".join(bytes(piece) for piece in pieces)


@pytest.fixture(autouse=True)
def no_proxy_from_this_machine(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_files_come_whole_over_one_connection_kept_open():
    with serving(the_file) as (host, seen):
        session = Session()
        assert get(f"http://{host}/one.whl", session) == BODY
        assert get(f"http://{host}/two.whl", session) == BODY
    assert seen.connections == 1
    assert [path for _, path, _ in seen.requests] == ["/one.whl", "/two.whl"]


def test_a_connection_the_server_closed_while_idle_is_opened_again():
    def once_then_close(handler, seen):
        send(handler, 200, BODY)
        handler.close_connection = True  # without saying so: the client finds out when it uses the connection

    with serving(once_then_close) as (host, seen):
        session = Session()
        assert get(f"http://{host}/one.whl", session) == BODY
        assert get(f"http://{host}/two.whl", session) == BODY
    assert seen.connections == 2


def test_a_server_that_closes_after_each_answer_is_followed():
    with serving(the_file, keep_alive=False) as (host, seen):
        session = Session()
        assert get(f"http://{host}/one.whl", session) == get(f"http://{host}/two.whl", session) == BODY


def test_redirects_are_followed_and_credentials_stay_with_their_host():
    with serving(the_file) as (files_host, files_seen):

        def moved(handler, seen):
            if handler.path == "/first":
                send(handler, 302, Location="/second")  # the same host: credentials go along
            else:
                send(handler, 301, Location=f"http://{files_host}/file.whl")

        with serving(moved) as (index_host, index_seen):
            assert get(f"http://user:s%40cret@{index_host}/first") == BODY
    expected = "Basic " + base64.b64encode(b"user:s@cret").decode()
    assert [h.get("Authorization") for _, _, h in index_seen.requests] == [expected, expected]
    assert [h.get("Authorization") for _, _, h in files_seen.requests] == [None]


def test_a_page_read_says_the_url_it_was_found_at():
    """Links on a page are relative to where it was finally found, after any redirect."""

    def moved(handler, seen):
        if handler.path == "/simple/lib":
            send(handler, 301, Location="/simple/lib/")
        else:
            send(handler, 200, b"<a href='../../f/lib-1.0.tar.gz'>lib-1.0.tar.gz</a>", Content_Type="text/html")

    with serving(moved) as (host, _):
        page = Session().read(f"http://{host}/simple/lib", {})
    assert (page.status, page.url, page.content_type) == (200, f"http://{host}/simple/lib/", "text/html")


def test_an_answer_other_than_200_is_an_error_with_its_status():
    with serving(lambda handler, seen: send(handler, 404, b"no such file")) as (host, _):
        with pytest.raises(HTTPStatusError) as raised:
            get(f"http://user:secret@{host}/gone.whl")
    assert raised.value.status == 404
    assert "secret" not in str(raised.value)


def test_too_many_redirects_end():
    with serving(lambda handler, seen: send(handler, 302, Location=handler.path + "x")) as (host, _):
        with pytest.raises(TransferError, match="more than 10 redirects"):
            get(f"http://{host}/loop")


def test_the_environments_http_proxy_is_asked_for_the_whole_url(monkeypatch):
    with serving(the_file) as (proxy, seen):
        monkeypatch.setenv("HTTP_PROXY", f"http://me:pw@{proxy}")
        assert get("http://index.invalid/files/one.whl") == BODY
    method, path, headers = seen.requests[0]
    assert (method, path) == ("GET", "http://index.invalid/files/one.whl")
    assert headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"me:pw").decode()


def test_https_goes_through_the_proxy_by_connect(monkeypatch):
    """The tunnel is asked for with the proxy's credentials; this proxy refuses it, which is an error to retry."""
    with serving(lambda handler, seen: send(handler, 403)) as (proxy, seen):
        monkeypatch.setenv("HTTPS_PROXY", f"http://me:pw@{proxy}")
        with pytest.raises(TransferError, match="403"):
            get("https://files.invalid/one.whl")
    method, path, headers = seen.requests[0]
    assert (method, path) == ("CONNECT", "files.invalid:443")
    assert headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"me:pw").decode()


def test_a_proxy_that_cannot_be_reached_is_named_without_its_credentials(monkeypatch):
    """Not the index: the user must look at the environment's proxy variable, not at index_url."""
    with serving(the_file) as (closed, seen):
        pass  # the port is closed again: nothing listens there
    monkeypatch.setenv("HTTPS_PROXY", f"http://me:secret@{closed}")
    with pytest.raises(TransferError) as failed:
        get("https://files.invalid/one.whl")
    said = str(failed.value)
    assert f"through the proxy http://{closed} that the environment names (HTTPS_PROXY or HTTP_PROXY" in said
    assert "secret" not in said


def test_no_proxy_names_the_hosts_reached_directly(monkeypatch):
    with serving(the_file) as (host, seen):
        monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert get(f"http://{host}/one.whl") == BODY
    assert seen.requests[0][1] == "/one.whl"


def test_only_an_http_proxy_is_taken():
    with pytest.raises(TransferError, match="not an http:// proxy"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HTTPS_PROXY", "socks5://proxy.invalid:1080")
            get("https://files.invalid/one.whl")


def test_a_netrc_login_goes_to_its_own_host_only(tmp_path, monkeypatch):
    """As pip, uv and curl read it: by host name, never sent to another host a redirect leads to."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password s@cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with serving(the_file) as (files_host, files_seen):
        elsewhere = files_host.replace("127.0.0.1", "localhost")  # the same server, by another name

        def moved(handler, seen):
            send(handler, 302, Location=f"http://{elsewhere}/file.whl")

        with serving(moved) as (index_host, index_seen):
            assert get(f"http://{index_host}/first") == BODY
    assert [h.get("Authorization") for _, _, h in index_seen.requests] == [
        "Basic " + base64.b64encode(b"user:s@cret").decode()
    ]
    assert [h.get("Authorization") for _, _, h in files_seen.requests] == [None]


def test_an_index_that_wants_credentials_says_where_they_go(tmp_path, monkeypatch):
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    with serving(lambda handler, seen: send(handler, 401)) as (host, _):
        with pytest.raises(HTTPStatusError) as raised:
            get(f"http://{host}/simple/lib/")
    assert "HTTP 401" in str(raised.value) and "machine 127.0.0.1 login USER password TOKEN" in str(raised.value)


def test_a_netrc_file_that_cannot_be_read_is_named(tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password s3cret port 8080\n")  # no such netrc token
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with serving(the_file) as (host, _):
        with pytest.raises(UsageError, match=f"{netrc}: cannot read this netrc file"):
            get(f"http://{host}/one.whl")


def test_a_process_without_a_home_reads_no_netrc_and_still_downloads(monkeypatch):
    """A container's user id with no passwd entry and no HOME: Path.home() raises there, on every request."""
    monkeypatch.delenv("NETRC", raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    with serving(the_file) as (host, seen):
        assert get(f"http://{host}/one.whl") == BODY
    assert [h.get("Authorization") for _, _, h in seen.requests] == [None]
