"""An optional nginx in front of devpi: cached file downloads, big uploads, TLS.

Follows the caching configuration devpi-server ships (devpi-gen-config's
nginx-devpi*.template), with two deliberate differences: nginx cannot read
devpi's 0700 serverdir, so `+f/` files are proxied and cached instead of served
from disk; and only those files are cached, because an index page cached for
minutes would hide a fresh upload from its users.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from devpi_airgap.core.inventory import Inventory, Server
from devpi_airgap.offline.remote import Host, RemoteError
from devpi_airgap.core.wheelhouse import sha256_file

if TYPE_CHECKING:
    from devpi_airgap.offline.deploy import Report

SITE_NAME = "devpi-airgap"
SITE_AVAILABLE = f"/etc/nginx/sites-available/{SITE_NAME}"
SITE_ENABLED = f"/etc/nginx/sites-enabled/{SITE_NAME}"
DEFAULT_SITE = "/etc/nginx/sites-enabled/default"
CACHE_DIR = "/var/cache/nginx/devpi-airgap"
TLS_DIR = "/etc/devpi-airgap/tls"
CERT_PATH = f"{TLS_DIR}/front.crt"
KEY_PATH = f"{TLS_DIR}/front.key"
STEP = "nginx front"
MIN_BODY_MB = 64  # devpi's own template allows 64M
BODY_MARGIN = 1.25  # the next release of the largest wheel may well be a little larger
# Everything a change here may touch, saved first so a configuration nginx rejects can be put back.
_CONFIG_FILES = f"{SITE_AVAILABLE} {SITE_ENABLED} {DEFAULT_SITE} {CERT_PATH} {KEY_PATH}"
INSTALL_NGINX = ("install nginx from your distribution's media or internal mirror, e.g. apt-get install nginx, "
                 "then re-run deploy")


def body_limit_mb(max_body_bytes: int) -> int:
    return max(MIN_BODY_MB, math.ceil(max_body_bytes * BODY_MARGIN / (1 << 20)))


def render_site(server: Server, *, has_replicas: bool, max_body_bytes: int, cert_path: str | None,
                key_path: str | None) -> str:
    front = server.front
    listen = f"{front.port} ssl" if cert_path else str(front.port)
    tls = f"    ssl_certificate {cert_path};\n    ssl_certificate_key {key_path};\n" if cert_path else ""
    # Replicas pull every change from the primary's /+changelog; without replicas nobody needs that feed.
    changelog = "" if has_replicas else "    location ^~ /+changelog {\n        return 403;\n    }\n\n"
    upstream = f"http://127.0.0.1:{server.port}"
    return f"""\
# Written by devpi-airgap deploy; local edits are overwritten.
proxy_cache_path {CACHE_DIR} levels=1:2 keys_zone=devpi_airgap:10m inactive=30d use_temp_path=off;

