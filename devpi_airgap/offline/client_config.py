"""Where users point pip and uv: the index URL (through the nginx front when there is one) and what to paste."""

from __future__ import annotations

from devpi_airgap.core.inventory import Inventory, Server
from devpi_airgap.core.platforms import target_platform
from devpi_airgap.core.requirements import read_requirements
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


def user_environments(inventory: Inventory) -> list[tuple[str, str]]:
    """(marker, target name) of each target that carries users' packages, not devpi's alone.

    `uv add` and `uv lock` resolve a project for every platform at once unless its `environments` say
    which: a dependency only Linux needs (ipython's pexpect) is then wanted from an index that holds
    Windows wheels only, and the lock fails. Listed, the project resolves for what the index carries.
    """
    found = []
    for target in inventory.targets.values():
        if any(read_requirements(path)[0] for path in target.requirements):
            found.append((target_platform(target).environment_marker, target.name))
    return found


def client_config(host: Host, server: Server, inventory: Inventory) -> str:
    """What a user pastes: a pip.conf, a uv index and the platforms to resolve for, and a one-off pip command."""
    url = user_url(host, server)
    trusted = trusted_host(host, server)
    environments = "".join(f'    "{marker}",  # {name}\n' for marker, name in user_environments(inventory))
    return f"""\
# pip.conf (Linux: ~/.config/pip/pip.conf, Windows: %APPDATA%\\pip\\pip.ini)
[global]
index-url = {url}
{f"trusted-host = {trusted}" + chr(10) if trusted else ""}
# pyproject.toml, for uv (in uv.toml: [[index]] and environments, without tool.uv)
[[tool.uv.index]]
name = "airgap"
url = "{url}"
default = true

# uv resolves for every platform unless told which; the index holds wheels for these (keep yours).
# It would also fetch a missing Python from the internet, which is not there: install Python as you do here.
[tool.uv]
python-downloads = "never"
environments = [
{environments}]

# one-off
pip install --index-url {url}{f" --trusted-host {trusted}" if trusted else ""} PACKAGE
"""
