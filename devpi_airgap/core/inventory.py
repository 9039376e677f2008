"""The inventory: what to download for which target, and which servers serve it.

The schema is a contract that later features extend, so validation is strict:
every error names the file, the key path, the bad value and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from devpi_airgap.core.errors import UsageError

DEFAULT_WHEELHOUSE = "wheelhouse"
DEFAULT_LOCKS = "locks"
DEFAULT_PORT = 3141
DEVPI_REQUIREMENTS = ("devpi-server", "devpi-web", "devpi-client")

_PLATFORM_TAG = re.compile(r"^[a-z0-9_]+$")
_PYTHON_VERSION = re.compile(r"^3\.\d{1,2}$")
# uv resolves markers as CPython, so a PyPy target would get CPython markers silently.
_IMPLEMENTATIONS = ("cp",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class InventoryError(UsageError):
    """The inventory file is missing, unreadable or does not match the schema."""


class UnknownTarget(UsageError):
    """A target name that the inventory does not define."""


@dataclass(frozen=True)
class Target:
    name: str
    platforms: tuple[str, ...]
    python: str
    implementation: str
    requirements: tuple[Path, ...]
    serves_devpi: bool = False

    @property
    def python_tuple(self) -> tuple[int, int]:
        major, minor = self.python.split(".")
        return int(major), int(minor)


@dataclass(frozen=True)
class Front:
    """nginx in front of devpi: caching, upload size, TLS."""

    port: int
    server_name: str
    tls_cert: Path | None = None  # on this machine; deploy carries them over
    tls_key: Path | None = None


@dataclass(frozen=True)
class Server:
    name: str
    target: str
    port: int = DEFAULT_PORT
    user: str = "myuser"
    index: str = "myindex"
    role: str = "primary"
    primary: str | None = None  # a replica's primary, by its servers: name
    primary_url: str | None = None  # how the replica reaches it, when not by the primary's SSH address
    front: Front | None = None

    @property
    def is_replica(self) -> bool:
        return self.role == "replica"


@dataclass(frozen=True)
class BundleSettings:
    directory: Path
    sign_key: Path | None = None  # online side: sign bundles with this SSH private key
    allowed_signers: Path | None = None  # offline side: verify signatures against this file
    identity: str | None = None  # the signer's principal in allowed_signers
    require_signature: bool = False


@dataclass(frozen=True)
class Inventory:
    path: Path
    index_url: str | None
    wheelhouse: Path
    locks: Path
    targets: dict[str, Target]
    servers: dict[str, Server]
    bundles: BundleSettings

    def select_targets(self, name: str | None) -> list[Target]:
        """`all` (or nothing) means every target; otherwise exactly the named one."""
        if name in (None, "", "all"):
            return list(self.targets.values())
        names = [n.strip() for n in name.split(",") if n.strip()]
        unknown = [n for n in names if n not in self.targets]
        if unknown:
            raise UnknownTarget(
                f"unknown target {', '.join(map(repr, unknown))} in {self.path}; "
                f"known targets: {', '.join(self.targets) or '(none)'}, or 'all'"
            )
        return [self.targets[n] for n in names]

    def server(self, name: str) -> Server:
        if name not in self.servers:
            raise InventoryError(
                f"{self.path}: no entry {name!r} under 'servers:'; "
                f"known servers: {', '.join(self.servers) or '(none)'}"
            )
        return self.servers[name]

    def replicas_of(self, server: Server) -> list[Server]:
        return [s for s in self.servers.values() if s.primary == server.name]

    def target_dir(self, target: Target) -> Path:
        return self.wheelhouse / target.name

    def lock_path(self, target: Target) -> Path:
        return self.locks / f"{target.name}.lock.json"


class _Checker:
    """Collects the context needed to phrase an error about one key path."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, keypath: str, value, expected: str):
        raise InventoryError(f"{self.path}: {keypath}: got {value!r}, expected {expected}")

    def mapping(self, keypath: str, value, *, allowed: set[str] | None = None, required=()):
        if not isinstance(value, dict):
            self.fail(keypath, value, "a mapping")
        for key in value:
            if not isinstance(key, str):
                self.fail(keypath, key, "string keys")
            if allowed is not None and key not in allowed:
                self.fail(f"{keypath}.{key}", value[key], f"no such key (allowed: {', '.join(sorted(allowed))})")
        for key in required:
            if key not in value:
                self.fail(f"{keypath}.{key}", None, "this key to be set")
        return value

    def string(self, keypath: str, value, *, pattern: re.Pattern | None = None, expected="a string"):
        if not isinstance(value, str) or not value.strip():
            self.fail(keypath, value, expected)
        if pattern is not None and not pattern.match(value):
            self.fail(keypath, value, expected)
        return value

    def string_list(self, keypath: str, value, **kw) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            self.fail(keypath, value, "a string or a non-empty list of strings")
        return [self.string(f"{keypath}[{i}]", v, **kw) for i, v in enumerate(items)]


