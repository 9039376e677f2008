"""The inventory: what to download for which target, and which servers serve it.

The file's shape is a typed model (`InventoryFile`, on pydantic), which also
publishes `inventory.schema.json` for editors. The schema is a contract that
later features extend, so validation is strict: every error names the file,
the key path, the bad value and what was expected. Checks that need more than
one key or the filesystem (a server's target exists, a replica's primary is a
primary, a requirements file is there) follow the model, in the same words.
What the tasks use is the resolved `Inventory`: paths made absolute, defaults
filled in, replicas given their primary's index.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import yaml
from packaging.utils import canonicalize_name
from packaging.version import Version
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from devpi_airgap.core.errors import UsageError
from devpi_airgap.core.files import not_users_text, users_text
from devpi_airgap.core.licenses import normalise
from devpi_airgap.core.pip_versions import BUNDLED_PIP
from devpi_airgap.core.policy import DEFAULT_OSV_URL, AdvisoryPolicy, LicenseException, LicensePolicy, Policy, Waiver

DEFAULT_WHEELHOUSE = "wheelhouse"
DEFAULT_LOCKS = "locks"
DEFAULT_PORT = 3141
DEVPI_REQUIREMENTS = ("devpi-server", "devpi-web", "devpi-client")
SCHEMA_FILE = "inventory.schema.json"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class InventoryError(UsageError):
    """The inventory file is missing, unreadable or does not match the schema."""


class UnknownTarget(UsageError):
    """A target name that the inventory does not define."""


# ---- the file, as a typed model --------------------------------------------------------------
# Each field's description is what an error says was expected, and what an editor shows.


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _no_float_version(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError('a quoted version such as "3.13" (YAML reads 3.10 as the number 3.1)')
    return value


def _bytes_as_text(value: Any) -> Any:
    """A bare number of bytes, as YAML reads `part_size: 4000000000`, checked as its text is."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _quoted_pip_version(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError('a quoted pip version such as "23.0" (YAML reads 20.10 as the number 20.1)')
    return value


PlatformTag = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9_]+$",
        description="a wheel platform tag such as win_amd64, macosx_11_0_arm64 or manylinux_2_28_x86_64",
    ),
]
Port = Annotated[int, Field(strict=True, ge=1, le=65535, description="a TCP port number from 1 to 65535")]
FilePath = Annotated[str, Field(min_length=1, description="a file path")]
DevpiName = Annotated[str, Field(pattern=_NAME.pattern, description="a devpi user or index name")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TargetFile(_Strict):
    """One wheelhouse: an exact OS and CPU (its platform tags), a Python version, and what to install."""

    platform: Annotated[
        list[PlatformTag],
        BeforeValidator(_one_or_many),
        Field(min_length=1, description="a wheel platform tag, or a non-empty list of them for one OS and CPU"),
    ]
    python: Annotated[
        str,
        BeforeValidator(_no_float_version),
        Field(pattern=r"^3\.\d{1,2}$", description='a quoted Python 3 major.minor version such as "3.13"'),
    ]
    # uv resolves markers as CPython, so a PyPy target would get CPython markers silently.
    implementation: Annotated[Literal["cp"], Field(description="one of cp")] = "cp"
    requirements: Annotated[
        list[Annotated[str, Field(min_length=1, description="a requirements file path")]],
        BeforeValidator(_one_or_many),
        Field(min_length=1, description="a requirements file path, or a non-empty list of them"),
    ]
    oldest_pip: Annotated[
        str | None,
        BeforeValidator(_quoted_pip_version),
        Field(
            pattern=r"^\d+(\.\d+){0,2}$",
            description='the oldest pip the clients install with, a quoted version such as "23.0" '
            "(default: the pip the target's Python first came with)",
        ),
    ] = None


class FrontFile(_Strict):
    """nginx in front of devpi: cached release files, uploads as large as the largest wheel, optional TLS."""

    port: Port | None = Field(None, description="a TCP port number from 1 to 65535 (default: 443 with TLS, 80 without)")
    server_name: str | None = Field(None, min_length=1, description="the host name clients use")
    tls_cert: FilePath | None = Field(None, description="the TLS certificate, a file on this machine")
    tls_key: FilePath | None = Field(None, description="the TLS key, a file on this machine")


class ServerFile(_Strict):
    """An offline devpi server, matched against `fab -H NAME`."""

    target: str = Field(min_length=1, description="a target name whose wheels install devpi on this host")
    port: Port = DEFAULT_PORT
    user: DevpiName | None = Field(None, description="a devpi user name (default: myuser)")
    index: DevpiName | None = Field(None, description="a devpi index name (default: myindex)")
    role: Literal["primary", "replica"] = Field("primary", description="primary or replica")
    primary: str | None = Field(None, description="the servers: name of this replica's primary")
    primary_url: str | None = Field(
        None,
        pattern=r"^https?://[^/\s]+/?$",
        description=("the primary's base URL as the replica reaches it, e.g. http://10.0.0.5:3141"),
    )
    nginx: FrontFile | None = None


# a number, a decimal unit or a binary one, with or without the B: 4000000000, 4G, 4.7GB, 2GiB, 650 MB
_SIZE = r"^\s*(\d+(\.\d+)?)\s*(([kKmMgGtT])(i?)[bB]?|[bB])?\s*$"
_SizeInput = Annotated[str, Field(pattern=_SIZE)] | Annotated[int, Field(ge=1)] | None  # as an editor checks it


class BundlesFile(_Strict):
    """Bundles to carry across the gap: where they go, and how they are signed and checked."""

    dir: str | None = Field(None, min_length=1, description="a directory path (default: bundles)")
    sign_key: FilePath | None = Field(None, description="online side: an SSH private key to sign bundles with")
    allowed_signers: FilePath | None = Field(None, description="offline side: ssh-keygen's allowed_signers file")
    identity: str | None = Field(None, min_length=1, description="the signer's principal in allowed_signers")
    require_signature: bool = Field(False, description="true or false")
    part_size: Annotated[str | None, BeforeValidator(_bytes_as_text, json_schema_input_type=_SizeInput)] = Field(
        None,
        pattern=_SIZE,
        description="a size such as 4G, 4.7GB, 650M or 2GiB (G = 10^9 bytes, GiB = 2^30), or a number of bytes: "
        "bundles larger than it are cut into parts of that size, for media and portals with a file size limit "
        "(FAT32 takes files up to 4GiB less one byte, so 4G fits)",
    )


SpdxId = Annotated[str, Field(min_length=1, description="an SPDX license identifier such as MIT or Apache-2.0")]
ProjectName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="a project name on the index")]


