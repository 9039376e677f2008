"""`inv schedule`: run `inv refresh` unattended from a systemd user timer (or print a crontab line).

Two units go to ~/.config/systemd/user/ (or $XDG_CONFIG_HOME/systemd/user/):

- devpi-airgap-refresh.timer fires on the OnCalendar= expression (default
  `daily`); Persistent=true catches up a run missed while the machine was off.
- devpi-airgap-refresh.service is Type=oneshot. Its first ExecStart= is

      <repo>/.venv/bin/inv -r <repo> refresh --inventory <inventory>

Deploy after refresh (`--deploy-host HOST`): a oneshot service may list several
ExecStart= lines; systemd runs them in order and stops at the first that
fails. So a failed refresh never deploys, and no shell is needed. The second
line runs this module's small wrapper:

      <repo>/.venv/bin/python -m devpi_airgap.online.schedule deploy-pending \\
          --repo <repo> --inventory <inventory> --host HOST

The wrapper runs `<repo>/.venv/bin/fab -r <repo> -H HOST deploy --inventory
<inventory> --bundle B` for each bundle B in the inventory's bundles directory
that it has not yet deployed to HOST, oldest first. It records each success in
<bundles dir>/.deployed.json. Bundles are deltas, so deploying only the newest
would lose the files of an earlier bundle whose deploy failed (host down, say).
Keeping its own record means the next run retries what failed. Uploads skip
what the index already holds, so deploying a bundle twice is harmless. That
matters on the first run, when every bundle in the directory is still
pending. If nothing is pending, the server is never contacted. fab's stdin is
/dev/null, so it cannot prompt. Passwords come from the 0600 secrets file
(README, "Secrets"). SSH must work without a human too: use a key with no
passphrase or an agent socket visible to the user manager.

A user timer runs only while its user manager runs. For a machine nobody logs
into, `loginctl enable-linger USER` starts that manager at boot. `install()`
says so when lingering is off.

Where `systemctl --user` cannot reach a user manager (a container or CI
runner), nothing is written. `install()` prints the equivalent crontab line
instead and still succeeds, so the caller can paste the line into `crontab -e`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from devpi_airgap.core.errors import AirgapError, UsageError
from devpi_airgap.core.files import atomic_write
from devpi_airgap.core.systemd import exec_line
from devpi_airgap.online import desktop_schedule
from devpi_airgap.online.calendar import cron_schedule

NAME = "devpi-airgap-refresh"
SERVICE = f"{NAME}.service"
TIMER = f"{NAME}.timer"
DEPLOYED = ".deployed.json"

Systemctl = Callable[[list[str]], subprocess.CompletedProcess]


class ScheduleError(UsageError):
    pass


# --------------------------------------------------------------------------
# what runs
# --------------------------------------------------------------------------


def _absolute(path: str | os.PathLike, what: str) -> Path:
    # A timer runs with a working directory and an environment not chosen
    # here, so relative paths would point somewhere else at 3 a.m.
    p = Path(path)
    if not p.is_absolute():
        raise ScheduleError(f"{what} must be an absolute path, not {str(path)!r}")
    if "\n" in str(p):
        raise ScheduleError(f"{what} must not contain a newline: {str(path)!r}")
    return p


def refresh_argv(repo: Path, inventory: Path) -> list[str]:
    return [str(repo / ".venv/bin/inv"), "-r", str(repo), "refresh", "--inventory", str(inventory)]


def deploy_argv(repo: Path, inventory: Path, host: str) -> list[str]:
    return [
        str(repo / ".venv/bin/python"),
        "-m",
        "devpi_airgap.online.schedule",
        "deploy-pending",
        "--repo",
        str(repo),
        "--inventory",
        str(inventory),
        "--host",
        host,
    ]


def _check_host(host: str) -> str:
    # The name goes to `fab -H`. It is an argv element, never shell text,
    # but a leading '-' would be read as an option.
    if not re.fullmatch(r"[A-Za-z0-9_.@:\[\]][A-Za-z0-9_.@:\[\]-]*", host):
        raise ScheduleError(f"--deploy-host {host!r} is not a host name (as given to fab -H)")
    return host


# --------------------------------------------------------------------------
# systemd units
# --------------------------------------------------------------------------


def render_units(repo, inventory, on_calendar: str = "daily", deploy_host: str | None = None) -> dict[str, str]:
    """The two unit files' text by file name. Deterministic, so an unchanged schedule compares equal."""
    repo = _absolute(repo, "repo")
    inventory = _absolute(inventory, "inventory")
    on_calendar = " ".join(on_calendar.split())
    if not on_calendar:
        raise ScheduleError("--on-calendar must not be empty")
    exec_lines = [f"ExecStart={exec_line(refresh_argv(repo, inventory))}"]
    if deploy_host:
        exec_lines.append(f"ExecStart={exec_line(deploy_argv(repo, inventory, _check_host(deploy_host)))}")
    header = (
        "# Written by `inv schedule`. Re-run it to change this file, or run\n# `inv schedule --remove` to delete it.\n"
    )
    service = header + "\n".join(
        [
            "[Unit]",
            "Description=devpi-airgap: refresh wheelhouses and write a delta bundle"
            + (f", then deploy it to {deploy_host}" if deploy_host else ""),
            "",
            "[Service]",
            # oneshot: the unit stays "activating" until every ExecStart= has
            # exited. The timer will not start a second run over a running one,
            # and a failed line stops the ones after it.
            "Type=oneshot",
            # WorkingDirectory takes the rest of the line as the path, so only
            # specifiers need escaping.
            f"WorkingDirectory={str(repo).replace('%', '%%')}",
            # Never fetch a Python interpreter behind the operator's back. The
            # venv's own interpreter is all this run needs.
            "Environment=UV_PYTHON_DOWNLOADS=never",
            # Lines reach the journal as they are printed, not at exit.
            "Environment=PYTHONUNBUFFERED=1",
            *exec_lines,
            # A stalled download must not hold the unit (and with it every later
            # timer run) forever.
            "TimeoutStartSec=12h",
            # Background work: yield the CPU and disk to interactive use.
            "Nice=10",
            "IOSchedulingClass=idle",
            "",
        ]
    )
    timer = header + "\n".join(
        [
            "[Unit]",
            f"Description=devpi-airgap: unattended refresh ({on_calendar})",
            "",
            "[Timer]",
            f"OnCalendar={on_calendar}",
            # Run a missed slot at the next boot or login, instead of waiting a full period.
            "Persistent=true",
            # Many machines set to `daily` should not all hit the index at 00:00:00.
            "RandomizedDelaySec=10min",
            f"Unit={SERVICE}",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )
    return {SERVICE: service, TIMER: timer}


def unit_dir(env: Mapping[str, str] | None = None) -> Path:
    values: Mapping[str, str] = os.environ if env is None else env
    base = values.get("XDG_CONFIG_HOME") or str(Path(values.get("HOME") or Path.home()) / ".config")
    return Path(base) / "systemd" / "user"


def _user_systemctl(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemctl", "--user", *args],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def systemd_user_available(systemctl: Systemctl | None = None) -> bool:
    """True when `systemctl --user` reaches a running user manager.

    A bare `systemctl` binary is not enough. Containers and CI runners have
    one but no user manager (and no session bus), and every call fails with
    "Failed to connect to bus".
    """
    try:
        return (systemctl or _user_systemctl)(["show-environment"]).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


# --------------------------------------------------------------------------
# cron fallback
# --------------------------------------------------------------------------

CRON_PLACEHOLDER = "MIN HOUR DOM MON DOW"


def crontab_line(repo, inventory, on_calendar: str = "daily", deploy_host: str | None = None) -> str:
    """One crontab line doing what the service does: same directory, environment and commands.

    When the schedule has no cron equivalent, the line starts with
    CRON_PLACEHOLDER for the operator to fill in.
    """
    repo = _absolute(repo, "repo")
    inventory = _absolute(inventory, "inventory")
    command = f"cd {shlex.quote(str(repo))} && UV_PYTHON_DOWNLOADS=never " + shlex.join(refresh_argv(repo, inventory))
    if deploy_host:
        # `&&`: like the service's second ExecStart=, deploy only after a good refresh.
        command += " && " + shlex.join(deploy_argv(repo, inventory, _check_host(deploy_host)))
    # cron turns an unescaped % into a newline (the rest becomes stdin).
    command = command.replace("%", "\\%")
    return f"{cron_schedule(on_calendar) or CRON_PLACEHOLDER} {command}"


# --------------------------------------------------------------------------
# install / remove
# --------------------------------------------------------------------------


@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)
    changed: bool = False
    cron: str | None = None


def _linger_hint() -> str | None:
    user = os.environ.get("USER") or os.environ.get("LOGNAME")
    if not user or Path("/var/lib/systemd/linger", user).exists():
        return None
    return (
        f"note: the timer runs only while {user}'s user manager runs; "
        f"`loginctl enable-linger {user}` keeps it running without a login"
    )


def _cron_outcome(repo, inventory, on_calendar, deploy_host) -> Outcome:
    line = crontab_line(repo, inventory, on_calendar, deploy_host)
    result = Outcome(
        cron=line,
        lines=[
            "systemctl --user is not usable here (no systemd user manager); no units written.",
            "To run the refresh from cron instead, add this line with `crontab -e`:",
            "",
            f"# {NAME}",
            line,
        ],
    )
    if line.startswith(CRON_PLACEHOLDER):
        result.lines.insert(
            1,
            f"OnCalendar={on_calendar} has no cron equivalent; replace {CRON_PLACEHOLDER} with a schedule of your own.",
        )
    return result


def _must(systemctl: Systemctl, args: list[str]) -> None:
    r = systemctl(args)
    if r.returncode != 0:
        raise ScheduleError(
            f"systemctl --user {' '.join(args)} failed ({r.returncode}): {(r.stderr or r.stdout or '').strip()}"
        )


def _check_calendar(on_calendar: str) -> None:
    # A bad expression would otherwise surface only as a timer that refuses
    # to load, after the files are written.
    if shutil.which("systemd-analyze") is None:
        return
    r = subprocess.run(
        ["systemd-analyze", "calendar", on_calendar],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    if r.returncode != 0:
        raise ScheduleError(
            f"--on-calendar {on_calendar!r} is not a systemd calendar expression "
            f"({r.stderr.strip()}); try daily, hourly, weekly or 'Mon..Fri 02:30'"
        )


def install(
    repo,
    inventory,
    on_calendar: str = "daily",
    deploy_host: str | None = None,
    *,
    systemd: bool | None = None,
    directory: Path | None = None,
    systemctl: Systemctl | None = None,
    check: bool = False,
) -> Outcome:
    """Write (or update) the units and arm the timer; print a crontab line where systemd cannot.

    On Windows and macOS a Task Scheduler task or a launchd agent instead (desktop_schedule).
    With check, say what it would do and do nothing (`changed` then means: would change).

    systemd: None detects with systemd_user_available(); True or False forces
    the choice (tests). directory and systemctl default to the user's unit
    directory and `systemctl --user`.
    """
    if sys.platform in ("win32", "darwin"):
        lines, changed = desktop_schedule.install(Path(repo), Path(inventory), on_calendar, deploy_host, check=check)
        return Outcome(lines=lines, changed=changed)
    systemctl = systemctl or _user_systemctl
    units = render_units(repo, inventory, on_calendar, deploy_host)
    if systemd is None:
        systemd = systemd_user_available(systemctl)
    if not systemd:
        return _cron_outcome(repo, inventory, on_calendar, deploy_host)
    _check_calendar(on_calendar)
    directory = directory or unit_dir()
    changed = [
        name
        for name, text in units.items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]
    written = ", ".join(str(directory / n) for n in changed)
    result = Outcome()
    if changed:
        result.changed = True
        if check:
            return Outcome([f"would write {written}, then enable and (re)start {TIMER}"], changed=True)
        for name in changed:
            atomic_write(directory / name, units[name])
        _must(systemctl, ["daemon-reload"])
        _must(systemctl, ["enable", TIMER])
        # restart, not start: an already active timer keeps its old next
        # elapse until restarted.
        _must(systemctl, ["restart", TIMER])
        result.lines.append(f"wrote {written}; timer enabled")
    else:
        # Same files. Still re-arm a timer someone disabled or stopped by
        # hand, without touching the files.
        enabled = systemctl(["is-enabled", TIMER]).returncode == 0
        active = systemctl(["is-active", TIMER]).returncode == 0
        state = "stopped" if enabled else "disabled"
        if enabled and active:
            result.lines.append(f"no changes: {TIMER} is up to date and enabled")
        elif check:
            return Outcome([f"units unchanged; would enable and start {TIMER}, which is {state}"], changed=True)
        else:
            _must(systemctl, ["enable", "--now", TIMER])
            result.changed = True
            result.lines.append(f"units unchanged; {TIMER} was {state}, enabled and started it again")
    if check:
        return result
    r = systemctl(["list-timers", "--no-pager", TIMER])
    if r.returncode == 0 and r.stdout.strip():
        result.lines.append(r.stdout.rstrip())
    hint = _linger_hint()
    if hint:
        result.lines.append(hint)
    return result


def remove(
    *,
    systemd: bool | None = None,
    directory: Path | None = None,
    systemctl: Systemctl | None = None,
    check: bool = False,
) -> Outcome:
    """Stop and disable the timer, stop a running refresh, delete both units, reload; with check, only say so."""
    if sys.platform in ("win32", "darwin"):
        lines, changed = desktop_schedule.remove(check=check)
        return Outcome(lines=lines, changed=changed)
    systemctl = systemctl or _user_systemctl
    if systemd is None:
        systemd = systemd_user_available(systemctl)
    directory = directory or unit_dir()
    present = [directory / name for name in (SERVICE, TIMER) if (directory / name).exists()]
    if check:
        if not present:
            return Outcome([f"no changes: no {NAME} units in {directory}"])
        return Outcome([f"would stop and disable {TIMER} and remove {', '.join(map(str, present))}"], changed=True)
    result = Outcome()
    if systemd and present:
        # Not checked: the timer may already be stopped or disabled, which is fine.
        systemctl(["disable", "--now", TIMER])
        systemctl(["stop", SERVICE])
    for path in present:
        path.unlink()
    if systemd and present:
        _must(systemctl, ["daemon-reload"])
        systemctl(["reset-failed", SERVICE, TIMER])
    if present:
        result.changed = True
        result.lines.append(f"removed {', '.join(map(str, present))}")
    else:
        result.lines.append(f"no changes: no {NAME} units in {directory}")
    if not systemd:
        result.lines.append(
            f"systemctl --user is not usable here; if you added the `# {NAME}` "
            "line to your crontab, delete it with `crontab -e`."
        )
    return result


# --------------------------------------------------------------------------
# the wrapper the service's second ExecStart= runs
# --------------------------------------------------------------------------


def pending_bundles(bundles: Path, host: str) -> list[Path]:
    """Bundles in the directory not yet deployed to host, oldest first.

    Bundle names start with their UTC creation time, so name order is age order.
    """
    done = set(_load_deployed(bundles).get(host, []))
    return [p for p in sorted(bundles.glob("devpi-airgap-*.tar")) if p.name not in done]


def _load_deployed(bundles: Path) -> dict[str, list[str]]:
    try:
        return json.loads((bundles / DEPLOYED).read_text())
    except FileNotFoundError:
        return {}


def record_deployed(bundles: Path, host: str, bundle: Path) -> None:
    data = _load_deployed(bundles)
    data.setdefault(host, [])
    if bundle.name not in data[host]:
        data[host].append(bundle.name)
    atomic_write(bundles / DEPLOYED, json.dumps(data, indent=1, sort_keys=True))


def deploy_pending(
    repo: Path,
    inventory: Path,
    host: str,
    *,
    run: Callable[[list[str]], int] | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> int:
    """Deploy every pending bundle to host with fab, oldest first; stop at the first failure.

    Returns fab's exit code; `say` is told each step, for the service's journal.
    """
    from devpi_airgap.core.inventory import load_inventory

    bundles = load_inventory(inventory).bundles.directory
    run = run or (lambda argv: subprocess.run(argv, stdin=subprocess.DEVNULL).returncode)
    pending = pending_bundles(bundles, host) if bundles.is_dir() else []
    if not pending:
        say(f"nothing to deploy: every bundle in {bundles} was deployed to {host} already")
        return 0
    fab = str(repo / ".venv/bin/fab")
    for bundle in pending:
        say(f"deploying {bundle.name} to {host}")
        code = run([fab, "-r", str(repo), "-H", host, "deploy", "--inventory", str(inventory), "--bundle", str(bundle)])
        if code != 0:
            say(f"error: deploying {bundle.name} to {host} failed (exit {code}); the next run retries it")
            return code
        record_deployed(bundles, host, bundle)
    say(f"deployed {len(pending)} bundle(s) to {host}")
    return 0


def run_scheduled(
    repo: Path, inventory: Path, host: str | None, *, say: Callable[[str], None] = lambda line: None
) -> int:
    """What a Task Scheduler task or launchd agent runs: refresh, then deploy pending bundles only if it succeeded."""
    python = desktop_schedule.venv_python(repo)
    code = subprocess.run(
        [python, "-m", "invoke", "-r", str(repo), "refresh", "--inventory", str(inventory)], stdin=subprocess.DEVNULL
    ).returncode
    if code != 0 or not host:
        return code
    return deploy_pending(repo, inventory, host, say=say)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devpi_airgap.online.schedule")
    sub = parser.add_subparsers(dest="command", required=True)
    deploy = sub.add_parser("deploy-pending", help="fab deploy --bundle for each bundle not yet deployed to HOST")
    deploy.add_argument("--repo", required=True, type=Path)
    deploy.add_argument("--inventory", required=True, type=Path)
    deploy.add_argument("--host", required=True)
    run = sub.add_parser("run", help="inv refresh, then (with --host) deploy-pending only when the refresh succeeded")
    run.add_argument("--repo", required=True, type=Path)
    run.add_argument("--inventory", required=True, type=Path)
    run.add_argument("--host")
    args = parser.parse_args(argv)
    say = lambda line: print(line, flush=True)
    try:
        if args.command == "run":
            return run_scheduled(args.repo, args.inventory, args.host, say=say)
        return deploy_pending(args.repo, args.inventory, args.host, say=say)
    except AirgapError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
