"""Online-side tasks: build target-correct wheelhouses to carry into a closed network.

Run `inv --list` for the tasks and `inv --help TASK` for their options. Each
task parses its options, calls one function of devpi_airgap.online or
.transfer and prints its result through devpi_airgap.cli; errors become their
exit codes there.
"""

import time
from pathlib import Path

from invoke import task

from devpi_airgap.cli.online import (
    print_audit,
    print_bundle_check,
    print_bundle_written,
    print_download,
    print_download_check,
    print_refresh,
    print_refresh_check,
    print_report,
    print_verify,
)
from devpi_airgap.cli.outcome import usage_errors_exit_2, user_errors
from devpi_airgap.core.console import bar_progress, printable_anywhere
from devpi_airgap.core.errors import UsageError
from devpi_airgap.core.inventory import load_inventory
from devpi_airgap.core.memory import collect_only_the_run, give_back_large_blocks
from devpi_airgap.core.pools import stoppable_pool
from devpi_airgap.online.audit import audit_inventory, rescan_snapshot
from devpi_airgap.online.download import download as download_targets
from devpi_airgap.online.download import planned_changes
from devpi_airgap.online.refresh import planned_refresh
from devpi_airgap.online.refresh import refresh as run_refresh
from devpi_airgap.online.verify import EarlyDryRuns, check_verified, verify_target, verify_targets
from devpi_airgap.transfer.bundle import planned_bundle, write_advisory_bundle, write_bundle
from devpi_airgap.transfer.recall import write_recall

usage_errors_exit_2()
printable_anywhere()  # output redirected on Windows is in a code page that lacks most characters
give_back_large_blocks()  # pages read and parsed leave the process: a lower peak at scale (core/memory.py)
collect_only_the_run()  # last: what the imports made stays out of every collection

INVENTORY_HELP = "inventory file (default: inventory.yaml in the current directory)"
TARGET_HELP = "a target name from the inventory, several joined by commas, or 'all' (default)"


@task(
    help={
        "target": TARGET_HELP,
        "inventory": INVENTORY_HELP,
        "locked": "download exactly what the targets' lock files list, without resolving again",
        "verify": "prove offline installability at the end (default: on; --no-verify skips it)",
        "check": "show what a download would change (resolving anew what is stale), and change nothing",
    }
)
def download(c, target="all", inventory="inventory.yaml", locked=False, verify=True, check=False):
    """Download each target's complete dependency closure into wheelhouse/TARGET/.

    Resolves for the target's OS, CPU and Python (never this machine's),
    fetches only missing files from the inventory's index_url, checks each
    against the index's sha256, builds sdist-only pure packages into wheels,
    writes locks/TARGET.lock.json, and ends by running `inv verify`.
    """
    with user_errors(changes_nothing=check):
        start = time.monotonic()
        inv = load_inventory(inventory)
        targets = inv.select_targets(target)
        if check:
            print_download_check(planned_changes(inv, targets, locked=locked))
            return
        if not verify:
            print_download(
                download_targets(inv, targets, locked=locked, progress=bar_progress), time.monotonic() - start
            )
            run_audit(inv, targets)
            return
        # Each target is verified as soon as its wheelhouse is complete, beside the other targets' downloads;
        # the audit reads wheels in Python while verify mostly waits on uv and pip (the sample's first: 0.6 s).
        # pip's dry runs for the targets resolved anew start at once, while the network leaves the cores idle.
        with EarlyDryRuns() as early, stoppable_pool(len(targets)) as verifying, stoppable_pool(1) as auditing:
            checks = {}

            def check(ready):
                checks[ready.name] = verifying.submit(verify_target, inv, ready, reuse=True, early=early)

            reports = download_targets(
                inv,
                targets,
                locked=locked,
                progress=bar_progress,
                on_ready=check,
                on_stale=lambda stale: verifying.submit(early.start, stale),
            )
            print_download(reports, time.monotonic() - start)
            audited = auditing.submit(audit_inventory, inv, targets)
            verified = [checks[t.name].result() for t in targets]
            print_verify(verified)
            check_verified(verified)
            show_audit(audited.result())


def run_audit(inv, targets):
    return show_audit(audit_inventory(inv, targets))


def show_audit(audited):
    print_audit(audited)
    audited.check()
    return audited


@task(help={"target": TARGET_HELP, "inventory": INVENTORY_HELP})
def audit(c, target="all", inventory="inventory.yaml"):
    """Check the current locks against the inventory's policy: licenses and known advisories.

    Reads each locked wheel's license from its own METADATA; with
    policy.advisories, asks OSV (or reads the export zip) once for every
    locked version. Exits 9 naming each file the policy refuses; lists the
    licenses that need a person's review.
    """
    with user_errors():
        inv = load_inventory(inventory)
        run_audit(inv, inv.select_targets(target))


@task(help={"target": TARGET_HELP, "inventory": INVENTORY_HELP})
def verify(c, target="all", inventory="inventory.yaml"):
    """Prove each target's wheelhouse installs its requirements with no network.

    Resolves offline against wheelhouse/TARGET/ alone for the target's markers;
    where this machine can run the target, also pip-installs into a throwaway
    venv with --no-index. Checks that the clients' pip (the target's oldest_pip)
    sees every wheel. Exits 4 listing what is missing or incompatible.
    """
    with user_errors():
        inv = load_inventory(inventory)
        verified = verify_targets(inv, inv.select_targets(target))
        print_verify(verified)
        check_verified(verified)


