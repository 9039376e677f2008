"""A systemd OnCalendar= expression as a crontab schedule, and as explicit times.

cron (where no systemd user manager runs), Task Scheduler and launchd know no
calendar expressions. `cron_schedule` turns the nicknames and
`[WEEKDAYS] [*-MONTH-DAY] HOUR:MINUTE` into cron's five fields; `calendar`
expands those into lists of times for Windows and macOS, with systemd's
meaning: `weekly` is Monday 00:00.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from devpi_airgap.core.errors import UsageError

_NICKNAMES = {
    "minutely": "* * * * *",
    "hourly": "@hourly",
    "daily": "@daily",
    "weekly": "@weekly",
    "monthly": "@monthly",
    "yearly": "@yearly",
    "annually": "@yearly",
    "quarterly": "0 0 1 1,4,7,10 *",
    "semiannually": "0 0 1 1,7 *",
}
_DAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 0}
_DAY_NAMES = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}


def _cron_field(value: str, low: int, high: int) -> str | None:
    """One systemd calendar component (`*`, `5`, `1,3`, `1..5`, `0/15`) as a cron field."""
    if value == "*":
        return "*"
    parts = []
    for part in value.split(","):
        m = re.fullmatch(r"(\*|\d+)(?:\.\.(\d+))?(?:/(\d+))?", part)
        if not m:
            return None
        start, end, step = m.groups()
        if start == "*":
            start_n = low
            if end:
                return None
        else:
            start_n = int(start)
        end_n = int(end) if end else None
        if not low <= start_n <= high or (end_n is not None and not start_n <= end_n <= high):
            return None
        if step:
            base = "*" if start == "*" else f"{start_n}-{end_n if end_n is not None else high}"
            parts.append(f"{base}/{int(step)}")
        elif end_n is not None:
            parts.append(f"{start_n}-{end_n}")
        else:
            parts.append(str(start_n))
    return ",".join(parts)


def _cron_days(value: str) -> str | None:
    out = []
    for part in value.lower().split(","):
        ends = [_DAY_NAMES.get(d, d)[:3] for d in part.split("..")]
        if len(ends) > 2 or any(d not in _DAYS for d in ends):
            return None
        nums = [_DAYS[d] for d in ends]
        if len(nums) == 2 and nums[1] == 0:
            nums[1] = 7  # Fri..Sun: cron accepts 7 for Sunday at the end of a range
        out.append("-".join(str(n) for n in nums))
    return ",".join(out)


def cron_schedule(on_calendar: str) -> str | None:
    """The cron equivalent of a systemd OnCalendar= expression, or None when cron cannot say it.

    Covers the nicknames and `[WEEKDAYS] [*-MONTH-DAY] HOUR:MINUTE[:00]`.
    Not covered: seconds other than 0, years, `~` (last days), and time zones.
    Note that cron's @weekly is Sunday 00:00 while systemd's `weekly` is Monday.
    """
    spec = " ".join(on_calendar.lower().split())
    if spec in _NICKNAMES:
        return _NICKNAMES[spec]
    words = spec.split(" ")
    dow: str | None = "*"
    if words and re.fullmatch(r"[a-z.,]+", words[0]):
        dow = _cron_days(words.pop(0))
        if dow is None:
            return None
    dom: str | None = "*"
    month: str | None = "*"
    if words and "-" in words[0]:
        date = words.pop(0).split("-")
        if len(date) == 2:
            date = ["*", *date]
        if len(date) != 3 or date[0] != "*":
            return None
        month, dom = _cron_field(date[1], 1, 12), _cron_field(date[2], 1, 31)
    if len(words) > 1:
        return None
    clock = (words[0] if words else "00:00:00").split(":")
    if len(clock) == 2:
        clock.append("00")
    if len(clock) != 3 or not re.fullmatch(r"0+", clock[2]):
        return None
    hour, minute = _cron_field(clock[0], 0, 23), _cron_field(clock[1], 0, 59)
    if None in (dom, month, hour, minute):
        return None
    return f"{minute} {hour} {dom} {month} {dow}"


# systemd's nicknames, in its own terms (cron's @weekly would be Sunday).
_SYSTEMD_NICKNAMES = {
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
    spec = " ".join(on_calendar.lower().split())
    cron = _SYSTEMD_NICKNAMES.get(spec) or cron_schedule(on_calendar)
    if cron is None or cron.startswith("@") or cron.split()[0] == "*":
        raise UsageError(
            f"OnCalendar={on_calendar!r} cannot be scheduled here; use a nickname (hourly, daily, weekly, "
            "monthly) or a form like 'Mon..Fri 02:30' or '*-*-01 03:00'"
        )
    minute, hour, dom, month, dow = cron.split()
    minutes = _expand(minute, 0, 59)
    assert minutes is not None  # excluded above: a schedule every minute is not a refresh schedule
    return Calendar(minutes, _expand(hour, 0, 23), _expand(dom, 1, 31), _expand(month, 1, 12), _expand(dow, 0, 7))