class LicenseExceptionFile(_Strict):
    """A project accepted whatever its license says, and why."""

    package: ProjectName
    reason: str = Field(min_length=1, description="why this project is accepted")


class LicensesFile(_Strict):
    """Which licenses may cross the gap."""

    allow: list[SpdxId] = Field(default_factory=list, description="SPDX identifiers that pass")
    deny: list[SpdxId] = Field(default_factory=list, description="SPDX identifiers that stop the run")
    unknown: Literal["review", "block"] = Field(
        "review", description="review (list it for a person) or block: a license neither allowed nor denied"
    )
    exceptions: list[LicenseExceptionFile] = Field(default_factory=list, description="projects accepted as they are")


class WaiverFile(_Strict):
    """An advisory accepted for one project until a date, by a named person."""

    id: str = Field(min_length=1, description="an OSV, GHSA, PYSEC or CVE id")
    package: ProjectName
    until: datetime.date = Field(description="a date, YYYY-MM-DD; the waiver stops applying after it")
    by: str = Field(min_length=1, description="who accepted it")
    reason: str = Field(min_length=1, description="why it is accepted")


class AdvisoriesFile(_Strict):
    """Known vulnerabilities: where to read them, and what stops a run."""

    osv_url: str | None = Field(
        None, pattern=r"^https?://\S+$", description=f"an OSV API base URL (default: {DEFAULT_OSV_URL})"
    )
    osv_zip: FilePath | None = Field(None, description="an OSV export zip (e.g. PyPI's all.zip) to read instead")
    block: Literal["low", "medium", "high", "critical"] = Field(
        "high", description="low, medium, high or critical: block advisories at or above it"
    )
    waivers: list[WaiverFile] = Field(default_factory=list, description="advisories accepted until a date")


class PolicyFile(_Strict):
    """What an approver allows across the gap; checked online before bundling and offline before importing."""

    licenses: LicensesFile | None = None
    advisories: AdvisoriesFile | None = None


