"""Requirements as the resolver sees them: the sets that must each resolve, and uv run for a target.

Shared by the online side (resolving, verifying) and the offline side, which
resolves every target again from the live index to prove it serves them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from devpi_airgap.core.errors import UsageError
from devpi_airgap.core.files import not_users_text, users_text
from devpi_airgap.core.inventory import DEVPI_REQUIREMENTS, Target
from devpi_airgap.core.isolation import isolated_env, uv_binary
from devpi_airgap.core.lock import LockedFile
from devpi_airgap.core.platforms import TargetPlatform

# Options that would let a requirements file add sources behind the inventory's back.
_SOURCE_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index", "--trusted-host")


@dataclass(frozen=True)
class RequirementLine:
    text: str  # the requirement alone, without its --hash options
    origin: str  # file:line, for error messages
    name: str
    hashes: frozenset[str] = frozenset()  # the sha256 values its --hash options allow


@dataclass(frozen=True)
class ResolutionSet:
    """Requirements that must be installable together in one environment.

    `hashes`, when its file pins with --hash (as `pip-compile --generate-hashes` writes it): the sha256
    values allowed for each project, which then covers every project the set needs, as pip's hash-checking
    mode demands.
    """

    label: str
    lines: tuple[str, ...]
    constraints: tuple[Path, ...] = ()
    hashes: tuple[tuple[str, frozenset[str]], ...] = ()


def requirements_text(path: Path) -> str:
    """A requirements file's text as pip reads it (see files.users_text)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: this requirements file does not exist; fix the path or add the file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read this requirements file: {exc}") from None
    try:
        return users_text(raw)
    except UnicodeDecodeError as exc:
        raise UsageError(not_users_text(path, exc)) from None


# pip's own rule: a `#` at the start of a line or after whitespace (a tab too) starts a comment; in a URL's
# `#sha256=...` fragment it does not.
_COMMENT = re.compile(r"(^|\s+)#.*$")


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(number of its first line, text) of each line, comments removed and `\\` continuations joined, as pip does."""
    joined, first = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub("", raw)
        if not joined:
            first = number
        if line.rstrip().endswith("\\"):
            joined += line.rstrip()[:-1] + " "
            continue
        yield first, (joined + line).strip()
        joined = ""
    if joined.strip():
        yield first, joined.strip()


_HASH = re.compile(r"\s--hash[=\s]\s*(\S+)")


def _without_hashes(origin: str, text: str) -> tuple[str, frozenset[str]]:
    """A requirement's text without its --hash options, and the sha256 values they allow."""
    hashes = set()
    for value in _HASH.findall(text):
        algorithm, _, digest = value.partition(":")
        if algorithm != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise UsageError(
                f"{origin}: --hash={value} is not a sha256 (sha256:64 hex digits), the one hash an index publishes "
                "for every file; generate the hashes again with sha256"
            )
        hashes.add(digest.lower())
    return _HASH.sub("", f" {text}").strip(), frozenset(hashes)


# A line pip reads as a URL, a version control checkout, or a file or directory on this machine.
_LOCATION = re.compile(r"^([a-z][a-z0-9+.-]*://|(git|hg|svn|bzr)\+|\.{0,2}[/\\]|[A-Za-z]:[/\\])|\.(whl|zip|tar\.gz)$")


def _not_from_the_index(origin: str, text: str) -> str:
    return (
        f"{origin}: {text!r} points at a URL or a path; name a package from the index instead (to carry your own "
        "package, publish its wheel on the index that index_url names)"
    )


def read_requirements(
    path: Path, _seen: frozenset[Path] = frozenset()
) -> tuple[list[RequirementLine], list[Path], bool]:
    """Requirement lines and constraint files of a requirements file, following -r; and whether it says
    --require-hashes."""
    path = path.resolve()
    if path in _seen:
        raise UsageError(f"{path}: includes itself through -r")
    lines: list[RequirementLine] = []
    constraints: list[Path] = []
    require_hashes = False
    for number, text in _logical_lines(requirements_text(path)):
        if not text:
            continue
        origin = f"{path}:{number}"
        option, argument = (text.split(None, 1) + [""])[:2]  # a tab parts them as a space does, for pip
        option, _, inline = option.partition("=")
        argument = (inline or argument).strip()
        if option in ("-r", "--requirement"):
            included = path.parent / argument
            if not included.is_file():
                raise UsageError(
                    f"{origin}: -r {argument!r} names a file that does not exist (looked for {included.resolve()}); "
                    "fix the line or add the file"
                )
            more, more_constraints, more_required = read_requirements(included, _seen | {path})
            lines += more
            constraints += more_constraints
            require_hashes |= more_required
        elif option in ("-c", "--constraint"):
            constraint = (path.parent / argument).resolve()
            if not constraint.is_file():
                raise UsageError(
                    f"{origin}: the constraints file {argument!r} does not exist (looked for {constraint}); "
                    "fix the -c line or add the file"
                )
            constraints.append(constraint)
        elif option == "--require-hashes":
            require_hashes = True
        elif option in _SOURCE_OPTIONS:
            raise UsageError(
                f"{origin}: {option!s} is not allowed in a requirements file: downloads come only from "
                "the inventory's index_url; set index_url there instead"
            )
        elif text.startswith("-"):
            raise UsageError(f"{origin}: option {option!r} is not supported in requirements files")
        else:
            text, hashes = _without_hashes(origin, text)
            try:
                req = Requirement(text)
            except InvalidRequirement as exc:
                if _LOCATION.search(text):  # pip takes these, but nothing carries them across: said as such
                    raise UsageError(_not_from_the_index(origin, text)) from None
                raise UsageError(f"{origin}: invalid requirement {text!r}: {exc}") from None
            if req.url:
                raise UsageError(_not_from_the_index(origin, text))
            lines.append(RequirementLine(text, origin, canonicalize_name(req.name), hashes))
    return lines, constraints, require_hashes