def load_inventory(path: str | Path = "inventory.yaml") -> Inventory:
    path = Path(path).absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(
            f"{path}: inventory not found; run from the directory holding inventory.yaml "
            f"or pass --inventory PATH"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{path}: cannot read the inventory: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InventoryError(f"{path}: malformed YAML{where}: {problem}") from None
    return parse_inventory(data, path)


def parse_inventory(data, path: Path) -> Inventory:
    check = _Checker(path)
    base = path.parent
    check.mapping("(top level)", data, allowed={"index_url", "wheelhouse", "locks", "targets", "servers", "bundles"},
                  required=("targets",))
    index_url = data.get("index_url")
    if index_url is not None:
        check.string("index_url", index_url, pattern=re.compile(r"^(https?|file)://\S+$"),
                     expected="an http(s):// or file:// URL of a simple index")
        index_url = index_url.rstrip("/")
    wheelhouse = base / check.string("wheelhouse", data.get("wheelhouse", DEFAULT_WHEELHOUSE), expected="a directory path")
    locks = base / check.string("locks", data.get("locks", DEFAULT_LOCKS), expected="a directory path")

    servers = {}
    raw_servers = data.get("servers") or {}
    check.mapping("servers", raw_servers)
    for name, raw in raw_servers.items():
        key = f"servers.{name}"
        check.mapping(key, raw, allowed={"target", "port", "user", "index", "role", "primary", "primary_url", "nginx"},
                      required=("target",))
        role = raw.get("role", "primary")
        if role not in ("primary", "replica"):
            check.fail(f"{key}.role", role, "primary or replica")
        if role == "replica":
            check.string(f"{key}.primary", raw.get("primary"), expected="the servers: name of this replica's primary")
            for own in ("user", "index"):
                if own in raw:
                    check.fail(f"{key}.{own}", raw[own], "no such key on a replica: it serves its primary's index")
        else:
            for only_replica in ("primary", "primary_url"):
                if only_replica in raw:
                    check.fail(f"{key}.{only_replica}", raw[only_replica], "role: replica for this key")
        primary_url = raw.get("primary_url")
        if primary_url is not None:
            check.string(f"{key}.primary_url", primary_url, pattern=re.compile(r"^https?://[^/\s]+/?$"),
                         expected="the primary's base URL as the replica reaches it, e.g. http://10.0.0.5:3141")
        servers[name] = Server(
            name=name,
            target=check.string(f"{key}.target", raw["target"], expected="a target name"),
            port=_port(check, f"{key}.port", raw.get("port", DEFAULT_PORT)),
            user=check.string(f"{key}.user", raw.get("user", "myuser"), pattern=_NAME, expected="a devpi user name"),
            index=check.string(f"{key}.index", raw.get("index", "myindex"), pattern=_NAME, expected="a devpi index name"),
            role=role,
            primary=raw.get("primary"),
            primary_url=primary_url.rstrip("/") if primary_url else None,
            front=_front(check, f"{key}.nginx", raw["nginx"], base, name) if "nginx" in raw else None,
        )
    for server in servers.values():
        if server.is_replica:
            primary = servers.get(server.primary)
            if primary is None or primary.is_replica:
                check.fail(f"servers.{server.name}.primary", server.primary,
                           f"a primary among the servers: entries ({', '.join(n for n, s in servers.items() if not s.is_replica)})")
            if primary.target != server.target:
                check.fail(f"servers.{server.name}.target", server.target,
                           f"its primary's target {primary.target!r}: both must run the same devpi-server")
            servers[server.name] = replace(server, user=primary.user, index=primary.index)

    raw_targets = check.mapping("targets", data["targets"])
    if not raw_targets:
        check.fail("targets", raw_targets, "at least one target")
    devpi_targets = {s.target for s in servers.values()}
    targets = {}
    for name, raw in raw_targets.items():
        key = f"targets.{name}"
        check.string(key, name, pattern=_NAME, expected="a target name of letters, digits, '.', '_' or '-'")
        check.mapping(key, raw, allowed={"platform", "python", "implementation", "requirements"},
                      required=("platform", "python", "requirements"))
        platforms = check.string_list(f"{key}.platform", raw["platform"], pattern=_PLATFORM_TAG,
                                      expected="a wheel platform tag such as win_amd64, macosx_11_0_arm64 or manylinux_2_28_x86_64")
        python = raw["python"]
        if isinstance(python, float):
            check.fail(f"{key}.python", python, 'a quoted version such as "3.13" (YAML reads 3.10 as the number 3.1)')
        check.string(f"{key}.python", python, pattern=_PYTHON_VERSION, expected='a major.minor version such as "3.13"')
        implementation = raw.get("implementation", "cp")
        if implementation not in _IMPLEMENTATIONS:
            check.fail(f"{key}.implementation", implementation, f"one of {', '.join(_IMPLEMENTATIONS)}")
        requirements = []
        for i, req in enumerate(check.string_list(f"{key}.requirements", raw["requirements"], expected="a requirements file path")):
            req_path = base / req
            if not req_path.is_file():
                check.fail(f"{key}.requirements[{i}]", req, f"an existing file (looked for {req_path})")
            requirements.append(req_path)
        targets[name] = Target(
            name=name,
            platforms=tuple(platforms),
            python=python,
            implementation=implementation,
            requirements=tuple(requirements),
            serves_devpi=name in devpi_targets,
        )
    for server in servers.values():
        if server.target not in targets:
            check.fail(f"servers.{server.name}.target", server.target,
                       f"one of the targets defined under 'targets:' ({', '.join(targets)})")
    return Inventory(path=path, index_url=index_url, wheelhouse=wheelhouse, locks=locks,
                     targets=targets, servers=servers, bundles=_bundle_settings(check, data.get("bundles") or {}, base))


def _port(check: _Checker, keypath: str, port) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        check.fail(keypath, port, "a TCP port number from 1 to 65535")
    return port


def _front(check: _Checker, keypath: str, raw, base: Path, server_name: str) -> Front:
    check.mapping(keypath, raw, allowed={"port", "server_name", "tls_cert", "tls_key"})
    tls = [raw.get(k) for k in ("tls_cert", "tls_key")]
    if any(tls) and not all(tls):
        check.fail(f"{keypath}.{'tls_key' if tls[0] else 'tls_cert'}", None, "tls_cert and tls_key set together")
    paths = []
    for key, value in zip(("tls_cert", "tls_key"), tls):
        if value is not None:
            path = base / Path(check.string(f"{keypath}.{key}", value, expected="a file path")).expanduser()
            if not path.is_file():
                check.fail(f"{keypath}.{key}", value, f"an existing file (looked for {path})")
            paths.append(path)
    return Front(port=_port(check, f"{keypath}.port", raw.get("port", 443 if paths else 80)),
                 server_name=check.string(f"{keypath}.server_name", raw.get("server_name", server_name),
                                          expected="the host name clients use"),
                 tls_cert=paths[0] if paths else None, tls_key=paths[1] if paths else None)


def _bundle_settings(check: _Checker, raw, base: Path) -> BundleSettings:
    check.mapping("bundles", raw, allowed={"dir", "sign_key", "allowed_signers", "identity", "require_signature"})

    def path(key: str) -> Path | None:
        value = raw.get(key)
        return None if value is None else base / Path(check.string(f"bundles.{key}", value, expected="a path")).expanduser()

    required = raw.get("require_signature", False)
    if not isinstance(required, bool):
        check.fail("bundles.require_signature", required, "true or false")
    if required and not (raw.get("allowed_signers") and raw.get("identity")):
        check.fail("bundles.require_signature", required, "allowed_signers and identity to be set as well")
    identity = raw.get("identity")
    if identity is not None:
        check.string("bundles.identity", identity, expected="the signer's principal in allowed_signers")
    return BundleSettings(directory=path("dir") or base / "bundles", sign_key=path("sign_key"),
                          allowed_signers=path("allowed_signers"), identity=identity, require_signature=required)