class InventoryFile(_Strict):
    """inventory.yaml: which wheelhouses to build, and which offline servers serve them."""

    index_url: str | None = Field(
        None, pattern=r"^(https?|file)://\S+$", description="an http(s):// or file:// URL of a simple index"
    )
    wheelhouse: str = Field(DEFAULT_WHEELHOUSE, min_length=1, description="a directory path")
    locks: str = Field(DEFAULT_LOCKS, min_length=1, description="a directory path")
    targets: dict[str, TargetFile] = Field(min_length=1, description="at least one target")
    servers: dict[str, ServerFile] | None = None
    bundles: BundlesFile | None = None
    known_hosts: FilePath | None = Field(
        None, description="a known_hosts file vouching for the servers' SSH host keys, checked before your own"
    )
    policy: PolicyFile | None = None


def json_schema() -> str:
    """The schema editors validate inventory.yaml with; committed as inventory.schema.json."""
    schema = InventoryFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "devpi-airgap inventory"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


# ---- what the tasks use ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    platforms: tuple[str, ...]
    python: str
    implementation: str
    requirements: tuple[Path, ...]
    serves_devpi: bool = False
    oldest_pip: str | None = None  # None: the pip that the target's Python first came with

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
    part_size: int | None = None  # bytes: a larger bundle is carried in parts of this size


@dataclass(frozen=True)
class Inventory:
    path: Path
    index_url: str | None
    wheelhouse: Path
    locks: Path
    targets: dict[str, Target]
    servers: dict[str, Server]
    bundles: BundleSettings
    known_hosts: Path | None = None  # checked before ssh_config's UserKnownHostsFile and ~/.ssh/known_hosts
    policy: Policy = Policy()

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
                f"{self.path}: no entry {name!r} under 'servers:'; known servers: {', '.join(self.servers) or '(none)'}"
            )
        return self.servers[name]

    def replicas_of(self, server: Server) -> list[Server]:
        return [s for s in self.servers.values() if s.primary == server.name]

    def target_dir(self, target: Target) -> Path:
        return self.wheelhouse / target.name

    def lock_path(self, target: Target) -> Path:
        return self.locks / f"{target.name}.lock.json"


# ---- reading and checking --------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping, where plain YAML keeps the last one silently."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"the key {key!r} appears twice in one mapping (first at line "
                f"{seen[key].start_mark.line + 1}); YAML would silently keep only the last one",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_inventory(path: str | Path = "inventory.yaml") -> Inventory:
    path = Path(path).absolute()
    try:
        text = users_text(path.read_bytes())
    except FileNotFoundError:
        raise InventoryError(
            f"{path}: inventory not found; run from the directory holding inventory.yaml or pass --inventory PATH"
        ) from None
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read the inventory: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(not_users_text(path, exc)) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if "escape" in problem:  # "C:\Users\..." in double quotes: YAML reads \U as the start of an escape
            problem += (
                "; in double quotes YAML reads a backslash as an escape: write a Windows path with forward "
                "slashes (C:/Users/me/requirements.txt), in single quotes, or without quotes"
            )
        raise InventoryError(f"{path}: malformed YAML{where}: {problem}") from None
    return parse_inventory(data, path)


class _Checker:
    """Phrases an error about one key path the way every inventory error reads."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, keypath: str, value, expected: str) -> NoReturn:
        raise InventoryError(f"{self.path}: {keypath}: got {value!r}, expected {expected}")


def _keypath(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _inner(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model inside `X`, `X | None` or `dict[str, X]`, and whether it sits in a dict (entries by name)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    for arg in getattr(annotation, "__args__", ()):
        model, in_dict = _inner(arg)
        if model is not None:
            return model, in_dict or getattr(annotation, "__origin__", None) is dict
    return None, False


def _walk(loc: tuple) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The model whose keys stand at `loc`, and the field `loc` ends in (list positions are skipped)."""
    model: type[BaseModel] | None = InventoryFile
    field, entry_name_next = None, False
    for part in loc:
        if isinstance(part, int):
            continue
        if entry_name_next:  # a target's or server's own name
            entry_name_next = False
            continue
        field = model.model_fields.get(part) if model else None
        if field is None:
            return None, None
        model, entry_name_next = _inner(field.annotation)
    return model, field


def _item_description(field: FieldInfo) -> str | None:
    for arg in getattr(field.annotation, "__args__", ()):
        for meta in getattr(arg, "__metadata__", ()):
            if getattr(meta, "description", None):
                return meta.description
    return None


