"""The Windows and macOS schedulers' definitions, rendered and read back here on Linux."""

from __future__ import annotations

import plistlib
import xml.etree.ElementTree as ElementTree

import pytest

from devpi_airgap.core.errors import UsageError
from devpi_airgap.online.calendar import calendar
from devpi_airgap.online.desktop_schedule import run_argv
from devpi_airgap.online.launchd import LABEL, render_agent
from devpi_airgap.online.task_scheduler import render_task

NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
REPO = "C:\\Users\\ops\\devpi-airgap"
ARGV = run_argv(REPO, f"{REPO}\\inventory.yaml", "devpi-host", platform="win32")


def task(on_calendar: str) -> ElementTree.Element:
    return ElementTree.fromstring(render_task(ARGV, REPO, on_calendar).split("\n", 1)[1])


def test_the_task_runs_the_venvs_python_on_the_wrapper_with_its_arguments():
    root = task("daily")
    assert root.findtext("t:Actions/t:Exec/t:Command", namespaces=NS) == f"{REPO}\\.venv\\Scripts\\python.exe"
    arguments = root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=NS)
    assert arguments.startswith("-m devpi_airgap.online.schedule run --repo ") and arguments.endswith(
        "--host devpi-host"
    )
    assert root.findtext("t:Settings/t:StartWhenAvailable", namespaces=NS) == "true"  # a missed run catches up


def test_task_triggers_follow_the_calendar():
    daily = task("daily").findall("t:Triggers/t:CalendarTrigger", NS)
    assert len(daily) == 1 and daily[0].findtext("t:StartBoundary", namespaces=NS).endswith("T00:00:00")
    assert daily[0].find("t:ScheduleByDay", NS) is not None
    weekdays = task("Mon..Fri 02:30").find("t:Triggers/t:CalendarTrigger", NS)
    assert weekdays.findtext("t:StartBoundary", namespaces=NS).endswith("T02:30:00")
    days = [d.tag.split("}")[1] for d in weekdays.find("t:ScheduleByWeek/t:DaysOfWeek", NS)]
    assert days == ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
    hourly = task("hourly").find("t:Triggers/t:CalendarTrigger", NS)
    assert hourly.findtext("t:Repetition/t:Interval", namespaces=NS) == "PT1H"
    monthly = task("*-*-01 03:00").find("t:Triggers/t:CalendarTrigger/t:ScheduleByMonth", NS)
    assert [d.text for d in monthly.find("t:DaysOfMonth", NS)] == ["1"] and len(monthly.find("t:Months", NS)) == 12


def test_the_agent_runs_the_wrapper_at_each_calendar_time():
    argv = run_argv("/Users/ops/devpi-airgap", "/Users/ops/devpi-airgap/inventory.yaml", None, platform="darwin")
    agent = plistlib.loads(render_agent(argv, "/Users/ops/devpi-airgap", "/tmp/log", "Mon..Fri 02:30"))
    assert agent["Label"] == LABEL and agent["ProgramArguments"][0] == "/Users/ops/devpi-airgap/.venv/bin/python"
    assert "--host" not in agent["ProgramArguments"]
    assert agent["StartCalendarInterval"] == [{"Minute": 30, "Hour": 2, "Weekday": d} for d in range(1, 6)]
    weekly = plistlib.loads(render_agent(argv, "/x", "/tmp/log", "weekly"))["StartCalendarInterval"]
    assert weekly == [{"Minute": 0, "Hour": 0, "Weekday": 1}]  # systemd's weekly is Monday, not cron's Sunday


def test_calendars_these_schedulers_cannot_express_are_refused():
    assert calendar("Sat,Sun 06:15").weekdays == (0, 6)
    with pytest.raises(UsageError, match="cannot be scheduled here"):
        calendar("minutely")
    with pytest.raises(UsageError, match="cannot be scheduled here"):
        calendar("every other tuesday")
    with pytest.raises(UsageError, match="cannot combine weekdays with days of the month"):
        render_task(ARGV, REPO, "Mon *-*-01 03:00")
