"""When a schedule acts: its spec's times (intervals, cron expressions and calendars, less
the skipped calendars, between start and end) and each time's jitter.

A calendar is Temporal's structured calendar spec kept as JSON: for each of ``second``,
``minute``, ``hour``, ``day_of_month``, ``month``, ``year`` and ``day_of_week`` a list of
ranges ``[start, end, step]`` (inclusive; no ``year`` ranges mean every year). All times are
UTC. Jitter delays an action by up to ``jitter`` seconds; the delay is derived from the
schedule's id and the action's nominal time, so it is the same whenever it is computed (the
run keeps the nominal time in its id and in ``TemporalScheduledStartTime``).
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from engine._history.cron import parse_cron

FIELDS = ("second", "minute", "hour", "day_of_month", "month", "year", "day_of_week")
_LIMITS = {"second": (0, 59), "minute": (0, 59), "hour": (0, 23), "day_of_month": (1, 31), "month": (1, 12),
           "year": (1970, 9999), "day_of_week": (0, 6)}
_SEARCH_YEARS = 100  # a calendar with no time in this many years has none


def _values(ranges: Sequence[Sequence[int]], field: str) -> list[int] | None:
    """The sorted values the ranges allow; None for every value (no ranges for ``year``)."""
    if not ranges:
        return None if field == "year" else []
    low, high = _LIMITS[field]
    found: set[int] = set()
    for start, end, step in ranges:
        found.update(v for v in range(start, max(end, start) + 1, max(step, 1)) if low <= v <= high)
    return sorted(found)


def check_calendar(calendar: dict[str, Any]) -> None:
    """Refuse a calendar no time can match, in one line."""
    for field in FIELDS:
        for start, end, step in calendar.get(field, ()):
            low, high = _LIMITS[field]
            if not low <= start <= high or (end and not low <= end <= high) or step < 0:
                raise ValueError(
                    f"ScheduleCalendarSpec.{field} range ({start}, {end}, step {step}) is outside {low}..{high}."
                )


def calendar_next(calendar: dict[str, Any], after: datetime) -> datetime | None:
    """The first time the calendar matches strictly after ``after`` (UTC), or None."""
    seconds = _values(calendar.get("second", ()), "second")
    minutes = _values(calendar.get("minute", ()), "minute")
    hours = _values(calendar.get("hour", ()), "hour")
    days = set(_values(calendar.get("day_of_month", ()), "day_of_month") or ())
    months = set(_values(calendar.get("month", ()), "month") or ())
    years = _values(calendar.get("year", ()), "year")
    weekdays = set(_values(calendar.get("day_of_week", ()), "day_of_week") or ())
    if not (seconds and minutes and hours and days and months and weekdays) or years == []:
        return None
    start = after.replace(microsecond=0) + timedelta(seconds=1)
    day = start.date()
    last = day.replace(year=min(day.year + _SEARCH_YEARS, 9999))
    while day <= last:
        if (years is None or day.year in years) and day.month in months and day.day in days and (day.isoweekday() % 7) in weekdays:
            for h in hours:
                for m in minutes:
                    for s in seconds:
                        moment = datetime(day.year, day.month, day.day, h, m, s, tzinfo=timezone.utc)
                        if moment >= start:
                            return moment
        day += timedelta(days=1)
    return None


def _skipped(spec: dict[str, Any], moment: datetime) -> bool:
    return any(calendar_next(c, moment - timedelta(seconds=1)) == moment for c in spec.get("skip", ()))


def next_time(spec: dict[str, Any], after: float) -> float | None:
    """The first time of ``spec`` strictly after ``after`` (epoch seconds), or None."""
    start_at, end_at = spec.get("start_at"), spec.get("end_at")
    if start_at is not None and after < start_at:
        after = start_at - 1e-6
    for _ in range(10_000):  # skipped times: look further, within reason
        found: list[float] = []
        for interval in spec["intervals"]:
            every, offset = interval["every"], interval["offset"]
            found.append(offset + (math.floor((after - offset) / every) + 1) * every)
        moment = datetime.fromtimestamp(after, tz=timezone.utc)
        for expression in spec["cron"]:
            found.append(parse_cron(expression).next(moment).timestamp())
        for calendar in spec.get("calendars", ()):
            matched = calendar_next(calendar, moment)
            if matched is not None:
                found.append(matched.timestamp())
        if not found:
            return None
        best = min(found)
        if end_at is not None and best > end_at:
            return None
        if not _skipped(spec, datetime.fromtimestamp(best, tz=timezone.utc)):
            return best
        after = best
    return None


def jitter_delay(schedule_id: str, nominal: float, jitter: float | None) -> float:
    """Seconds to delay the action of nominal time ``nominal``: in [0, jitter), the same
    every time for this schedule and time."""
    if not jitter:
        return 0.0
    digest = hashlib.sha256(f"{schedule_id}|{nominal:.6f}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * jitter
