"""The timer queue: what fires when the clock reaches it (user timers, retries, task and run
timeouts, cron runs, schedules), and in time-skipping mode the clock's jumps to the next of them.

Temporal's history service runs timer queue processors; here each open client runs one loop
(``Client`` starts it), and the loops of all processes sharing a database take turns at the
write lock like every other change.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Callable

from engine._history.clock import Clock, wait_first
from engine._history.mutable_state import from_ts, ts
from engine._history.timers import fire_due, idle_state, next_due
from engine._persistence.store import Store
from engine.errors import StoreError

# Seconds between looks at the due times even when nothing woke the loop: other processes
# sharing the database file write timers this process is not told of.
POLL = 1.0


async def serve(
    clock: Clock,
    store: Store,
    closed: Callable[[], bool],
    worker_owners: Callable[[], list[str]],
    served_queues: Callable[[], list[str]],
) -> None:
    """Fire due timers, retries and timeouts until ``closed()``; in time-skipping mode, move
    the clock. ``worker_owners`` are the lease owners of this process's live workers and
    ``served_queues`` the queues they poll (``"workflow:Q"``), which time skipping waits for."""
    while not closed():
        now = clock.now()
        woken = store.waiter("timers", "")
        if not clock.skipping:
            # Due times committed from here on are in the read below or in due_seen: none
            # needs to wake the loop (that woke it again after every read when runs were busy).
            store.timers_deadline, store.due_seen = -math.inf, None
        try:
            if clock.skipping:
                owners = worker_owners()
                idle, upcoming, due = await store.read(idle_state, ts(now), served_queues(), owners)
            else:
                idle, upcoming = False, await store.read(next_due)
                seen = store.due_seen
                if seen is not None and (upcoming is None or seen < upcoming):
                    upcoming = seen
                due = upcoming is not None and upcoming <= ts(now)
            # Only take the write lock when something is due: a read is far cheaper.
            if due:
                fired = await store.run(fire_due, now)
                if fired:
                    continue
        except StoreError:
            await asyncio.sleep(0.5)
            continue
        if clock.skipping and clock.auto_skip and idle and upcoming is not None:  # type: ignore[attr-defined]
            if owners != worker_owners():
                # A worker started while the state was read: its leases were not counted
                # (a workflow task running local activities would time out). Read again.
                continue
            clock.advance_to(from_ts(upcoming))  # type: ignore[attr-defined]
            continue
        waits: list[Any] = [woken.wait()]
        if clock.skipping:
            waits.append(store.waiter("any", "").wait())
        else:
            # Commits that only add later due times (each activity's and workflow task's
            # timeout) need not wake this loop: it looks again by then.
            store.timers_deadline = min(upcoming if upcoming is not None else math.inf, ts(clock.now()) + POLL)
        deadline = from_ts(upcoming) if upcoming is not None else None
        waits.append(clock.sleep_until(deadline, at_most=POLL))
        try:
            await wait_first(waits)
        finally:
            store.timers_deadline = math.inf
