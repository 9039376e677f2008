"""The optional nginx front: its site config, and `ensure_front` on a booted offline host behind TLS."""

from __future__ import annotations

import re
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from devpi_airgap.core.errors import RemoteError
from devpi_airgap.core.inventory import Front, Server
from devpi_airgap.offline.nginx import NginxFront, render_site
from devpi_airgap.offline.remote import Host
from devpi_airgap.offline.steps import Outcome, Runner
from testing.deploy_host import fab
from testing.environment import pip_install
from testing.offline_host import OfflineHost

pytestmark = [pytest.mark.offline_host, pytest.mark.network]

MB = 1 << 20


def site(*, tls: bool = True, has_replicas: bool = False, max_body_bytes: int = 5 * MB) -> str:
    front = Front(port=443 if tls else 80, server_name="pypi.internal")
    return render_site(
        Server(name="devpi-host", target="server", port=3141, front=front),
        has_replicas=has_replicas,
        max_body_bytes=max_body_bytes,
        cert_path="/etc/x/front.crt" if tls else None,
        key_path="/etc/x/front.key" if tls else None,
    )


def directives(config: str, name: str) -> list[str]:
    return re.findall(rf"^\s*{name}\s+([^;]*);", config, re.MULTILINE)


def test_site_proxies_to_devpi_on_loopback_and_caches_release_files():
    config = site()
    assert set(directives(config, "proxy_pass")) == {"http://127.0.0.1:3141"}
    assert "location ~ /\\+f/ {\n        proxy_cache devpi_airgap;" in config
    assert len(directives(config, "proxy_cache_path")) == 1 and "keys_zone=devpi_airgap:" in config
    assert directives(config, "proxy_set_header") == [
        "X-outside-url $scheme://$http_host",
        "X-Forwarded-Proto $scheme",
        "X-Real-IP $remote_addr",
    ]
    assert directives(config, "server_name") == ['pypi.internal $hostname ""']
    assert config.count("{") == config.count("}")


def test_site_listens_with_tls_only_when_given_a_certificate():
    assert directives(site(), "listen") == ["443 ssl"]
    assert directives(site(), "ssl_certificate") == ["/etc/x/front.crt"]
    assert directives(site(), "ssl_certificate_key") == ["/etc/x/front.key"]
    plain = site(tls=False)
    assert directives(plain, "listen") == ["80"] and "ssl" not in plain
    assert "return 30" not in site()  # nothing is redirected


@pytest.mark.parametrize("largest", [1, 5 * MB, 63 * MB, 300 * MB + 1])
def test_upload_limit_holds_the_largest_wheel_with_room_to_spare(largest):
    [limit] = directives(site(max_body_bytes=largest), "client_max_body_size")
    assert limit.endswith("M") and int(limit[:-1]) * MB >= largest * 1.2 and int(limit[:-1]) >= 64


def test_changelog_is_closed_unless_replicas_pull_it():
    assert re.search(r"location \^~ /\+changelog \{\s*return 403;", site(has_replicas=False))
    assert "changelog" not in site(has_replicas=True)


# ---- on the offline host --------------------------------------------------


