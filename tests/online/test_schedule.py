"""`inv schedule`: the rendered units are valid, installing is idempotent, and the cron fallback is right.

The last test runs the rendered service for real under systemd in the
offline test host.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from devpi_airgap.online import desktop_schedule, schedule
from devpi_airgap.online.schedule import SERVICE, TIMER, cron_schedule, crontab_line, install, remove, render_units
from devpi_airgap.online.task_scheduler import TASK_NAME, render_task
from testing.offline_host import OfflineHost, require_offline_host_support
from testing.tasks import REPO, require_or_fail, run_task

INVENTORY = """
targets:
  win313: {platform: win_amd64, python: "3.13", requirements: [base.txt]}
servers:
  devpi-host: {target: win313}
"""


@pytest.fixture
def inventory(tmp_path) -> Path:
    (tmp_path / "base.txt").write_text("packaging\n")
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY)
    return path


class FakeSystemctl:
    """Stands in for `systemctl --user`: records every call, answers from a table."""

    def __init__(self, codes: dict[str, int] | None = None):
        self.calls: list[list[str]] = []
        self.codes = codes or {}

    def __call__(self, args):
        self.calls.append(list(args))
        return subprocess.CompletedProcess(["systemctl", "--user", *args], self.codes.get(args[0], 0), "", "")

    def verbs(self) -> list[str]:
        return [" ".join(c) for c in self.calls if c[0] not in ("list-timers",)]


# --------------------------------------------------------------------------
# systemd-analyze verify
# --------------------------------------------------------------------------


def _verify(tmp_path: Path, units: dict[str, str]) -> subprocess.CompletedProcess:
    if shutil.which("systemd-analyze") is None:
        require_or_fail(False, "systemd-analyze is missing (apt-get install systemd)")
    unit_dir = tmp_path / "units"
    unit_dir.mkdir(exist_ok=True)
    for name, text in units.items():
        (unit_dir / name).write_text(text)
    # `--user verify` sets up a user manager's paths. With no session (root in
    # a container, CI) it needs only a private runtime directory. It then
    # checks the units as the user manager would load them: timers.target,
    # and no system-only dependencies.
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    return subprocess.run(
        ["systemd-analyze", "--user", "--man=no", "verify", *(str(unit_dir / n) for n in units)],
        capture_output=True,
        text=True,
        env=env,
        cwd=unit_dir,
    )


def _exec_starts(service: str) -> list[str]:
    return [line.split("=", 1)[1] for line in service.splitlines() if line.startswith("ExecStart=")]


@pytest.mark.parametrize("deploy_host", [None, "devpi-host"])
def test_rendered_units_pass_systemd_analyze_verify(tmp_path, deploy_host):
    units = render_units(REPO, REPO / "inventory.yaml", "daily", deploy_host)
    r = _verify(tmp_path, units)
    # Any warning at all (unknown key, bad calendar, missing binary) fails.
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), r.stdout + r.stderr
    service = units[SERVICE]
    for line in ("Type=oneshot", f"WorkingDirectory={REPO}", "Environment=UV_PYTHON_DOWNLOADS=never"):
        assert f"\n{line}\n" in service
    starts = _exec_starts(service)
    assert starts[0] == f"{REPO}/.venv/bin/inv -r {REPO} refresh --inventory {REPO}/inventory.yaml"
    assert len(starts) == (2 if deploy_host else 1)
    # systemd 252's verify looks only at the first ExecStart='s binary; check all of them here.
    for line in starts:
        binary = shlex.split(line)[0]
        assert os.access(binary, os.X_OK), f"{binary} is not executable"
    assert "\nOnCalendar=daily\n" in units[TIMER] and "\nWantedBy=timers.target\n" in units[TIMER]


def test_verify_parses_quoted_paths_with_spaces_and_percent(tmp_path):
    repo = tmp_path / "air gap 100%"
    (repo / ".venv/bin").mkdir(parents=True)
    for tool in ("inv", "python"):
        (repo / ".venv/bin" / tool).symlink_to(REPO / ".venv/bin" / tool)
    units = render_units(repo, repo / "inventory.yaml", "Mon..Fri *-*-* 02:30", "devpi-host")
    assert f'ExecStart="{str(repo).replace("%", "%%")}/.venv/bin/inv"' in units[SERVICE]
    r = _verify(tmp_path, units)
    assert r.returncode == 0 and not r.stderr.strip(), r.stdout + r.stderr


def test_verify_catches_a_missing_binary(tmp_path):
    """Proves the checks above are not vacuous."""
    r = _verify(tmp_path, render_units(tmp_path / "no-repo", tmp_path / "inventory.yaml"))
    assert r.returncode != 0 and "not executable" in r.stderr


def test_render_refuses_relative_paths_and_option_like_hosts():
    with pytest.raises(schedule.ScheduleError):
        render_units("repo", "/inv.yaml")
    with pytest.raises(schedule.ScheduleError):
        render_units("/repo", "/inv.yaml", "daily", "-oProxyCommand=x")


# --------------------------------------------------------------------------
# install / remove
# --------------------------------------------------------------------------


def _mtimes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}


def test_install_is_idempotent_and_rewrites_only_on_change(tmp_path, inventory):
    units = tmp_path / "systemd/user"
    ctl = FakeSystemctl()
    first = install(REPO, inventory, "daily", None, systemd=True, directory=units, systemctl=ctl)
    assert first.changed and sorted(p.name for p in units.iterdir()) == [SERVICE, TIMER]
    assert ctl.verbs() == ["daemon-reload", f"enable {TIMER}", f"restart {TIMER}"]
    assert (units / SERVICE).read_text() == render_units(REPO, inventory)[SERVICE]
    before = _mtimes(units)

    ctl.calls.clear()
    second = install(REPO, inventory, "daily", None, systemd=True, directory=units, systemctl=ctl)
    assert not second.changed and second.lines[0].startswith("no changes")
    assert _mtimes(units) == before
    assert ctl.verbs() == [f"is-enabled {TIMER}", f"is-active {TIMER}"]

    ctl.calls.clear()
    third = install(REPO, inventory, "hourly", None, systemd=True, directory=units, systemctl=ctl)
    assert third.changed and "\nOnCalendar=hourly\n" in (units / TIMER).read_text()
    assert _mtimes(units)[SERVICE] == before[SERVICE], "the unchanged service was rewritten"
    assert "daemon-reload" in ctl.verbs()


def test_check_says_what_install_and_remove_would_change_and_changes_nothing(tmp_path, inventory):
    units = tmp_path / "units"
    ctl = FakeSystemctl()
    first = install(REPO, inventory, systemd=True, directory=units, systemctl=ctl, check=True)
    assert first.changed and first.lines[0].startswith(f"would write {units / SERVICE}, {units / TIMER}")
    assert not units.exists() and ctl.verbs() == []
    install(REPO, inventory, systemd=True, directory=units, systemctl=ctl)
    before = _mtimes(units)
    ctl.calls.clear()
    same = install(REPO, inventory, systemd=True, directory=units, systemctl=ctl, check=True)
    assert not same.changed and same.lines == [f"no changes: {TIMER} is up to date and enabled"]
    hourly = install(REPO, inventory, "hourly", systemd=True, directory=units, systemctl=ctl, check=True)
    assert hourly.changed and hourly.lines == [f"would write {units / TIMER}, then enable and (re)start {TIMER}"]
    disabled = install(REPO, inventory, systemd=True, directory=units, systemctl=FakeSystemctl({"is-enabled": 1}),
                       check=True)  # fmt: skip
    assert disabled.changed and f"would enable and start {TIMER}, which is disabled" in disabled.lines[0]
    gone = remove(systemd=True, directory=units, systemctl=ctl, check=True)
    assert gone.changed and gone.lines[0].startswith(f"would stop and disable {TIMER} and remove")
    assert _mtimes(units) == before and all(verb.startswith("is-") for verb in ctl.verbs())
    remove(systemd=True, directory=units, systemctl=ctl)
    assert remove(systemd=True, directory=units, systemctl=ctl, check=True).lines[0].startswith("no changes")


def test_install_rearms_a_disabled_timer_without_rewriting(tmp_path, inventory):
    units = tmp_path / "units"
    install(REPO, inventory, systemd=True, directory=units, systemctl=FakeSystemctl())
    before = _mtimes(units)
    ctl = FakeSystemctl({"is-enabled": 1})
    outcome = install(REPO, inventory, systemd=True, directory=units, systemctl=ctl)
    assert outcome.changed and f"enable --now {TIMER}" in ctl.verbs()
    assert "daemon-reload" not in ctl.verbs() and _mtimes(units) == before


def test_install_rejects_a_bad_calendar_before_writing(tmp_path, inventory):
    if shutil.which("systemd-analyze") is None:
        require_or_fail(False, "systemd-analyze is missing")
    with pytest.raises(schedule.ScheduleError, match="not a systemd calendar"):
        install(REPO, inventory, "every tuesday", systemd=True, directory=tmp_path / "u", systemctl=FakeSystemctl())
    assert not (tmp_path / "u").exists()


def test_remove_disables_and_deletes(tmp_path, inventory):
    units = tmp_path / "units"
    install(REPO, inventory, systemd=True, directory=units, systemctl=FakeSystemctl())
    ctl = FakeSystemctl()
    outcome = remove(systemd=True, directory=units, systemctl=ctl)
    assert outcome.changed and list(units.iterdir()) == []
    assert ctl.verbs()[:3] == [f"disable --now {TIMER}", f"stop {SERVICE}", "daemon-reload"]
    again = remove(systemd=True, directory=units, systemctl=ctl)
    assert not again.changed and again.lines[0].startswith("no changes")


def test_systemd_user_available_is_explicit():
    assert schedule.systemd_user_available(FakeSystemctl())
    assert not schedule.systemd_user_available(FakeSystemctl({"show-environment": 1}))

    def missing(args):
        raise FileNotFoundError("systemctl")

    assert not schedule.systemd_user_available(missing)


# --------------------------------------------------------------------------
# cron fallback
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, cron",
    [
        ("daily", "@daily"),
        ("hourly", "@hourly"),
        ("weekly", "@weekly"),
        ("monthly", "@monthly"),
        ("*-*-* 02:30:00", "30 2 * * *"),
        ("Mon..Fri 02:30", "30 2 * * 1-5"),
        ("Sat,Sun 4:05", "5 4 * * 6,0"),
        ("*-*-01 03:00", "0 3 1 * *"),
        ("*:0/15", "0-59/15 * * * *"),
        ("Fri..Sun 01:00", "0 1 * * 5-7"),
        ("*-*-* 02:30:15", None),
        ("2030-01-01", None),
        ("*-*~01", None),
        ("nonsense words", None),
    ],
)
def test_cron_schedule(spec, cron):
    assert cron_schedule(spec) == cron


def test_install_without_systemd_prints_crontab_line_and_writes_nothing(tmp_path, inventory):
    units = tmp_path / "units"
    outcome = install(REPO, inventory, "daily", "devpi-host", systemd=False, directory=units, systemctl=FakeSystemctl())
    assert not units.exists() and not outcome.changed
    assert outcome.cron == (
        f"@daily cd {REPO} && UV_PYTHON_DOWNLOADS=never {REPO}/.venv/bin/inv -r {REPO} refresh "
        f"--inventory {inventory} && {REPO}/.venv/bin/python -m devpi_airgap.online.schedule deploy-pending "
        f"--repo {REPO} --inventory {inventory} --host devpi-host"
    )
    assert outcome.cron in outcome.lines and "crontab -e" in "\n".join(outcome.lines)


def test_crontab_line_placeholder_and_percent():
    line = crontab_line("/srv/a 100%", "/srv/a 100%/inv.yaml", "*-*-* 02:30:15")
    assert line.startswith(schedule.CRON_PLACEHOLDER + " cd '/srv/a 100\\%' && ")
    outcome = install("/srv/x", "/srv/x/inv.yaml", "*-*-* 02:30:15", systemd=False)
    assert "no cron equivalent" in "\n".join(outcome.lines)


def test_inv_schedule_without_user_manager_exits_0_with_crontab_line(tmp_path, inventory):
    # A private, empty runtime dir and a bus address that goes nowhere make
    # `systemctl --user` unusable, as in a container, even where a real
    # session exists. So this never touches the developer's own timers.
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "DBUS_SESSION_BUS_ADDRESS": f"unix:path={runtime}/nobus",
    }
    r = run_task("schedule", "--inventory", str(inventory), "--on-calendar", "hourly", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "systemctl --user is not usable" in r.stdout
    assert f"@hourly cd {REPO} && UV_PYTHON_DOWNLOADS=never {REPO}/.venv/bin/inv -r {REPO} refresh" in r.stdout
    assert not (tmp_path / "config").exists()
    r = run_task("schedule", "--inventory", str(inventory), "--deploy-host", "elsewhere", env=env)
    assert r.returncode == 2 and "no entry 'elsewhere'" in r.stderr
    r = run_task("schedule", "--remove", env=env)
    assert r.returncode == 0 and "no changes" in r.stdout


# --------------------------------------------------------------------------
# the deploy wrapper
# --------------------------------------------------------------------------


def test_deploy_pending_deploys_each_new_bundle_once_and_retries_failures(tmp_path, inventory):
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    names = ["devpi-airgap-20250101T000000Z-aaaa.tar", "devpi-airgap-20250102T000000Z-bbbb.tar"]
    for name in names:
        (bundles / name).write_bytes(b"")
    ran: list[list[str]] = []
    codes = iter([0, 6])

    def fab(argv):
        ran.append(argv)
        return next(codes)

    assert schedule.deploy_pending(REPO, inventory, "devpi-host", run=fab) == 6
    assert ran[0] == [
        f"{REPO}/.venv/bin/fab",
        "-r",
        str(REPO),
        "-H",
        "devpi-host",
        "deploy",
        "--inventory",
        str(inventory),
        "--bundle",
        str(bundles / names[0]),
    ]
    assert [a[-1] for a in ran] == [str(bundles / n) for n in names]
    # The failed one, and only it, is pending on the next run.
    assert schedule.pending_bundles(bundles, "devpi-host") == [bundles / names[1]]
    ran.clear()
    assert schedule.deploy_pending(REPO, inventory, "devpi-host", run=lambda a: ran.append(a) or 0) == 0
    assert [a[-1] for a in ran] == [str(bundles / names[1])]
    ran.clear()
    assert schedule.deploy_pending(REPO, inventory, "devpi-host", run=lambda a: ran.append(a) or 0) == 0
    assert ran == []
    # Another host has its own record.
    assert len(schedule.pending_bundles(bundles, "other-host")) == 2


# --------------------------------------------------------------------------
# for real, under systemd
# --------------------------------------------------------------------------

STAND_IN = """#!/bin/sh
# Stands in for the venv's {tool}: the offline host has no devpi-airgap.
printf '%s|' {tool} "$PWD" "$UV_PYTHON_DOWNLOADS" "$@" >> /root/marker
echo >> /root/marker
exit {code}
"""


@pytest.mark.offline_host
def test_service_runs_under_systemd_on_the_offline_host():
    require_offline_host_support()
    # A path with a space and a % proves the ExecStart= quoting and the
    # specifier escaping hold when systemd itself parses them.
    repo = "/srv/air gap 100%"
    inventory = f"{repo}/inventory.yaml"
    units = render_units(repo, inventory, "daily", "devpi-host")
    with OfflineHost() as host:

        def stand_in(tool: str, code: int) -> None:
            path = f"{repo}/.venv/bin/{tool}"
            host.run(
                f"cat > {shlex.quote(path)} && chmod +x {shlex.quote(path)}",
                input=STAND_IN.format(tool=tool, code=code),
                check=True,
            )

        host.run(["mkdir", "-p", f"{repo}/.venv/bin"], check=True)
        stand_in("inv", 0)
        stand_in("python", 0)
        # As a system unit, with the very text render_units gives the user
        # unit. The test image has no libpam-systemd, so root's user manager
        # (user@0.service) cannot start. Nothing in the units is specific to
        # the user manager, so the system manager runs them the same way.
        for name, text in units.items():
            host.run(f"cat > /etc/systemd/system/{name}", input=text, check=True)
        host.run("systemctl daemon-reload", check=True)
        host.run(f"systemctl start {SERVICE}", check=True, timeout=60)
        marker = host.run("cat /root/marker", check=True).stdout.splitlines()
        assert marker == [
            f"inv|{repo}|never|-r|{repo}|refresh|--inventory|{inventory}|",
            f"python|{repo}|never|-m|devpi_airgap.online.schedule|deploy-pending|--repo|{repo}|"
            f"--inventory|{inventory}|--host|devpi-host|",
        ], marker
        result = host.run(f"systemctl show -p Result --value {SERVICE}", check=True).stdout.strip()
        assert result == "success"

        # A failed refresh stops the unit before the deploy line runs.
        host.run("rm /root/marker", check=True)
        stand_in("inv", 3)
        assert host.run(f"systemctl start {SERVICE}", timeout=60).returncode != 0
        assert host.run("cat /root/marker", check=True).stdout.startswith("inv|")
        assert "python|" not in host.run("cat /root/marker", check=True).stdout
        assert host.run(f"systemctl show -p Result --value {SERVICE}").stdout.strip() == "exit-code"

        host.run(f"systemctl enable --now {TIMER}", check=True)
        timers = host.run("systemctl list-timers --all --no-pager", check=True).stdout
        assert TIMER in timers and SERVICE in timers, timers


def test_the_desktop_wrapper_deploys_only_after_a_good_refresh(tmp_path, monkeypatch):
    deployed = []
    monkeypatch.setattr(schedule, "deploy_pending", lambda *args, **kwargs: deployed.append(args) or 0)
    missing = tmp_path / "inventory.yaml"  # refresh fails on it with exit 2
    assert schedule.run_scheduled(REPO, missing, "devpi-host") == 2
    assert deployed == []


def test_check_on_windows_compares_the_task_it_would_register_and_registers_nothing(tmp_path, monkeypatch):
    """The comparison --check makes on a Windows PC; schtasks itself never runs here (nor in --check there)."""
    task_file = tmp_path / "devpi-airgap" / "task.xml"
    monkeypatch.setattr(desktop_schedule.sys, "platform", "win32")
    monkeypatch.setattr(desktop_schedule, "_task_file", lambda: task_file)
    monkeypatch.setattr(desktop_schedule, "_registered", lambda command: pytest.fail(f"ran {command}"))
    repo, inventory = Path("C:/work/devpi-airgap"), Path("C:/work/devpi-airgap/inventory.yaml")
    lines, changed = desktop_schedule.install(repo, inventory, "daily", None, check=True)
    assert changed and lines == [f"would write {task_file} and register the Task Scheduler task {TASK_NAME}"]
    assert not task_file.exists()
    argv = desktop_schedule.run_argv(repo, inventory, None)
    task_file.parent.mkdir()
    task_file.write_bytes(render_task(argv, str(repo), "daily").encode("utf-16"))  # as a real install left it
    assert desktop_schedule.install(repo, inventory, "daily", None, check=True) == (
        [f"no changes: the {TASK_NAME} task in {task_file} is up to date"],
        False,
    )
    assert desktop_schedule.install(repo, inventory, "hourly", None, check=True)[1]
    assert desktop_schedule.remove(check=True) == ([f"would remove the Task Scheduler task {TASK_NAME}"], True)
    assert task_file.exists()