server {{
    server_name {front.server_name} $hostname "";
    listen {listen};
{tls}    server_tokens off;

    gzip on;
    gzip_min_length 2000;
    gzip_proxied any;
    gzip_types text/plain text/css text/xml application/json application/vnd.pypi.simple.v1+json
               application/javascript text/javascript application/xml application/xml+rss;

    proxy_read_timeout 60s;
    client_max_body_size {body_limit_mb(max_body_bytes)}M;

    # devpi builds every URL it hands out (file links, the +api) from this header, so they point at us.
    proxy_set_header X-outside-url $scheme://$http_host;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Real-IP $remote_addr;

{changelog}\
    # Release files never change under their name (the index is volatile=False): cache them.
    location ~ /\\+f/ {{
        proxy_cache devpi_airgap;
        proxy_cache_valid 200 1d;
        add_header X-Cached $upstream_cache_status;
        proxy_pass {upstream};
    }}

    location / {{
        proxy_pass {upstream};
    }}
}}
"""


def ensure_front(host: Host, server: Server, inventory: Inventory, wheels_max_bytes: int, report: Report) -> None:
    """Put nginx in front of devpi as server.front says, acting only on the difference."""
    if not host.run("command -v nginx", step=STEP, check=False).ok:
        raise RemoteError(f"{STEP}: nginx is not installed on {host.name}; {INSTALL_NGINX}")
    front = server.front
    tls = [(local, remote, mode) for local, remote, mode in
           ((front.tls_cert, CERT_PATH, "0644"), (front.tls_key, KEY_PATH, "0600")) if local]
    site = render_site(server, has_replicas=bool(inventory.replicas_of(server)), max_body_bytes=wheels_max_bytes,
                       cert_path=CERT_PATH if front.tls_cert else None, key_path=KEY_PATH if front.tls_key else None)
    changes = _ensure_cache_dir(host)
    backup = host.run(f"d=$(mktemp -d) && for p in {_CONFIG_FILES}; do "
                      "if [ -e $p ] || [ -L $p ]; then cp -a --parents $p $d; fi; done && echo $d", step=STEP).stdout.strip()
    try:
        config_changes = _carry_tls(host, tls) + _install_site(host, site, front.port)
        if config_changes:
            _check_config(host, backup)
    finally:
        host.run(f"rm -rf {backup}", step=STEP, check=False)
    changes += config_changes + _run_nginx(host, reload=bool(config_changes))
    report.note(STEP, ", ".join(changes))


def _ensure_cache_dir(host: Host) -> list[str]:
    if host.run(f"test -d {CACHE_DIR}", step=STEP, check=False).ok:
        return []
    # nginx hands the directory to its worker user itself; `nginx -t` fails while it is missing.
    host.run(f"install -d -m 0700 {CACHE_DIR}", step=STEP)
    return [f"cache {CACHE_DIR} created"]


def _carry_tls(host: Host, files: list[tuple]) -> list[str]:
    """Copy the certificate and key over where their sha256 differs; the key is root's alone."""
    if not files:
        return []
    # A 0700 directory keeps the key private even while it is copied in under a looser mode.
    host.run(f"install -d -m 0700 {TLS_DIR}", step=STEP)
    present = host.run("sha256sum " + " ".join(remote for _, remote, _ in files) + " 2>/dev/null",
                       step=STEP, check=False).stdout
    sums = {line.split()[1]: line.split()[0] for line in present.splitlines() if line.strip()}
    changes = []
    for local, remote, mode in files:
        if sums.get(remote) != sha256_file(local):
            host.put(local, remote, step=STEP)
            host.run(f"chown root:root {remote} && chmod {mode} {remote}", step=STEP)
            changes.append(f"{remote} ({mode})")
    return changes


def _install_site(host: Host, site: str, port: int) -> list[str]:
    changes = []
    current = host.run(f"cat {SITE_AVAILABLE}", step=STEP, check=False)
    if not current.ok or current.stdout != site:
        host.run(f"cat > {SITE_AVAILABLE}.tmp && mv -f {SITE_AVAILABLE}.tmp {SITE_AVAILABLE}", step=STEP, stdin=site)
        changes.append(f"{SITE_AVAILABLE} written")
    if host.run(f"readlink {SITE_ENABLED}", step=STEP, check=False).stdout.strip() != SITE_AVAILABLE:
        host.run(f"ln -sfn {SITE_AVAILABLE} {SITE_ENABLED}", step=STEP)
        changes.append("site enabled")
    # Debian's default site claims port 80 as default_server; on that port it would answer in our stead.
    collides = rf"grep -qE '^\s*listen\s+(\S+:)?{port}([ ;]|$)' {DEFAULT_SITE}"
    if host.run(collides, step=STEP, check=False).ok:
        host.run(f"rm -f {DEFAULT_SITE}", step=STEP)
        changes.append(f"default site disabled (it also listens on {port})")
    return changes


def _check_config(host: Host, backup: str) -> None:
    """`nginx -t` the new configuration; put the previous one back if nginx rejects it."""
    test = host.run("nginx -t", step=STEP, check=False)
    if test.ok:
        return
    host.run(f"for p in {_CONFIG_FILES}; do "
             f"rm -f $p; if [ -e {backup}$p ] || [ -L {backup}$p ]; then cp -a {backup}$p $p; fi; done", step=STEP)
    raise RemoteError(f"{STEP}: nginx on {host.name} rejects the new configuration, so the previous one was put "
                      f"back:\n{test.stderr.strip()}\nFix what nginx names above (often a certificate and key "
                      "that do not belong together) and re-run deploy.")


def _run_nginx(host: Host, *, reload: bool) -> list[str]:
    changes = host.ensure_service("nginx", step=STEP, refresh="reload" if reload else None)
    if not host.run("systemctl is-active --quiet nginx", step=STEP, check=False).ok:
        log = host.run("journalctl --no-pager -n 15 -u nginx", step=STEP, check=False).stdout
        raise RemoteError(f"{STEP}: nginx did not start on {host.name}. Its journal:\n{log}\n"
                          "Fix the cause above (often another service on the same port) and re-run deploy.")
    return [f"nginx {change}" for change in changes]