def _hash_pins(
    path: Path, lines: list[RequirementLine], require_hashes: bool
) -> tuple[tuple[str, frozenset[str]], ...]:
    """The allowed sha256 values by project of a file that pins with --hash; () for a file that does not.

    As in pip's hash-checking mode, one requirement with hashes (or a --require-hashes line) puts the whole
    file in it: every line needs them, and needs to name one version with == (or ===), else pip refuses the
    file on the closed network ("all requirements must have their versions pinned with ==").
    """
    if not require_hashes and not any(line.hashes for line in lines):
        return ()
    regenerate = "Generate the file again (`pip-compile --generate-hashes`, `uv pip compile --generate-hashes`)"
    bare = [line.origin for line in lines if not line.hashes]
    if bare:
        raise UsageError(
            f"{path.name} pins with --hash or says --require-hashes, so every requirement in it needs hashes, "
            f"as pip's hash-checking mode demands; without: {', '.join(bare)}. {regenerate}"
        )
    unpinned = [f"{line.origin} ({line.text})" for line in lines if not _one_version(line.text)]
    if unpinned:
        raise UsageError(
            f"{path.name} pins with --hash or says --require-hashes, so every requirement in it must name one "
            f"version with ==, as pip's hash-checking mode demands; not so: {', '.join(unpinned)}. {regenerate}"
        )
    allowed: dict[str, set[str]] = {}
    for line in lines:
        allowed.setdefault(line.name, set()).update(line.hashes)
    return tuple(sorted((name, frozenset(hashes)) for name, hashes in allowed.items()))


def _one_version(text: str) -> bool:
    """pip's own test of a pinned requirement (InstallRequirement.is_pinned): one specifier, == or ===."""
    specifiers = list(Requirement(text).specifier)
    return len(specifiers) == 1 and specifiers[0].operator in ("==", "===")


def hash_problems(resolution: ResolutionSet, taken: Iterable[tuple[str, str, str, str]]) -> list[str]:
    """What a set takes that its --hash values do not allow: a project they do not name, or a file whose sha256
    none of its project's hashes matches. `taken`: (project, version, file name, sha256) of each file it takes,
    the sdist's for a wheel built from one.
    """
    allowed = dict(resolution.hashes)
    problems = []
    for name, version, filename, sha256 in sorted(taken):
        hashes = allowed.get(name)
        if hashes is None:
            problems.append(f"{name} {version}: not in {resolution.label}, which names every project it allows")
        elif sha256 not in hashes:
            problems.append(
                f"{name} {version}: {filename} (sha256 {sha256}) matches none of the "
                f"{len(hashes)} --hash values {resolution.label} gives it"
            )
    return problems


def served_wheel_problems(resolution: ResolutionSet, locked: Iterable[LockedFile]) -> list[str]:
    """What a set that pins with --hash must also allow: each wheel built here from an sdist the set takes.

    The sdist's hash (hash_problems) says the source is the one approved. But the closed network's index
    serves the wheel, not the sdist, and pip's hash-checking mode installs only a file whose sha256 the
    line allows: without the wheel's, `pip install -r` there fails ("THESE PACKAGES DO NOT MATCH THE
    HASHES") where the download and its proof passed. A wheel built here keeps its sha256 from run to run:
    the lock names it, and the next run takes it again rather than building anew.
    """
    allowed = dict(resolution.hashes)
    problems = []
    for f in sorted(locked, key=lambda f: f.filename):
        hashes = allowed.get(f.name)
        if f.built_from and resolution.label in f.sets and hashes is not None and f.sha256 not in hashes:
            problems.append(
                f"{f.name} {f.version}: the closed network's index serves {f.filename}, built here from "
                f"{f.built_from['filename']} (whose hash {resolution.label} allows); pip's hash-checking mode "
                f"refuses that wheel unless the line allows it too: add --hash=sha256:{f.sha256} to the "
                f"{f.name} line of {resolution.label}"
            )
    return problems


