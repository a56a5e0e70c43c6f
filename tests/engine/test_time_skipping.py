"""The virtual clock: long sleeps finish at once while someone waits; not otherwise."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from engine import Worker
from engine.testing import WorkflowEnvironment

from tests.engine.workflows import Sleeper


async def test_thirty_day_sleep_finishes_in_well_under_a_second() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="t", workflows=[Sleeper]):
        began = time.perf_counter()
        result = await env.client.execute_workflow(Sleeper.run, 30, id="sleep-30d", task_queue="t")
        elapsed = time.perf_counter() - began
    await env.shutdown()
    assert 30 * 86400 + 60 <= int(result) <= 30 * 86400 + 61
    assert elapsed < 1.0, elapsed


async def test_time_does_not_move_unless_someone_waits_or_asks() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="t", workflows=[Sleeper]):
        handle = await env.client.start_workflow(Sleeper.run, 1, id="sleep-1d", task_queue="t")
        before = await env.get_current_time()
        await asyncio.sleep(0.3)
        assert (await handle.describe()).status.name == "RUNNING"
        assert await env.get_current_time() - before < timedelta(seconds=1)
        await env.sleep(timedelta(days=1))
        history = await handle.fetch_history()
        assert any(e.event_type == "TimerFired" for e in history.events)
        # Virtual time also runs at real speed, so allow the fraction of a second that passed.
        assert 86460 <= int(await handle.result()) <= 86462
    await env.shutdown()
