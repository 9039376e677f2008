"""A systemd OnCalendar= expression as explicit minutes, hours, days, months and weekdays.

Task Scheduler and launchd know no calendar expressions, only lists of times,
so the schedulers for Windows and macOS start from these. They accept what
`schedule.cron_schedule` understands (the nicknames and
`[WEEKDAYS] [*-MONTH-DAY] HOUR:MINUTE`), with systemd's meaning: `weekly`
is Monday 00:00.
"""

from __future__ import annotations

from dataclasses import dataclass

from devpi_airgap.core.errors import UsageError

# systemd's nicknames, in its own terms (cron's @weekly would be Sunday).
_NICKNAMES = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 1",
    "monthly": "0 0 1 * *",
    "yearly": "0 0 1 1 *",
    "annually": "0 0 1 1 *",
    "quarterly": "0 0 1 1,4,7,10 *",
    "semiannually": "0 0 1 1,7 *",
}


@dataclass(frozen=True)
class Calendar:
    """Each field lists its values; None means every value."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...] | None
    days: tuple[int, ...] | None
    months: tuple[int, ...] | None
    weekdays: tuple[int, ...] | None  # 0 = Sunday, as cron and launchd count


def _expand(field: str, low: int, high: int) -> tuple[int, ...] | None:
    if field == "*":
        return None
    values: set[int] = set()
    for part in field.split(","):
        base, _, step = part.partition("/")
        start, _, end = base.partition("-")
        first = low if start == "*" else int(start)
        last = high if start == "*" else int(end) if end else (high if step else first)
        values.update(range(first, last + 1, int(step) if step else 1))
    return tuple(sorted(v % 7 if high == 7 else v for v in values))


def calendar(on_calendar: str) -> Calendar:
    from devpi_airgap.online.schedule import cron_schedule  # the one parser of OnCalendar= expressions

    spec = " ".join(on_calendar.lower().split())
    cron = _NICKNAMES.get(spec) or cron_schedule(on_calendar)
    if cron is None or cron.startswith("@") or cron.split()[0] == "*":
        raise UsageError(
            f"OnCalendar={on_calendar!r} cannot be scheduled here; use a nickname (hourly, daily, weekly, "
            "monthly) or a form like 'Mon..Fri 02:30' or '*-*-01 03:00'"
        )
    minute, hour, dom, month, dow = cron.split()
    minutes = _expand(minute, 0, 59)
    assert minutes is not None  # excluded above: a schedule every minute is not a refresh schedule
    return Calendar(minutes, _expand(hour, 0, 23), _expand(dom, 1, 31), _expand(month, 1, 12), _expand(dow, 0, 7))
