"""Where users point pip and uv: the index URL (through the nginx front when there is one) and what to paste."""

from __future__ import annotations

from devpi_airgap.core.inventory import Server
from devpi_airgap.offline.remote import Host


def user_url(host: Host, server: Server) -> str:
    """The index URL users are given: through the nginx front when there is one."""
    front = server.front
    if front is None:
        return f"http://{host.address}:{server.port}/{server.user}/{server.index}/+simple/"
    scheme, default_port = ("https", 443) if front.tls_cert else ("http", 80)
    port = "" if front.port == default_port else f":{front.port}"
    return f"{scheme}://{front.server_name}{port}/{server.user}/{server.index}/+simple/"


def trusted_host(host: Host, server: Server) -> str | None:
    """pip ignores a plain-http index from another host unless told to trust it; None over TLS."""
    if server.front and server.front.tls_cert:
        return None
    return server.front.server_name if server.front else host.address


def client_config(host: Host, server: Server) -> str:
    """What a user pastes: a pip.conf, a uv index, and a one-off pip command."""
    url = user_url(host, server)
    trusted = trusted_host(host, server)
    return f"""\
# pip.conf (Linux: ~/.config/pip/pip.conf, Windows: %APPDATA%\\pip\\pip.ini)
[global]
index-url = {url}
{f"trusted-host = {trusted}" + chr(10) if trusted else ""}
# pyproject.toml, for uv (or the same [[index]] table in uv.toml)
[[tool.uv.index]]
name = "airgap"
url = "{url}"
default = true

# one-off
pip install --index-url {url}{f" --trusted-host {trusted}" if trusted else ""} PACKAGE
"""
