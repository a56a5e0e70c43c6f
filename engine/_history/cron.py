"""Cron schedules as Temporal reads them: five fields (minute hour day-of-month month
day-of-week), or a descriptor (``@yearly``, ``@monthly``, ``@weekly``, ``@daily``,
``@hourly``, ``@every 90s``), with an optional ``CRON_TZ=Europe/Paris`` prefix (UTC
otherwise).

Fields take ``*``, ``?``, numbers, ranges ``1-5``, steps ``*/15`` or ``10-40/10``, lists
``1,15``, and names (``JAN``-``DEC``, ``SUN``-``SAT``; 7 is Sunday too). As in the cron
library Temporal uses, when both day fields are restricted a day matching either is taken.

And the backoff Temporal writes before a cron run's first workflow task
(``firstWorkflowTaskBackoff``): from the end of the previous run (or the start) to the
first schedule time after it, counted from the previous run's execution time, rounded up
to whole seconds.

About 150 lines of our own rather than a dependency (croniter): Temporal's dialect
(``@every``, ``CRON_TZ``, ``?``, the day-field rule) would need adapting anyway.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

__all__ = ["CronSchedule", "CronError", "parse_cron", "cron_backoff"]


class CronError(ValueError):
    """A cron schedule this engine (and Temporal) cannot read."""


_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_HELP = "Use five fields 'minute hour day-of-month month day-of-week' (e.g. '*/15 * * * *'), @hourly, @daily or '@every 10m'."


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: ``next(t)`` is its first time strictly after ``t``."""

    text: str
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    day_star: bool = True
    weekday_star: bool = True
    every: timedelta | None = None
    tz: tzinfo = timezone.utc

    def next(self, after: datetime) -> datetime:
        if self.every is not None:
            # As robfig/cron's ConstantDelaySchedule: whole seconds from ``after``.
            return after.replace(microsecond=0) + self.every
        local = after.astimezone(self.tz).replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
        limit = local + timedelta(days=366 * 5)
        while local < limit:
            if local.month not in self.months:
                local = (local.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(local):
                local = local.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if local.hour not in self.hours:
                local = local.replace(minute=0) + timedelta(hours=1)
                continue
            if local.minute not in self.minutes:
                local += timedelta(minutes=1)
                continue
            return local.replace(tzinfo=self.tz).astimezone(timezone.utc)
        raise CronError(f"Cron schedule {self.text!r} never fires (no such date in five years). {_HELP}")

    def _day_matches(self, day: datetime) -> bool:
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.day_star or self.weekday_star:
            return in_month and in_week
        return in_month or in_week


def parse_cron(text: str) -> CronSchedule:
    """Read ``text``; raise :class:`CronError` naming what is wrong and what to write."""
    if not isinstance(text, str) or not text.strip():
        raise CronError(f"Cron schedule {text!r} is empty. {_HELP}")
    spec = text.strip()
    tz: tzinfo = timezone.utc
    if spec.startswith(("CRON_TZ=", "TZ=")):
        name, _, spec = spec.partition(" ")
        tz = _zone(name.split("=", 1)[1], text)
    if spec.startswith("@every"):
        amount = spec[len("@every") :].strip()
        every = _go_duration(amount)
        if every is None or every.total_seconds() < 1:
            raise CronError(f"Cron schedule {text!r}: '@every' needs a duration of at least one second, such as '@every 30s' or '@every 1h30m'.")
        return CronSchedule(text, every=timedelta(seconds=math.ceil(every.total_seconds())), tz=tz)
    if spec.startswith("@"):
        if spec not in _DESCRIPTORS:
            raise CronError(f"Cron schedule {text!r}: unknown descriptor {spec!r}. {_HELP}")
        spec = _DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"Cron schedule {text!r} has {len(fields)} fields, not 5. {_HELP}")
    minute, hour, day, month, weekday = fields
    weekdays = _field(weekday, 0, 7, _DAYS, "day-of-week", text)
    return CronSchedule(
        text,
        minutes=_field(minute, 0, 59, {}, "minute", text),
        hours=_field(hour, 0, 23, {}, "hour", text),
        days=_field(day, 1, 31, {}, "day-of-month", text),
        months=_field(month, 1, 12, _MONTHS, "month", text),
        weekdays=frozenset(d % 7 for d in weekdays),
        day_star=day in ("*", "?"),
        weekday_star=weekday in ("*", "?"),
        tz=tz,
    )


_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?)(ms|us|µs|ns|h|m|s)")


def _go_duration(text: str) -> timedelta | None:
    """A Go duration ("90s", "1h30m"), as ``@every`` takes; None if it is not one."""
    if not text or _GO_PART.sub("", text):
        return None
    return timedelta(seconds=sum(float(n) * _GO_UNITS[u] for n, u in _GO_PART.findall(text)))


def _zone(name: str, text: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"Cron schedule {text!r}: unknown time zone {name!r} (an IANA name such as 'Europe/Paris').") from None


_PART = re.compile(r"^(\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(\d+))?$")


def _field(value: str, low: int, high: int, names: dict[str, int], what: str, text: str) -> frozenset[int]:
    found: set[int] = set()
    for part in value.split(","):
        match = _PART.match(part)
        if not match:
            raise CronError(f"Cron schedule {text!r}: cannot read {part!r} in the {what} field. {_HELP}")
        span, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise CronError(f"Cron schedule {text!r}: step {step_text!r} in the {what} field must be at least 1.")
        if span in ("*", "?"):
            start, end = low, high
        elif "-" in span:
            first, last = span.split("-")
            start, end = _value(first, names, what, text), _value(last, names, what, text)
        else:
            start = _value(span, names, what, text)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise CronError(f"Cron schedule {text!r}: {part!r} is outside {low}-{high} in the {what} field.")
        found.update(range(start, end + 1, step))
    return frozenset(found)


def _value(token: str, names: dict[str, int], what: str, text: str) -> int:
    if token.isdigit():
        return int(token)
    if token.upper() in names:
        return names[token.upper()]
    raise CronError(f"Cron schedule {text!r}: {token!r} is not a value of the {what} field. {_HELP}")


def cron_backoff(schedule: CronSchedule, execution_time: datetime, close_time: datetime) -> timedelta:
    """Temporal's wait before the next run: from ``close_time`` to the first schedule time
    after ``execution_time`` that is not before ``close_time``, rounded up to seconds."""
    nxt = schedule.next(execution_time)
    while nxt < close_time:
        nxt = schedule.next(nxt)
    return timedelta(seconds=math.ceil((nxt - close_time).total_seconds()))


def validate(text: str | None) -> None:
    if text:
        parse_cron(text)