def openssl_pair(directory: Path, name: str, address: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={address}",
            "-addext",
            f"subjectAltName=IP:{address}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def tls(project, host):
    return openssl_pair(project, "front", host.address)


@pytest.fixture(scope="module")
def remote(host):
    from fabric import Config, Connection

    connection = Connection(
        "devpi-host", config=Config(overrides={"ssh_config_path": str(host.ssh_config_path), "load_ssh_configs": True})
    )
    with connection:
        yield Host(connection)


def front_server(cert: Path, key: Path, address: str) -> Server:
    return Server(
        name="devpi-host",
        target="server",
        port=3141,
        front=Front(port=443, server_name=address, tls_cert=cert, tls_key=key),
    )


def apply_front(remote: Host, project: Path, server: Server) -> Runner:
    runner = Runner(remote)
    largest = max(p.stat().st_size for p in (project / "wheelhouse" / "server").glob("*.whl"))
    runner.run(NginxFront(server, has_replicas=False, max_body_bytes=largest))
    return runner


@pytest.fixture(scope="module")
def fronted(deployed, project, host, tls):
    """`fab deploy` again, now with `nginx:` in the inventory."""
    inventory = project / "inventory.yaml"
    plain = "devpi-host: {target: server, port: 3141, user: myuser, index: myindex}"
    assert plain in inventory.read_text()
    inventory.write_text(
        inventory.read_text().replace(
            plain,
            plain[:-1] + (f", nginx: {{server_name: '{host.address}', tls_cert: '{tls[0]}', tls_key: '{tls[1]}'}}}}"),
        )
    )
    result = fab(project, host, "deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def https(host: OfflineHost, tls) -> httpx.Client:
    return httpx.Client(base_url=f"https://{host.address}", verify=ssl.create_default_context(cafile=str(tls[0])))


def test_first_run_sets_up_nginx_with_a_private_key(fronted, host):
    said = " ".join(fronted.stderr.split())  # the console wraps long lines
    assert "changed nginx front:" in said and "site enabled" in said and "nginx started" in said
    assert f"pip install --index-url https://{host.address}/myuser/myindex/+simple/ PACKAGE" in fronted.stdout
    assert host.run("systemctl is-active nginx; systemctl is-enabled nginx").stdout.split() == ["active", "enabled"]
    assert host.run("stat -c '%U %a' /etc/devpi-airgap/tls/front.key").stdout.strip() == "root 600"
    assert host.run("stat -c '%a' /etc/devpi-airgap/tls").stdout.strip() == "700"


def test_pip_installs_through_the_front_over_tls(fronted, host, tls, tmp_path):
    python = pip_install(
        tmp_path, f"https://{host.address}/myuser/myindex/+simple/", "packaging", pip_args=("--cert", str(tls[0]))
    )
    assert subprocess.run([str(python), "-c", "import packaging"]).returncode == 0


def test_devpi_links_point_at_the_front_and_files_are_cached(fronted, host, tls):
    with https(host, tls) as client:
        # devpi writes relative links unless asked for absolute ones; asked, it builds them from X-outside-url.
        page = client.get("/myuser/myindex/+simple/packaging/", headers={"X-Devpi-Absolute-Urls": "1"})
        links = re.findall(r'href="([^"#]+)', page.text)
        assert links and all(link.startswith(f"https://{host.address}/myuser/myindex/+f/") for link in links), page.text
        assert client.get("/+api").json()["result"]["login"].startswith(f"https://{host.address}/")
        path = links[0].removeprefix(f"https://{host.address}")
        first, second = client.get(path), client.get(path)
    assert first.status_code == second.status_code == 200 and first.content == second.content
    assert second.headers["X-Cached"] == "HIT"


def test_changelog_is_closed_by_the_front_itself(fronted, host, tls):
    with https(host, tls) as client:
        closed = client.get("/+changelog/0")
    # devpi refuses a client without replica credentials too; this 403 comes from nginx, before devpi.
    assert closed.status_code == 403 and "<center>nginx</center>" in closed.text


def test_second_run_changes_nothing(fronted, project, host):
    result = fab(project, host, "deploy")
    assert result.returncode == 0, result.stderr
    assert "no changes" in result.stdout and "changed" not in result.stderr


def test_rejected_config_is_rolled_back_and_nginx_keeps_serving(fronted, project, host, remote, tls):
    _, stranger = openssl_pair(project, "stranger", host.address)  # a key that does not belong to the certificate
    with pytest.raises(RemoteError, match="rejects the new configuration") as failure:
        apply_front(remote, project, front_server(tls[0], stranger, host.address))
    assert "previous one was put back" in str(failure.value) and "key values mismatch" in str(failure.value)
    with https(host, tls) as client:
        assert client.get("/+api").status_code == 200
    assert apply_front(remote, project, front_server(*tls, host.address)).outcomes == [Outcome("nginx front")]


def test_missing_nginx_names_the_remedy(fronted, project, host, remote, tls):
    host.run("mv /usr/sbin/nginx /usr/sbin/nginx.away", check=True)
    try:
        with pytest.raises(RemoteError) as failure:
            apply_front(remote, project, front_server(*tls, host.address))
    finally:
        host.run("mv /usr/sbin/nginx.away /usr/sbin/nginx", check=True)
    message = str(failure.value)
    assert "nginx is not installed on devpi-host" in message and "apt-get install nginx" in message
