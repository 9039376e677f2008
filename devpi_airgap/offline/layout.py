"""Where everything lives on a devpi server: every server path is defined here, once."""

from __future__ import annotations

UNIT_NAME = "devpi.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
SERVICE_USER = "devpi"

PREFIX = "/opt/devpi-airgap"
VENV = f"{PREFIX}/venv"  # a symlink to the venv of the running devpi-server version
WHEELS = f"{PREFIX}/wheels"  # the wheels that install devpi itself

SERVER_HOME = "/var/lib/devpi"
SERVERDIR = f"{SERVER_HOME}/server"
FILES = f"{SERVERDIR}/+files"
SEED = f"{SERVER_HOME}/seed"  # a first deploy's wheels for devpi-import; on SERVERDIR's filesystem for hard links

STATE_DIR = "/var/lib/devpi-airgap"
IMPORTED = f"{STATE_DIR}/imported.json"
ADVISORIES = f"{STATE_DIR}/advisories.json"  # the newest advisory snapshot a bundle carried, for `fab audit`
RECALLS = f"{STATE_DIR}/recalls.json"  # every recall and lift, in order; the active recalls are their fold
INCOMING = f"{STATE_DIR}/incoming"
BACKUPS = f"{STATE_DIR}/backups"
RESTORES = f"{STATE_DIR}/restore"

CONFIG_DIR = "/etc/devpi-airgap"
SECRETFILE = f"{CONFIG_DIR}/secret"
TLS_DIR = f"{CONFIG_DIR}/tls"
CERT_PATH = f"{TLS_DIR}/front.crt"
KEY_PATH = f"{TLS_DIR}/front.key"

NGINX_SITE_NAME = "devpi-airgap"
NGINX_SITE_AVAILABLE = f"/etc/nginx/sites-available/{NGINX_SITE_NAME}"
NGINX_SITE_ENABLED = f"/etc/nginx/sites-enabled/{NGINX_SITE_NAME}"
NGINX_DEFAULT_SITE = "/etc/nginx/sites-enabled/default"
NGINX_CACHE_DIR = "/var/cache/nginx/devpi-airgap"


def venv_for(version: str) -> str:
    """A venv of its own for each devpi-server version, so the previous one stays for a rollback."""
    return f"{PREFIX}/venv-{version}"
