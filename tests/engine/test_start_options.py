"""Start options (issue 11, item 7): id reuse and conflict policies with temporalio's
meaning, start_delay, and request_eager_start (accepted; it changes nothing here)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engine import Worker, workflow
from engine.client import Client
from engine.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from engine.errors import WorkflowAlreadyStartedError
from engine.testing import WorkflowEnvironment


@workflow.defn(sandboxed=False)
class Hold:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, n: int) -> int:
        await workflow.wait_condition(lambda: self.done)
        return n

    @workflow.signal
    def finish(self) -> None:
        self.done = True


async def test_conflict_policies() -> None:
    async with await Client.connect(":memory:") as client:
        first = await client.start_workflow(Hold.run, 1, id="w", task_queue="q")
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.start_workflow(Hold.run, 2, id="w", task_queue="q")
        same = await client.start_workflow(Hold.run, 3, id="w", task_queue="q", id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        assert same.run_id == first.run_id
        fresh = await client.start_workflow(Hold.run, 4, id="w", task_queue="q", id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING)
        assert fresh.run_id != first.run_id
        assert (await first.describe()).status.name == "TERMINATED"
        assert (await fresh.describe()).status.name == "RUNNING"


async def test_reuse_policies() -> None:
    async with await Client.connect(":memory:") as client:
        async with Worker(client, task_queue="q", workflows=[Hold]):
            done = await client.start_workflow(Hold.run, 1, id="w", task_queue="q")
            await done.signal(Hold.finish)
            await done.result()
            with pytest.raises(WorkflowAlreadyStartedError):
                await client.start_workflow(Hold.run, 2, id="w", task_queue="q", id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
            with pytest.raises(WorkflowAlreadyStartedError):
                await client.start_workflow(Hold.run, 2, id="w", task_queue="q", id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
            again = await client.start_workflow(Hold.run, 2, id="w", task_queue="q")
            await again.terminate()
            # The last run was terminated: FAILED_ONLY allows another.
            await client.start_workflow(Hold.run, 3, id="w", task_queue="q", id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
            running = await client.start_workflow(Hold.run, 5, id="w", task_queue="q", id_reuse_policy=WorkflowIDReusePolicy.TERMINATE_IF_RUNNING)
            assert (await running.describe()).status.name == "RUNNING"


async def test_start_delay_and_eager_start() -> None:
    env = await WorkflowEnvironment.start_time_skipping(start=datetime(2026, 1, 1, tzinfo=timezone.utc))
    client = env.client
    async with Worker(client, task_queue="q", workflows=[Hold]):
        handle = await client.start_workflow(Hold.run, 7, id="d", task_queue="q", start_delay=timedelta(hours=1), request_eager_start=True)
        await env.sleep(timedelta(minutes=59))
        history = await handle.fetch_history()
        assert [e.event_type for e in history.events] == ["WorkflowExecutionStarted"]
        assert history.events[0].attributes["firstWorkflowTaskBackoff"] == "3600s"
        await env.sleep(timedelta(minutes=2))
        await handle.signal(Hold.finish)
        assert await handle.result() == 7
    await client.close()
