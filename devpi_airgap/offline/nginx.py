"""An optional nginx in front of devpi: cached file downloads, big uploads, TLS.

Follows the caching configuration devpi-server ships (devpi-gen-config's
nginx-devpi*.template), with two deliberate differences: nginx cannot read
devpi's 0700 serverdir, so `+f/` files are proxied and cached instead of served
from disk; and only those files are cached, because an index page cached for
minutes would hide a fresh upload from its users.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from devpi_airgap.core.errors import RemoteError
from devpi_airgap.core.files import sha256_file
from devpi_airgap.core.inventory import Server
from devpi_airgap.offline.layout import CERT_PATH, KEY_PATH, TLS_DIR
from devpi_airgap.offline.layout import NGINX_CACHE_DIR as CACHE_DIR
from devpi_airgap.offline.layout import NGINX_DEFAULT_SITE as DEFAULT_SITE
from devpi_airgap.offline.layout import NGINX_SITE_AVAILABLE as SITE_AVAILABLE
from devpi_airgap.offline.layout import NGINX_SITE_ENABLED as SITE_ENABLED
from devpi_airgap.offline.remote import Host
from devpi_airgap.offline.steps import Step

STEP = "nginx front"
MIN_BODY_MB = 64  # devpi's own template allows 64M
BODY_MARGIN = 1.25  # the next release of the largest wheel may well be a little larger
# Everything a change here may touch, saved first so a configuration nginx rejects can be put back.
_CONFIG_FILES = f"{SITE_AVAILABLE} {SITE_ENABLED} {DEFAULT_SITE} {CERT_PATH} {KEY_PATH}"
INSTALL_NGINX = (
    "install nginx from your distribution's media or internal mirror, e.g. apt-get install nginx, then re-run deploy"
)


def body_limit_mb(max_body_bytes: int) -> int:
    return max(MIN_BODY_MB, math.ceil(max_body_bytes * BODY_MARGIN / (1 << 20)))


def render_site(
    server: Server, *, has_replicas: bool, max_body_bytes: int, cert_path: str | None, key_path: str | None
) -> str:
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


@dataclass(frozen=True)
class FrontFacts:
    installed: bool
    cache_dir: bool
    tls_sha256: dict[str, str]  # server path -> sha256 of the certificate and key there
    site: str | None
    enabled_link: str
    default_collides: bool  # Debian's default site listens on our port too
    enabled: bool
    active: bool


class NginxFront(Step):
    """Put nginx in front of devpi as server.front says, acting only on the difference."""

    name = STEP

    def __init__(self, server: Server, *, has_replicas: bool, max_body_bytes: int):
        front = server.front
        self.server_name = server.name
        self.port = front.port
        self.tls: list[tuple[Path, str, str]] = [
            (local, remote, mode)
            for local, remote, mode in ((front.tls_cert, CERT_PATH, "0644"), (front.tls_key, KEY_PATH, "0600"))
            if local
        ]
        self.site = render_site(
            server,
            has_replicas=has_replicas,
            max_body_bytes=max_body_bytes,
            cert_path=CERT_PATH if front.tls_cert else None,
            key_path=KEY_PATH if front.tls_key else None,
        )

    def read(self, host: Host) -> FrontFacts:
        def ok(command: str) -> bool:
            return host.run(command, step=STEP, check=False).ok

        sums = (
            host.run(
                "sha256sum " + " ".join(remote for _, remote, _ in self.tls) + " 2>/dev/null", step=STEP, check=False
            ).stdout
            if self.tls
            else ""
        )
        site = host.run(f"cat {SITE_AVAILABLE}", step=STEP, check=False)
        return FrontFacts(
            installed=ok("command -v nginx"),
            cache_dir=ok(f"test -d {CACHE_DIR}"),
            tls_sha256={line.split()[1]: line.split()[0] for line in sums.splitlines() if line.strip()},
            site=site.stdout if site.ok else None,
            enabled_link=host.run(f"readlink {SITE_ENABLED}", step=STEP, check=False).stdout.strip(),
            default_collides=ok(rf"grep -qE '^\s*listen\s+(\S+:)?{self.port}([ ;]|$)' {DEFAULT_SITE}"),
            enabled=ok("systemctl is-enabled --quiet nginx"),
            active=ok("systemctl is-active --quiet nginx"),
        )

    def stale_tls(self, facts: FrontFacts) -> list[tuple[Path, str, str]]:
        return [
            (local, remote, mode)
            for local, remote, mode in self.tls
            if facts.tls_sha256.get(remote) != sha256_file(local)
        ]

    def config_changes(self, facts: FrontFacts) -> list[str]:
        changes = [f"{remote} ({mode})" for _, remote, mode in self.stale_tls(facts)]
        if facts.site != self.site:
            changes.append(f"{SITE_AVAILABLE} written")
        if facts.enabled_link != SITE_AVAILABLE:
            changes.append("site enabled")
        if facts.default_collides:
            changes.append(f"default site disabled (it also listens on {self.port})")
        return changes

    def diff(self, facts: FrontFacts) -> list[str]:
        if not facts.installed:
            raise RemoteError(f"{STEP}: nginx is not installed on {self.server_name}; {INSTALL_NGINX}")
        config = self.config_changes(facts)
        service = [] if facts.enabled else ["nginx enabled"]
        if not facts.active:
            service.append("nginx started")
        elif config:
            service.append("nginx reloaded")
        return ([] if facts.cache_dir else [f"cache {CACHE_DIR} created"]) + config + service

    def apply(self, host: Host, facts: FrontFacts) -> list[str]:
        changes = self.diff(facts)
        if not facts.cache_dir:
            # nginx hands the directory to its worker user itself; `nginx -t` fails while it is missing.
            host.run(f"install -d -m 0700 {CACHE_DIR}", step=STEP)
        if self.config_changes(facts):
            backup = host.run(
                f"d=$(mktemp -d) && for p in {_CONFIG_FILES}; do "
                "if [ -e $p ] || [ -L $p ]; then cp -a --parents $p $d; fi; done && echo $d",
                step=STEP,
            ).stdout.strip()
            try:
                self._write_config(host, facts)
                _check_config(host, backup)
            finally:
                host.run(f"rm -rf {backup}", step=STEP, check=False)
        if "nginx enabled" in changes:
            host.run("systemctl enable --quiet nginx", step=STEP)
        if "nginx started" in changes:
            host.run("systemctl reset-failed nginx; systemctl start nginx", step=STEP, check=False)
        if "nginx reloaded" in changes:
            host.run("systemctl reload nginx", step=STEP, check=False)
        if not host.run("systemctl is-active --quiet nginx", step=STEP, check=False).ok:
            log = host.run("journalctl --no-pager -n 15 -u nginx", step=STEP, check=False).stdout
            raise RemoteError(
                f"{STEP}: nginx did not start on {host.name}. Its journal:\n{log}\n"
                "Fix the cause above (often another service on the same port) and re-run deploy."
            )
        return changes

    def _write_config(self, host: Host, facts: FrontFacts) -> None:
        stale = self.stale_tls(facts)
        if stale:
            # A 0700 directory keeps the key private even while it is copied in under a looser mode.
            host.run(f"install -d -m 0700 {TLS_DIR}", step=STEP)
        for local, remote, mode in stale:
            host.put(local, remote, step=STEP)
            host.run(f"chown root:root {remote} && chmod {mode} {remote}", step=STEP)
        if facts.site != self.site:
            host.run(
                f"cat > {SITE_AVAILABLE}.tmp && mv -f {SITE_AVAILABLE}.tmp {SITE_AVAILABLE}", step=STEP, stdin=self.site
            )
        if facts.enabled_link != SITE_AVAILABLE:
            host.run(f"ln -sfn {SITE_AVAILABLE} {SITE_ENABLED}", step=STEP)
        if facts.default_collides:
            host.run(f"rm -f {DEFAULT_SITE}", step=STEP)


def _check_config(host: Host, backup: str) -> None:
    """`nginx -t` the new configuration; put the previous one back if nginx rejects it."""
    test = host.run("nginx -t", step=STEP, check=False)
    if test.ok:
        return
    host.run(
        f"for p in {_CONFIG_FILES}; do "
        f"rm -f $p; if [ -e {backup}$p ] || [ -L {backup}$p ]; then cp -a {backup}$p $p; fi; done",
        step=STEP,
    )
    raise RemoteError(
        f"{STEP}: nginx on {host.name} rejects the new configuration, so the previous one was put "
        f"back:\n{test.stderr.strip()}\nFix what nginx names above (often a certificate and key "
        "that do not belong together) and re-run deploy."
    )