def _expected(error: Mapping[str, Any]) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        model, _ = _walk(loc[:-1])
        return f"no such key (allowed: {', '.join(sorted(model.model_fields)) if model else 'none'})"
    if error["type"] == "missing":
        return "this key to be set"
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    model, field = _walk(loc)
    if field is None:
        return "a mapping" if error["type"] in ("dict_type", "model_type") else error["msg"]
    in_list = bool(loc) and isinstance(loc[-1], int)
    if model is not None and error["type"] in ("dict_type", "model_type"):
        return "a mapping"
    return (_item_description(field) if in_list else None) or field.description or error["msg"]


def _first_error(exc: ValidationError) -> tuple[str, Any, str]:
    errors = exc.errors(include_url=False)
    # A misspelt key is an unknown key and a missing one at once: the unknown one names what the user wrote,
    # and lists the keys allowed there. Reported first, `platfrom:` is named, not only `platform` as unset.
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    value = None if error["type"] == "missing" else error.get("input")
    return _keypath(error["loc"]), value, _expected(error)


def parse_inventory(data, path: Path) -> Inventory:
    check = _Checker(path)
    if not isinstance(data, dict):
        check.fail("(top level)", data, "a mapping")
    try:
        spec = InventoryFile.model_validate(data)
    except ValidationError as exc:
        check.fail(*_first_error(exc))
    base = path.parent
    servers = _servers(check, spec, base)
    devpi_targets = {s.target for s in servers.values()}
    targets = {}
    for name, raw in spec.targets.items():
        key = f"targets.{name}"
        if not _NAME.match(name):
            check.fail(key, name, "a target name of letters, digits, '.', '_' or '-'")
        requirements = []
        for i, req in enumerate(raw.requirements):
            req_path = base / req
            if not req_path.is_file():
                check.fail(f"{key}.requirements[{i}]", req, f"an existing file (looked for {req_path})")
            requirements.append(req_path)
        targets[name] = Target(
            name=name,
            platforms=tuple(raw.platform),
            python=raw.python,
            implementation=raw.implementation,
            requirements=tuple(requirements),
            serves_devpi=name in devpi_targets,
            oldest_pip=raw.oldest_pip,
        )
        if raw.oldest_pip and Version(raw.oldest_pip) < Version(BUNDLED_PIP.get(raw.python, "0")):
            check.fail(
                f"{key}.oldest_pip",
                raw.oldest_pip,
                f"{BUNDLED_PIP[raw.python]} or newer: Python {raw.python} came with pip {BUNDLED_PIP[raw.python]}, "
                "so its clients have that pip or a newer one",
            )
    for server in servers.values():
        if server.target not in targets:
            check.fail(
                f"servers.{server.name}.target",
                server.target,
                f"one of the targets defined under 'targets:' ({', '.join(targets)})",
            )
    return Inventory(
        path=path,
        index_url=spec.index_url.rstrip("/") if spec.index_url else None,
        wheelhouse=base / spec.wheelhouse,
        locks=base / spec.locks,
        targets=targets,
        servers=servers,
        bundles=_bundle_settings(check, spec.bundles or BundlesFile(), base),
        known_hosts=base / Path(spec.known_hosts).expanduser() if spec.known_hosts else None,
        policy=_policy(check, spec.policy, base) if spec.policy else Policy(),
    )


def _policy(check: _Checker, raw: PolicyFile, base: Path) -> Policy:
    licenses = None
    if raw.licenses:
        for key in ("allow", "deny"):
            for i, spdx in enumerate(getattr(raw.licenses, key)):
                if normalise(spdx) != spdx:
                    check.fail(f"policy.licenses.{key}[{i}]", spdx, "an SPDX license identifier, spelled as SPDX does")
        both = sorted(set(raw.licenses.allow) & set(raw.licenses.deny))
        if both:
            check.fail("policy.licenses.deny", both, "no license that allow also lists")
        licenses = LicensePolicy(
            allow=frozenset(raw.licenses.allow),
            deny=frozenset(raw.licenses.deny),
            unknown=raw.licenses.unknown,
            exceptions=tuple(LicenseException(canonicalize_name(e.package), e.reason) for e in raw.licenses.exceptions),
        )
    advisories = None
    if raw.advisories:
        a = raw.advisories
        if a.osv_url and a.osv_zip:
            check.fail("policy.advisories.osv_zip", a.osv_zip, "osv_url or osv_zip, not both")
        zip_path = base / Path(a.osv_zip).expanduser() if a.osv_zip else None
        advisories = AdvisoryPolicy(
            osv_url=(a.osv_url or DEFAULT_OSV_URL).rstrip("/"),
            osv_zip=str(zip_path) if zip_path else None,
            block=a.block,
            waivers=tuple(Waiver(w.id, canonicalize_name(w.package), w.until, w.by, w.reason) for w in a.waivers),
        )
    return Policy(licenses, advisories)


