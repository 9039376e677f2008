"""`inv schedule` on macOS: a launchd agent in ~/Library/LaunchAgents, loaded with `launchctl bootstrap`."""

from __future__ import annotations

import itertools
import plistlib

from devpi_airgap.online.calendar import calendar

LABEL = "org.devpi-airgap.refresh"


def render_agent(argv: list[str], working_directory: str, log: str, on_calendar: str) -> bytes:
    """The agent's plist: one StartCalendarInterval entry per combination the calendar names."""
    cal = calendar(on_calendar)
    fields = [("Minute", cal.minutes), ("Hour", cal.hours), ("Day", cal.days), ("Month", cal.months),
              ("Weekday", cal.weekdays)]  # fmt: skip
    named = [(key, values) for key, values in fields if values is not None]
    intervals = [
        dict(zip([k for k, _ in named], combo, strict=True)) for combo in itertools.product(*(v for _, v in named))
    ]
    agent = {
        "Label": LABEL,
        "ProgramArguments": argv,
        "WorkingDirectory": working_directory,
        "StartCalendarInterval": intervals,
        "StandardOutPath": log,
        "StandardErrorPath": log,
        "ProcessType": "Background",
    }
    return plistlib.dumps(agent)
