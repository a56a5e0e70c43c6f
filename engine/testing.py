"""Test environments (mirrors ``temporalio.testing``).

``WorkflowEnvironment.start_time_skipping()`` gives an in-memory engine on a virtual clock:
while a caller awaits a workflow result and nothing is runnable, the clock jumps to the next
timer, retry or timeout, so a workflow that sleeps 30 days finishes in milliseconds. Time never
moves behind the back of a run that nobody is waiting on; ``env.sleep()`` moves it by hand.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from engine._history.clock import Clock, VirtualClock
from engine.client import Client
from engine.converter import DataConverter
from engine.worker._activity_environment import ActivityEnvironment

__all__ = ["WorkflowEnvironment", "ActivityEnvironment"]


class WorkflowEnvironment:
    """An engine for tests: a client plus the clock it runs on."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @classmethod
    async def start_time_skipping(
        cls, *, start: datetime | None = None, path: str = ":memory:", data_converter: DataConverter = DataConverter.default
    ) -> "WorkflowEnvironment":
        return cls(await Client.connect(path, clock=VirtualClock(start), data_converter=data_converter))

    @classmethod
    async def start_local(
        cls, path: str = ":memory:", *, data_converter: DataConverter = DataConverter.default, **_: Any
    ) -> "WorkflowEnvironment":
        """A real-time engine over ``path`` (a database file, or ``":memory:"``)."""
        return cls(await Client.connect(path, clock=Clock(), data_converter=data_converter))

    @classmethod
    def from_client(cls, client: Client) -> "WorkflowEnvironment":
        return cls(client)

    @property
    def supports_time_skipping(self) -> bool:
        return self.client.clock.skipping

    async def sleep(self, duration: timedelta | float) -> None:
        """Move virtual time forward by ``duration`` (real-time environments really sleep)."""
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
        clock = self.client.clock
        if not isinstance(clock, VirtualClock):
            await asyncio.sleep(seconds)
            return
        # As Temporal's test server: step from deadline to deadline, letting the workers react
        # to each, so a timer due halfway fires at its own time and timers it leads to start
        # from there (one jump to the end would fire them all late, at the end).
        target = clock.now() + timedelta(seconds=seconds)
        while True:
            await self._settle()
            upcoming = await self._next_deadline()
            if upcoming is None or upcoming > target:
                break
            clock.advance_to(upcoming)
            self.client.store._wake(("timers", ""))
        clock.advance_to(target)
        self.client.store._wake(("timers", ""))
        await self._settle()

    async def _state(self) -> tuple[bool, float | None, bool]:
        from engine._history.mutable_state import ts
        from engine._history.timers import idle_state

        client = self.client
        owners = sorted(w._owner for w in client._workers)
        return await client.store.read(idle_state, ts(client.clock.now()), sorted(client.served_queues), owners)

    async def _next_deadline(self) -> datetime | None:
        from engine._history.mutable_state import from_ts

        upcoming = (await self._state())[1]
        return from_ts(upcoming) if upcoming is not None else None

    async def _settle(self, limit: float = 5.0) -> None:
        """Until the local workers have nothing to do now (or ``limit`` seconds passed)."""
        self.client._ensure_service()
        deadline = asyncio.get_running_loop().time() + limit
        quiet = 0
        while asyncio.get_running_loop().time() < deadline:
            idle, _, due = await self._state()
            quiet = quiet + 1 if idle and not due else 0
            if quiet >= 2:  # twice in a row: a task may be between two state changes
                return
            await asyncio.sleep(0.002)

    async def get_current_time(self) -> datetime:
        return self.client.clock.now()

    async def shutdown(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> "WorkflowEnvironment":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown()
