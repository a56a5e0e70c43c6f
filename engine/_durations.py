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
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        seconds = float(str(value).rstrip("s"))
    return timedelta(seconds=seconds) if seconds > 0 else None


_last_stamp: tuple[datetime | None, str] = (None, "")


def to_timestamp(value: datetime) -> str:
    """``2026-01-02T03:04:05.123456Z`` (always six fractional digits)."""
    global _last_stamp
    last, text = _last_stamp  # one tuple read: safe when two threads call this
    if value is last:  # the events of one change share their time
        return text
    utc = value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)
    text = utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    _last_stamp = (value, text)
    return text


def from_timestamp(value: str) -> datetime:
    try:
        # Fast path: the engine's own format (and most of Temporal's) parse directly.
        parsed = datetime.fromisoformat(value)
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
