"""`fab deploy`: devpi-server as a hardened systemd service, its index, and the uploads.

Each change is a Step (see `steps`): it reads the server's state, diffs it
against what the inventory wants, and applies only the difference, so a second
run reports "no changes" and `--check` shows what a run would change without
changing anything. The steps live by where they act: `host_steps` on the
server, `index_steps` through devpi's API; `preflight` checks come first.
Passwords reach the server only through ssh's stdin or the tunnelled HTTP API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from devpi_airgap.core.console import ProgressFactory, no_progress
from devpi_airgap.core.errors import AirgapError
from devpi_airgap.core.inventory import Inventory, Server
from devpi_airgap.offline.backup import backup
from devpi_airgap.offline.client_config import trusted_host, user_url
from devpi_airgap.offline.credentials import Credentials
from devpi_airgap.offline.health import service_active, wait_healthy
from devpi_airgap.offline.host_steps import (
    CopyWheels,
    DevpiVenv,
    SecretFile,
    SeedServer,
    ServiceUnit,
    ServiceUser,
    unit_for,
)
from devpi_airgap.offline.index_record import IndexRecord
from devpi_airgap.offline.index_steps import Upload, UserAndIndex, check_targets, devpi_api, target_files
from devpi_airgap.offline.nginx import NginxFront
from devpi_airgap.offline.preflight import check_facts, check_port, devpi_wheels
from devpi_airgap.offline.recall import refuse_recalled
from devpi_airgap.offline.rescan import Rescan
from devpi_airgap.offline.steps import Outcome, Runner, Step


@dataclass
class DeployResult:
    """What a deploy did (or, under --check, would do), for the task layer to show."""

    host: str
    check: bool
    outcomes: list[Outcome]
    user_url: str = ""
    trusted_host: str | None = None  # pip must be told to trust a plain-http index on another host
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    rescan: Rescan | None = None  # an advisory-only bundle's re-check of the live index

    @property
    def changed(self) -> bool:
        return any(outcome.changes for outcome in self.outcomes)


def prepare_host(
    runner: Runner,
    inventory: Inventory,
    server: Server,
    *,
    partial_ok: bool = False,
    before_upgrade: Callable[[], str] = lambda: "",
) -> DevpiVenv:
    """What primaries and replicas share: checks, wheels, service user and venv. Returns the venv step."""
    host = runner.host
    target = inventory.targets[server.target]
    wheels, version = devpi_wheels(inventory, target, partial_ok=partial_ok)
    host.become_root()
    check_facts(host, target, wheels)
    check_port(host, server.port)
    runner.run(CopyWheels(wheels))
    runner.run(ServiceUser())
    venv = DevpiVenv(version, server.port, wheels_at_hand=bool(wheels), before_upgrade=before_upgrade)
    runner.run(venv)
    return venv


def finish(runner: Runner, server: Server, problems: list[str], conflicts: list[tuple[str, str]]) -> DeployResult:
    if problems:
        raise AirgapError("the index cannot serve every target yet:\n" + "\n".join(f"  - {p}" for p in problems))
    if not runner.check:
        runner.record("every target resolves from the index alone")
    host = runner.host
    return DeployResult(
        host.name, runner.check, runner.outcomes, user_url(host, server), trusted_host(host, server), conflicts
    )


def deploy(
    runner: Runner,
    inventory: Inventory,
    server: Server,
    credentials: Credentials | None,
    *,
    progress: ProgressFactory = no_progress,
    from_bundle: bool = False,
    after: list[Step] = (),
) -> DeployResult:
    """Converge one primary (or standalone) devpi server; `after` are steps that only a full success may run.

    Under runner.check nothing on the server changes and no credentials are needed; given, passwords are compared.
    """
    host = runner.host
    host.become_root()
    files = target_files(inventory)
    refuse_recalled(host, [p.name for p in files])
    venv = prepare_host(
        runner,
        inventory,
        server,
        partial_ok=from_bundle,
        before_upgrade=lambda: str(backup(host, server, inventory.path.parent / "backups")),
    )
    runner.run(SecretFile())
    seeding = runner.run(SeedServer(server, credentials, files))
    runner.run(ServiceUnit(unit_for(server, has_replicas=bool(inventory.replicas_of(server))), lambda: venv.fresh))
    serving = not runner.check or service_active(host)
    if not runner.check:
        wait_healthy(host, server.port)
    if server.front:
        largest_wheel = max((f.stat().st_size for f in files), default=0)
        runner.run(NginxFront(server, has_replicas=bool(inventory.replicas_of(server)), max_body_bytes=largest_wheel))
    conflicts: list[tuple[str, str]] = []
    with devpi_api(host, server, serving=serving) as (base_url, client):
        # A seed brings the user, the index and the files; after a real one these steps check that and find
        # nothing to do. Under --check they would only repeat what the seed's line already says.
        if not (runner.check and seeding.changes):
            runner.run(UserAndIndex(client, server, credentials))
            # read through the record: check_targets below would fail on a file wrongly taken as present
            upload = Upload(client, server, credentials, files, progress, index_record(inventory).files)
            runner.run(upload)
            conflicts = upload.result.conflicts
        problems = [] if runner.check else check_targets(base_url, inventory, server)
    result = finish(runner, server, problems, conflicts)
    if not result.conflicts:
        for step in after:
            runner.run(step)
    return result


def index_record(inventory: Inventory) -> IndexRecord:
    """Kept beside the wheels it is compared with, by each machine that deploys them."""
    return IndexRecord(inventory.wheelhouse / ".index-record.json")


def upload_only(
    runner: Runner,
    inventory: Inventory,
    server: Server,
    credentials: Credentials | None,
    *,
    progress: ProgressFactory = no_progress,
) -> DeployResult:
    """Just the upload step, for a server deploy already set up."""
    host = runner.host
    host.become_root()
    files = target_files(inventory)
    refuse_recalled(host, [p.name for p in files])
    wait_healthy(host, server.port)
    with devpi_api(host, server, serving=True) as (_, client):
        upload = Upload(client, server, credentials, files, progress)
        runner.run(upload)
    return DeployResult(host.name, runner.check, runner.outcomes, conflicts=upload.result.conflicts)


def conflicts_error(conflicts: list[tuple[str, str]]) -> AirgapError:
    return AirgapError(
        f"{len(conflicts)} files conflict with different files of the same name on the index "
        "(listed above); the index keeps its copies. Remove the stale files from the wheelhouse."
    )
