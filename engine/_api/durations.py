"""Protobuf-JSON durations and timestamps, as Temporal's JSON history writes them."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from typing import Any


@functools.lru_cache(maxsize=1024)  # workflows use a handful of timeouts, over and over
def to_duration(value: timedelta | None) -> str:
    if value is None:
        return "0s"
    micros = round(value.total_seconds() * 1_000_000)
    seconds, frac = divmod(micros, 1_000_000)
    if frac == 0:
        return f"{seconds}s"
    return f"{seconds}.{frac:06d}".rstrip("0") + "s"


def from_duration(value: Any) -> timedelta | None:
    """``"1.5s"`` -> 1.5 seconds; ``None``/``"0s"`` -> ``None`` (Temporal's "unset")."""
    if value in (None, "", "0s"):
        return None
    if isinstance(value, str):
        return _parse_duration(value)
    return _from_seconds(value)


@functools.lru_cache(maxsize=1024)  # the same few timeouts, over and over
def _parse_duration(value: str) -> timedelta | None:
    return _from_seconds(value)


def _from_seconds(value: Any) -> timedelta | None:
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        seconds = float(str(value).rstrip("s"))
    return timedelta(seconds=seconds) if seconds > 0 else None


_last_stamp: tuple[datetime | None, str] = (None, "")
_last_second: tuple[int, str] = (-1, "")


def to_timestamp(value: datetime) -> str:
    """``2026-01-02T03:04:05.123456Z`` (always six fractional digits)."""
    global _last_stamp, _last_second
    last, text = _last_stamp  # one tuple read: safe when two threads call this
    if value is last:  # the events of one change share their time
        return text
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    # Formatting the date and time of day is the slow part: once per second is enough.
    second = round(value.timestamp() - value.microsecond / 1e6)
    cached, prefix = _last_second
    if second != cached:
        prefix = value.replace(microsecond=0, tzinfo=None).isoformat()
        _last_second = (second, prefix)
    text = f"{prefix}.{value.microsecond:06d}Z"
    _last_stamp = (value, text)
    return text


def from_timestamp(value: str) -> datetime:
    try:
        # Fast path: the engine's own format (and most of Temporal's) parse directly.
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is timezone.utc:  # the engine's own "...Z": nothing to convert
            return parsed
        if parsed.tzinfo is not None:
            return parsed.astimezone(timezone.utc)
    except ValueError:
        pass
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Temporal writes up to 9 fractional digits; datetime takes at most 6.
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            digits += rest[i]
            i += 1
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[i:]}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
