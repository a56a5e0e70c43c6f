"""Engine time: the wall clock, or a virtual clock that jumps (time skipping)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any


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
    """Time that runs at real speed and jumps forward when told to (Temporal's test server).

    It starts at the real current time (so histories carry plausible dates) and ``advance``
    adds a skip; in between it runs like the wall clock, so heartbeat and start-to-close
    timeouts of activities that really run still fire.
    """

    skipping = True

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime.now(timezone.utc)
        self._anchor = time.monotonic()
        self._skipped = timedelta(0)
        self._moved = asyncio.Event()
        self._auto_skip = 0

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._anchor) + self._skipped

    def advance(self, delta: timedelta) -> None:
        self.advance_to(self.now() + delta)

    def advance_to(self, when: datetime) -> None:
        gap = when - self.now()
        if gap > timedelta(0):
            self._skipped += gap
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()

    async def sleep_until(self, deadline: datetime | None, *, at_most: float) -> None:
        wait = at_most
        if deadline is not None:
            wait = min(wait, (deadline - self.now()).total_seconds())
        if wait <= 0:
            return
        try:
            await asyncio.wait_for(self._moved.wait(), wait)
        except asyncio.TimeoutError:
            pass

    # Time jumps by itself only while someone waits for a result (see WorkflowEnvironment).
    @property
    def auto_skip(self) -> bool:
        return self._auto_skip > 0

    def hold_auto_skip(self) -> None:
        self._auto_skip += 1

    def release_auto_skip(self) -> None:
        self._auto_skip -= 1


async def wait_first(awaitables: list[Any], timeout: float | None = None) -> None:
    """Wait until the first of ``awaitables`` finishes (or ``timeout``), then cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
