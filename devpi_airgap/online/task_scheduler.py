"""`inv schedule` on Windows: a Task Scheduler task, registered with `schtasks /Create /XML`.

One action runs `python -m devpi_airgap.online.schedule run`, which refreshes
and deploys pending bundles only after a good refresh: Task Scheduler runs a
task's actions one after another whatever their exit codes, so the order and
the stop at a failure live in that one program.
"""

from __future__ import annotations

import subprocess
from xml.sax.saxutils import escape

from devpi_airgap.core.errors import UsageError
from devpi_airgap.online.calendar import calendar

TASK_NAME = "devpi-airgap-refresh"
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December")  # fmt: skip


def _schedule(cal) -> str:
    if cal.weekdays is not None and (cal.days is not None or cal.months is not None):
        raise UsageError("Task Scheduler cannot combine weekdays with days of the month; choose one of them")
    if cal.weekdays is not None:
        days = "".join(f"<{_DAY_NAMES[d]} />" for d in cal.weekdays)
        return f"<ScheduleByWeek><DaysOfWeek>{days}</DaysOfWeek><WeeksInterval>1</WeeksInterval></ScheduleByWeek>"
    if cal.days is not None or cal.months is not None:
        days = "".join(f"<Day>{d}</Day>" for d in cal.days or range(1, 32))
        months = "".join(f"<{_MONTH_NAMES[m - 1]} />" for m in cal.months or range(1, 13))
        return f"<ScheduleByMonth><DaysOfMonth>{days}</DaysOfMonth><Months>{months}</Months></ScheduleByMonth>"
    return "<ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay>"


def render_task(argv: list[str], working_directory: str, on_calendar: str) -> str:
    """The task's XML: a calendar trigger per time of day, one action, catch-up after a missed start."""
    cal = calendar(on_calendar)
    schedule = _schedule(cal)
    triggers = []
    # Every hour: one trigger a minute, repeated hourly through the day.
    hours = cal.hours if cal.hours is not None else (0,)
    repeat = (
        "" if cal.hours is not None else "<Repetition><Interval>PT1H</Interval><Duration>P1D</Duration></Repetition>"
    )
    for hour in hours:
        for minute in cal.minutes:
            triggers.append(
                f"    <CalendarTrigger>{repeat}<StartBoundary>2026-01-01T{hour:02d}:{minute:02d}:00</StartBoundary>"
                f"<Enabled>true</Enabled>{schedule}</CalendarTrigger>"
            )
    command, arguments = argv[0], subprocess.list2cmdline(argv[1:])
    return f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo><Description>devpi-airgap: inv refresh, then deploy the bundles not yet deployed</Description></RegistrationInfo>
  <Triggers>
{chr(10).join(triggers)}
  </Triggers>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <StartWhenAvailable>true</StartWhenAvailable>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <ExecutionTimeLimit>PT12H</ExecutionTimeLimit>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(command)}</Command>
      <Arguments>{escape(arguments)}</Arguments>
      <WorkingDirectory>{escape(working_directory)}</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
"""
