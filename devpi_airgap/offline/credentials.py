"""Passwords for the offline side: from the environment, a 0600 secrets file, or a prompt.

They are read before anything changes, travel to the server only over ssh's
stdin or the tunnelled HTTP API, and never appear in a log line or an argv.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devpi_airgap.core.errors import UsageError
from devpi_airgap.core.files import not_users_text, users_text

SECRETS_FILE_ENV = "DEVPI_AIRGAP_SECRETS"
DEFAULT_SECRETS_FILE = Path("~/.config/devpi-airgap/secrets.yaml")
# secret name -> environment variable
SECRETS = {"root_password": "DEVPI_AIRGAP_ROOT_PASSWORD", "user_password": "DEVPI_AIRGAP_USER_PASSWORD"}


class MissingSecret(UsageError):
    pass


@dataclass(frozen=True)
class Credentials:
    root_password: str = field(repr=False)
    user_password: str = field(repr=False)


def secrets_file() -> Path:
    return Path(os.environ.get(SECRETS_FILE_ENV) or DEFAULT_SECRETS_FILE).expanduser()


def _from_file(path: Path, server: str) -> dict:
    if not path.exists():
        return {}
    # Windows keeps who may read a file in its ACL, and stat says 0666 of every writable file: there the file is
    # as private as its folder, which for the default one in the user's profile means the user and the admins.
    mode = path.stat().st_mode
    if sys.platform != "win32" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MissingSecret(f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`")
    try:
        data = yaml.safe_load(users_text(path.read_bytes())) or {}
    except UnicodeDecodeError as exc:
        raise MissingSecret(not_users_text(path, exc)) from None
    except yaml.YAMLError as exc:
        raise MissingSecret(f"{path}: malformed YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise MissingSecret(f"{path}: expected a mapping of server names to secrets")
    section = data.get(server, {})
    defaults = {k: v for k, v in data.items() if k in SECRETS}
    return {**defaults, **(section if isinstance(section, dict) else {})}


def load_credentials(server: str, *, interactive: bool | None = None) -> Credentials:
    """Every secret for `server`, or one error listing each missing secret and where to put it."""
    path = secrets_file()
    stored = _from_file(path, server)
    interactive = sys.stdin.isatty() if interactive is None else interactive
    values, missing = {}, []
    for name, env in SECRETS.items():
        value = os.environ.get(env) or stored.get(name)
        if not value and interactive:
            value = getpass.getpass(f"{name.replace('_', ' ')} for {server}: ")
        if value:
            values[name] = str(value)
        else:
            missing.append(f"{name} (set {env}, or add `{server}: {{{name}: ...}}` to {path}, mode 0600)")
    if missing:
        raise MissingSecret(f"missing secret for server {server!r}: " + "; ".join(missing) + ". Nothing was changed.")
    return Credentials(**values)


def stored_credentials(server: str) -> Credentials | None:
    """The secrets for `server` that the environment or the secrets file holds, never asked for; None if one is missing.

    For `deploy --check`, which needs none, but with them shows a password the deploy would set.
    """
    try:
        return load_credentials(server, interactive=False)
    except MissingSecret:
        return None