def resolution_sets(target: Target) -> list[ResolutionSet]:
    """Each file resolves on its own, and so does every extra specifier of a package named twice.

    Resolved together, `setuptools<82` and `setuptools<80` collapse into one
    version; a user who lists both wants both on the offline index.
    """
    sets: list[ResolutionSet] = []
    for path in target.requirements:
        lines, constraints, require_hashes = read_requirements(path)
        hashes = _hash_pins(path, lines, require_hashes)
        sets.append(ResolutionSet(path.name, tuple(line.text for line in lines), tuple(constraints), hashes))
        by_name: dict[str, list[RequirementLine]] = {}
        for line in lines:
            by_name.setdefault(line.name, []).append(line)
        for named in by_name.values():
            if len({line.text for line in named}) > 1:
                sets += [
                    ResolutionSet(f"{path.name}: {line.text}", (line.text,), tuple(constraints), hashes)
                    for line in named
                ]
    # Found out only on the closed network, an empty wheelhouse costs another trip across the gap. A server's
    # target may want nothing besides devpi itself, which the set below brings.
    if not any(s.lines for s in sets) and not target.serves_devpi:
        files = ", ".join(str(path) for path in target.requirements)
        raise UsageError(
            f"target {target.name!r}: its requirements ({files}) name no package, so its wheelhouse would be "
            "empty and nothing would install from it; add what the target needs, or take the target out of the "
            "inventory"
        )
    if target.serves_devpi:
        sets.append(ResolutionSet("devpi server", DEVPI_REQUIREMENTS))
    return sets


def uv_compile(
    resolution: ResolutionSet,
    platform: TargetPlatform,
    index_url: str | None,
    workdir: Path,
    extra_args: tuple[str, ...] = (),
    *,
    pylock: bool = True,
    on_decision: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> subprocess.CompletedProcess:
    """Run `uv pip compile` for one resolution set; the caller reads workdir/pylock.toml.

    With pylock=False only whether the set resolves counts, and the output is a plain
    requirements file: a pylock.toml carries every file's sha256, and for files in a
    local directory uv unzips each one into its cache to get it (the sample's Windows
    set: 6.3 s and 584 MB of cache, against 0.84 s without).

    on_decision hears each line of the resolver's log ("DEBUG Selecting: ...") while uv
    runs. The log is for acting early only, never for what is chosen: the returned
    stderr holds uv's other lines, as without it. Setting `stop` ends uv there and
    then, when the caller has learnt that its answer will not be taken.
    """
    (workdir / "requirements.in").write_text("\n".join(resolution.lines) + "\n", encoding="utf-8")
    target = platform.target
    command = [
        uv_binary(),
        "pip",
        "compile",
        "--no-config",
        "--quiet",
        "--no-header",
        "--python",
        sys.executable,
        "--python-platform",
        platform.uv_platform,
        "--python-version",
        target.python,
        "-o",
        str(workdir / ("pylock.toml" if pylock else "requirements.txt")),
        str(workdir / "requirements.in"),
    ]
    for constraint in resolution.constraints:
        command += ["-c", str(constraint)]
    if index_url:
        command += ["--index-url", index_url]
    command += list(extra_args)
    env = isolated_env(**dict(platform.uv_env))
    if on_decision is None:
        return subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", env=env)
    return _run_logging(command, dict(env, RUST_LOG=_RESOLVER_LOG), on_decision, stop)


# The resolver's decisions only: some hundred lines a try, where uv's whole debug log is thousands.
_RESOLVER_LOG = "uv_resolver=debug"
# A line of that log, at any level (tracing pads the level to five): never part of what uv says to the user.
_LOG_LINE = re.compile(r"^(TRACE|DEBUG| INFO| WARN|ERROR) ")


def _run_logging(
    command: list[str], env: dict[str, str], on_decision: Callable[[str], None], stop: threading.Event | None
) -> subprocess.CompletedProcess:
    """Run uv, handing each DEBUG line of its log to on_decision as it comes, and keeping uv's own messages.

    When `stop` is set, uv is terminated; its stderr then closes, and this returns.
    """
    kept: list[str] = []
    # uv writes its output to a file (-o), so stdout has nothing to say, and only stderr is read.
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",
        env=env,
    ) as process:
        assert process.stderr is not None
        if stop is not None:
            threading.Thread(target=_terminate_on, args=(stop, process), daemon=True).start()
        for line in process.stderr:
            if not _LOG_LINE.match(line):
                kept.append(line)
            elif line.startswith("DEBUG "):
                on_decision(line.rstrip("\n"))
    return subprocess.CompletedProcess(command, process.returncode, "", "".join(kept))


def _terminate_on(stop: threading.Event, process: subprocess.Popen) -> None:
    while process.poll() is None:
        if stop.wait(0.05):
            process.terminate()
            return
