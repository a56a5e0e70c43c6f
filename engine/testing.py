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

from engine._clock import Clock, VirtualClock
from engine.client import Client
from engine.converter import DataConverter

__all__ = ["WorkflowEnvironment"]


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
        if isinstance(clock, VirtualClock):
            clock.advance(timedelta(seconds=seconds))
            # Let the engine fire what became due before the caller looks.
            for _ in range(3):
                await asyncio.sleep(0.01)
        else:
            await asyncio.sleep(seconds)

    async def get_current_time(self) -> datetime:
        return self.client.clock.now()

    async def shutdown(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> "WorkflowEnvironment":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown()
