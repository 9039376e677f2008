"""The steps through devpi's HTTP API: the user and index, the uploads; and proof the index serves every target."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devpi_airgap.core.console import ProgressFactory, human_bytes
from devpi_airgap.core.errors import AirgapError, RemoteError
from devpi_airgap.core.files import scratch_prefix, sha256_cached
from devpi_airgap.core.inventory import Inventory, Server
from devpi_airgap.core.platforms import target_platform
from devpi_airgap.core.pools import stoppable_pool
from devpi_airgap.core.requirements import resolution_sets, uv_compile
from devpi_airgap.offline.credentials import Credentials
from devpi_airgap.offline.devpi_api import (
    DevpiClient,
    DevpiError,
    UploadResult,
    index_matches,
    plan_upload,
    upload_files,
)
from devpi_airgap.offline.health import journal
from devpi_airgap.offline.layout import FILES, SERVERDIR
from devpi_airgap.offline.remote import Host
from devpi_airgap.offline.steps import Step


@dataclass(frozen=True)
class IndexFacts:
    user_exists: bool
    index: dict | None  # the index's configuration, None when absent
    user_password_taken: bool = True  # whether devpi takes the secrets' user_password (True when not asked)


class UserAndIndex(Step):
    """The index owner, with the secrets' password, and a stage index with `bases=` (never an upstream) and
    `volatile=False`.

    A security office has passwords changed on a schedule: a changed user_password in the secrets is set on
    the server (as root), so the secrets stay the one place the passwords live. The root password cannot be
    set so, as root must log in first; one that devpi refuses stops the step, saying how to change it.
    """

    name = "user and index"

    def __init__(self, client: DevpiClient | None, server: Server, credentials: Credentials | None):
        self.client = client  # None while devpi is not serving yet (only under --check)
        self.server = server
        self.credentials = credentials  # None under --check without secrets: passwords are then not compared

    def read(self, host: Host) -> IndexFacts:
        if self.client is None:
            return IndexFacts(False, None)
        client, server, credentials = self.client, self.server, self.credentials
        user_exists = client.user_exists(server.user)
        taken = True
        if credentials is not None:
            if not client.logs_in("root", credentials.root_password):
                raise RemoteError(
                    f"{self.name}: devpi on {host.name} refuses the root_password of the secrets for its root user. "
                    "Deploy sets devpi's root password only on a server's first deploy, and cannot change it "
                    "without the old one. Put the server's root password back in the secrets; or, to change it, "
                    "log in with the old one (`devpi login root`) and run `devpi passwd root`, which asks for the "
                    "new one; then run again."
                )
            taken = not user_exists or client.logs_in(server.user, credentials.user_password)
        return IndexFacts(user_exists, client.index_config(server.user, server.index), taken)

    def diff(self, facts: IndexFacts) -> list[str]:
        user, index = self.server.user, f"{self.server.user}/{self.server.index}"
        changes = [] if facts.user_exists else [f"user {user} created"]
        if not facts.user_password_taken:
            changes.append(f"password of {user} set from the secrets")
        if facts.index is None or not index_matches(facts.index, bases=(), volatile=False):
            changes.append(f"index {index} set to bases= volatile=False")
        return changes

    def apply(self, host: Host, facts: IndexFacts) -> list[str]:
        server, client = self.server, self.client
        client.login("root", self.credentials.root_password)
        client.ensure_user(server.user, self.credentials.user_password)
        if not facts.user_password_taken:
            client.set_password(server.user, self.credentials.user_password)
        client.ensure_index(server.user, server.index, bases=(), volatile=False)
        return self.diff(facts)


class Upload(Step):
    """Every wheel of every carried target that the index lacks, by name and sha256."""

    name = "upload"

    def __init__(
        self,
        client: DevpiClient | None,
        server: Server,
        credentials: Credentials | None,
        files: list[Path],
        progress: ProgressFactory,
        listing: Callable[[DevpiClient, str, str], dict[str, str]] = DevpiClient.index_files,
    ):
        self.client = client
        self.server = server
        self.credentials = credentials
        self.files = files
        self.progress = progress
        self.listing = listing  # or an IndexRecord's files, where a check of the live index follows
        self.result = UploadResult()

    def read(self, host: Host) -> dict[str, str]:
        return self.listing(self.client, self.server.user, self.server.index) if self.client else {}

    def diff(self, remote: dict[str, str]) -> list[str]:
        # Conflicts are problems, not changes: the index keeps its copy, and deploy says so at the end.
        self.result = plan_upload(self.files, remote, sha256_cached, f"{self.server.user}/{self.server.index}")
        todo = self.result.todo
        return [f"{len(todo)} files, {human_bytes(sum(p.stat().st_size for p in todo))} to upload"] if todo else []

    def apply(self, host: Host, remote: dict[str, str]) -> list[str]:
        server = self.server
        self.client.login(server.user, self.credentials.user_password)
        total = sum(p.stat().st_size for p in self.result.todo)
        with self.progress(f"uploading to {server.user}/{server.index}", total) as advance:
            upload_files(
                self.client, server.user, server.index, self.result, progress=lambda name, nbytes: advance(nbytes)
            )
        return [f"{len(self.result.uploaded)} files, {human_bytes(self.result.bytes_uploaded)}"]


def target_files(inventory: Inventory) -> list[Path]:
    """Every file of every target's wheelhouse, once per name."""
    files: dict[str, Path] = {}
    for target in inventory.targets.values():
        directory = inventory.target_dir(target)
        if directory.is_dir():
            for path in sorted(directory.glob("*.whl")):
                files.setdefault(path.name, path)
    return list(files.values())