@task(
    help={
        "inventory": INVENTORY_HELP,
        "full": "carry every file, not only those no earlier bundle carried",
        "advisories": "carry only a fresh advisory snapshot, for the offline side to re-check its live index",
        "check": "show which files and package changes the next bundle would carry; write nothing",
    }
)
def bundle(c, inventory="inventory.yaml", full=False, advisories=False, check=False):
    """Write one bundle file to carry across the gap: wheels, locks, evidence, manifest, checksum, signature.

    A delta by default: only files no earlier bundle shipped. Audits first and
    writes nothing if the policy refuses a file (exit 9). The evidence pack
    (evidence.json/.html, an SBOM per target, the advisory snapshot) goes inside,
    under the signature. Prints the bundle's path last, or says there is nothing new.
    """
    with user_errors(changes_nothing=check):
        inv = load_inventory(inventory)
        if check and advisories:
            raise UsageError("--check shows the next bundle of wheels; an advisory bundle (--advisories) has none")
        if check:
            print_bundle_check(planned_bundle(inv, full=full))
            return
        if advisories:
            print(write_advisory_bundle(inv, rescan_snapshot(inv)))
            return
        path = write_bundle(inv, run_audit(inv, list(inv.targets.values())), full=full)
        print_bundle_written(path, "nothing new: every file was in an earlier bundle (use --full for all)")


@task(
    help={
        "spec": "NAME==VERSION: the version to take back out of the offline index",
        "reason": "why (required): the server records it and `fab status` shows it",
        "file": "recall only this file of the version, e.g. one platform's wheel",
        "lift": "lift an earlier recall of NAME==VERSION instead, so its files may be uploaded again",
        "inventory": INVENTORY_HELP,
    }
)
def recall(c, spec, reason="", file=None, lift=False, inventory="inventory.yaml"):
    """Write a signed recall bundle: `fab deploy --bundle` on it removes those files from the index.

    A later bundle that carries a recalled file is refused until a lift
    bundle (`--lift`) for the same NAME==VERSION has been deployed. Prints the
    recall bundle's path.
    """
    with user_errors():
        print(write_recall(load_inventory(inventory), spec, reason, filename=file, lift=lift))


@task(
    help={
        "inventory": INVENTORY_HELP,
        "check": "show what the refresh would download and how much its bundle would carry; change nothing",
    }
)
def refresh(c, inventory="inventory.yaml", check=False):
    """The unattended run: re-resolve every target, fetch what is new, verify, write a delta bundle.

    Exit codes: 0 nothing new, or a bundle was written (its path printed
    last); 3 resolution failed; 4 verification failed; 5 download or I/O
    failure; 8 another refresh is running. A JSON report and a log are kept
    in the wheelhouse (refresh-report.json, refresh.log).
    """
    with user_errors(changes_nothing=check):
        inv = load_inventory(inventory)
        if check:
            print_refresh_check(planned_refresh(inv))
            return
        report, path = run_refresh(inv)
        print_refresh(report)
        print_bundle_written(path, "nothing new")


@task(
    help={
        "inventory": INVENTORY_HELP,
        "html": "where to write the self-contained, sortable HTML matrix (default: report.html in the "
        "inventory's wheelhouse; '' for none)",
    }
)
def report(c, inventory="inventory.yaml", html=None):
    """Show the wheelhouse matrix: each package's versions per target, totals and sizes.

    Reads every target's lock and checks it against the files in
    wheelhouse/TARGET/. Prints a table and writes an HTML file that opens
    offline. Exits 4 when a locked file is missing from its target directory.
    """
    from devpi_airgap.online.report import build_matrix, check_complete, write_html

    with user_errors():
        inv = load_inventory(inventory)
        matrix = build_matrix(inv)
        # beside the wheelhouse it describes: a default relative to the working directory wrote it (and made a
        # stray wheelhouse/ directory) wherever inv happened to run
        page = inv.wheelhouse / "report.html" if html is None else Path(html) if html else None
        print_report(matrix, write_html(matrix, page) if page else None)
        check_complete(matrix)


@task(
    help={
        "on_calendar": "systemd OnCalendar= expression (default: daily)",
        "deploy_host": "after a good refresh, fab deploy each new bundle to this -H host",
        "remove": "stop, disable and delete the timer and service",
        "inventory": INVENTORY_HELP,
        "check": "say what the schedule (or --remove) would change, and change nothing",
    }
)
def schedule(c, on_calendar="daily", deploy_host=None, remove=False, inventory="inventory.yaml", check=False):
    """Run `inv refresh` unattended from a systemd user timer; prints a crontab line where systemd cannot.

    Writes ~/.config/systemd/user/devpi-airgap-refresh.{service,timer}. A
    re-run with the same options says "no changes"; --check says what a run
    would change, and changes nothing. See devpi_airgap/online/schedule.py.
    """
    from pathlib import Path

    from devpi_airgap.online import schedule as timer

    with user_errors(changes_nothing=check):
        if remove:
            outcome = timer.remove(check=check)
        else:
            inv = load_inventory(inventory)
            if deploy_host:
                inv.server(deploy_host)  # fail now, not at the first unattended deploy
            outcome = timer.install(
                Path(__file__).resolve().parent, Path(inventory).resolve(), on_calendar, deploy_host, check=check
            )
        print("\n".join(outcome.lines))
