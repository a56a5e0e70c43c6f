"""The virtual clock: long sleeps finish at once while someone waits; not otherwise."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from engine import Worker, workflow
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


@workflow.defn
class Monthly:
    @workflow.run
    async def run(self, months: int) -> list[float]:
        start = workflow.now()
        seen = []
        for _ in range(months):
            await workflow.sleep(timedelta(days=30))
            seen.append((workflow.now() - start).total_seconds() / 86400)
        return seen


async def test_env_sleep_fires_each_timer_at_its_own_time() -> None:
    # As Temporal's test server: sleeping 90 days by hand runs three 30-day timers one after
    # the other, each firing 30 days after the previous one (not all at the end).
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="t", workflows=[Monthly]):
        handle = await env.client.start_workflow(Monthly.run, 3, id="monthly", task_queue="t")
        await env.sleep(timedelta(days=90, minutes=1))
        assert (await handle.describe()).status.name == "COMPLETED"
        days = await handle.result()
    await env.shutdown()
    assert [round(d) for d in days] == [30, 60, 90], days
