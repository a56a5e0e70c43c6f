"""Event times read back from the store come out in UTC, whatever offset they were written with."""

from __future__ import annotations

from engine._api.durations import from_timestamp, to_timestamp


def test_event_times_read_back_in_utc() -> None:
    stamp = "2026-12-07T17:09:46.189439Z"
    parsed = from_timestamp(stamp)
    assert to_timestamp(parsed) == stamp and parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
    assert from_timestamp("2026-12-07T18:09:46.189439+01:00") == parsed
    assert from_timestamp("2026-12-07T17:09:46.189439123Z") == parsed  # Temporal's nanoseconds