def check_targets(base_url: str, inventory: Inventory, server: Server) -> list[str]:
    """Resolve every target's requirements from the live index alone; returns the problems."""
    index_url = f"{base_url}/{server.user}/{server.index}/+simple"
    # Only what this machine carries was uploaded; a target never downloaded here is not ours to check.
    carried = [
        t for t in inventory.targets.values() if inventory.lock_path(t).exists() and inventory.target_dir(t).is_dir()
    ]
    jobs = [(t, s) for t in carried for s in resolution_sets(t)]

    def check(job) -> str | None:
        target, resolution = job
        with tempfile.TemporaryDirectory(prefix=scratch_prefix(None, "airgap-check-")) as tmp:
            result = uv_compile(
                resolution, target_platform(target), index_url, Path(tmp), ("--only-binary", ":all:"), pylock=False
            )
        if result.returncode:
            return f"{target.name} ({resolution.label}): " + " ".join(result.stderr.split())[-600:]
        return None

    with stoppable_pool(4) as pool:
        return [problem for problem in pool.map(check, jobs) if problem]


def upload_failure(host: Host, server: Server, exc: DevpiError) -> RemoteError:
    """Why talking to devpi failed mid-deploy, worked out on the server, and what to do about it."""
    again = (
        "then re-run deploy: files already on the index are kept and only the missing ones are uploaded "
        "(a half-sent file never reaches the index)"
    )
    if host.is_remote and not host.c.is_connected:
        return RemoteError(
            f"upload: the SSH connection to {host.name} broke mid-upload ({exc}); once {host.name} "
            f"answers over SSH again, {again}"
        )
    try:
        free_kb = host.run(
            f"df -Pk {FILES} {SERVERDIR} 2>/dev/null | awk 'NR>1 {{print $4}}' | sort -n | head -1",
            step="upload",
            check=False,
        ).stdout.strip()
        logged = journal(host, 200)
    except AirgapError:
        return RemoteError(
            f"upload: the connection to {host.name} broke mid-upload ({exc}); once {host.name} "
            f"answers over SSH again, {again}"
        )
    low = free_kb.isdigit() and int(free_kb) < 64 * 1024
    if "No space left" in str(exc) or ((exc.status or 0) >= 500 and (low or "No space left" in logged)):
        return RemoteError(
            f"upload: the disk holding {SERVERDIR} on {host.name} is full "
            f"({int(free_kb) // 1024 if free_kb.isdigit() else '?'} MB free; the server said: {exc}). "
            f"Free space there (or grow that filesystem), {again}"
        )
    systemd_lines = [line for line in logged.splitlines() if " INFO " not in line][-8:]
    return RemoteError(
        f"upload: devpi-server on {host.name} stopped answering or the connection to it broke "
        f"mid-upload ({exc}). Its journal:\n{chr(10).join(systemd_lines)}\nFix any cause shown above, {again}"
    )


@contextmanager
def explained_upload_errors(host: Host, server: Server):
    try:
        yield
    except DevpiError as exc:
        raise upload_failure(host, server, exc) from None


@contextmanager
def devpi_api(host: Host, server: Server, *, serving: bool):
    """A client for devpi's API through the SSH connection, or None while devpi is not up (only under --check)."""
    if not serving:
        yield None, None
        return
    with host.http(server.port) as base_url, DevpiClient(base_url) as client, explained_upload_errors(host, server):
        yield base_url, client