def _servers(check: _Checker, spec: InventoryFile, base: Path) -> dict[str, Server]:
    raw_servers = spec.servers or {}
    servers = {}
    for name, raw in raw_servers.items():
        key = f"servers.{name}"
        if raw.role == "replica":
            if raw.primary is None:
                check.fail(f"{key}.primary", None, "the servers: name of this replica's primary")
            for own in ("user", "index"):
                if getattr(raw, own) is not None:
                    check.fail(
                        f"{key}.{own}", getattr(raw, own), "no such key on a replica: it serves its primary's index"
                    )
        else:
            for only_replica in ("primary", "primary_url"):
                if getattr(raw, only_replica) is not None:
                    check.fail(f"{key}.{only_replica}", getattr(raw, only_replica), "role: replica for this key")
        servers[name] = Server(
            name=name,
            target=raw.target,
            port=raw.port,
            user=raw.user or "myuser",
            index=raw.index or "myindex",
            role=raw.role,
            primary=raw.primary,
            primary_url=raw.primary_url.rstrip("/") if raw.primary_url else None,
            front=_front(check, f"{key}.nginx", raw.nginx, base, name) if raw.nginx else None,
        )
    for server in list(servers.values()):
        if server.is_replica:
            primary = servers.get(server.primary or "")
            if primary is None or primary.is_replica:
                primaries = ", ".join(n for n, s in servers.items() if not s.is_replica)
                check.fail(
                    f"servers.{server.name}.primary",
                    server.primary,
                    f"a primary among the servers: entries ({primaries})",
                )
            if primary.target != server.target:
                check.fail(
                    f"servers.{server.name}.target",
                    server.target,
                    f"its primary's target {primary.target!r}: both must run the same devpi-server",
                )
            servers[server.name] = replace(server, user=primary.user, index=primary.index)
    return servers


def _front(check: _Checker, keypath: str, raw: FrontFile, base: Path, server_name: str) -> Front:
    tls = [raw.tls_cert, raw.tls_key]
    if any(tls) and not all(tls):
        check.fail(f"{keypath}.{'tls_key' if tls[0] else 'tls_cert'}", None, "tls_cert and tls_key set together")
    paths = []
    for key, value in zip(("tls_cert", "tls_key"), tls, strict=True):
        if value is not None:
            path = base / Path(value).expanduser()
            if not path.is_file():
                check.fail(f"{keypath}.{key}", value, f"an existing file (looked for {path})")
            paths.append(path)
    return Front(
        port=raw.port or (443 if paths else 80),
        server_name=raw.server_name or server_name,
        tls_cert=paths[0] if paths else None,
        tls_key=paths[1] if paths else None,
    )


def _bundle_settings(check: _Checker, raw: BundlesFile, base: Path) -> BundleSettings:
    def path(value: str | None) -> Path | None:
        return None if value is None else base / Path(value).expanduser()

    if raw.require_signature and not (raw.allowed_signers and raw.identity):
        check.fail("bundles.require_signature", True, "allowed_signers and identity to be set as well")
    return BundleSettings(
        directory=path(raw.dir) or base / "bundles",
        sign_key=path(raw.sign_key),
        allowed_signers=path(raw.allowed_signers),
        identity=raw.identity,
        require_signature=raw.require_signature,
        part_size=_bytes(raw.part_size, check) if raw.part_size else None,
    )


def _bytes(size: str, check: _Checker) -> int:
    found = re.match(_SIZE, size)
    assert found is not None  # the model's pattern let it through
    number, _, _, letter, binary = found.groups()
    power = "KMGT".index(letter.upper()) + 1 if letter else 0
    exact = Decimal(number) * (1024 if binary else 1000) ** power
    if exact < 1 or exact != exact.to_integral_value():
        check.fail("bundles.part_size", size, "a whole number of bytes, at least one (such as 4.7G, or 4700000000)")
    return int(exact)


if (
    __name__ == "__main__"
):  # regenerate the published schema: python -m devpi_airgap.core.inventory > inventory.schema.json
    print(json_schema(), end="")  # noqa: T201
