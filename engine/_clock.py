"""Engine time: the wall clock, or a virtual clock that jumps (time skipping)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone


class Clock:
    """Real time. Every engine deadline (timers, retries, timeouts) is read from a clock."""

    skipping = False

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    async def sleep_until(self, deadline: datetime | None, *, at_most: float) -> None:
        """Wait until ``deadline`` or ``at_most`` real seconds, whichever is first."""
        wait = at_most
        if deadline is not None:
            wait = min(wait, max(0.0, (deadline - self.now()).total_seconds()))
        await asyncio.sleep(wait)


class VirtualClock(Clock):
    """Time that only moves when told to, as in Temporal's time-skipping test server.

    It starts at the real current time (so histories carry plausible dates) and is moved
    forward by ``advance``; waiters wake when it passes their deadline.
    """

    skipping = True

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(timezone.utc)
        self._moved = asyncio.Event()
        self._auto_skip = 0
        self._real_anchor = time.monotonic()

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self.advance_to(self._now + delta)

    def advance_to(self, when: datetime) -> None:
        if when > self._now:
            self._now = when
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()

    async def sleep_until(self, deadline: datetime | None, *, at_most: float) -> None:
        if deadline is not None and deadline <= self._now:
            return
        moved = self._moved
        try:
            await asyncio.wait_for(moved.wait(), at_most)
        except asyncio.TimeoutError:
            pass

    # Time moves by itself only while someone waits for a result (see WorkflowEnvironment).
    @property
    def auto_skip(self) -> bool:
        return self._auto_skip > 0

    def hold_auto_skip(self) -> None:
        self._auto_skip += 1

    def release_auto_skip(self) -> None:
        self._auto_skip -= 1
