"""temporalio's client reads (issue 11, item 9): count_workflows, fetch_history_events,
raw_description, and list_workflows(...).map_histories()."""

from __future__ import annotations

import asyncio

import pytest

from engine import workflow
from engine.client import Client, WorkflowExecutionCount
from engine.errors import ListFilterError
from engine.worker import Worker


@workflow.defn(sandboxed=False)
class Waits:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.wait_condition(lambda: self.go)
        return name

    @workflow.signal
    def release(self) -> None:
        self.go = True


async def _three_runs(client: Client) -> None:
    for i in range(3):
        await client.start_workflow(Waits.run, f"n{i}", id=f"w{i}", task_queue="q")
    await client.get_workflow_handle("w0").signal(Waits.release)
    await client.get_workflow_handle("w0").result()


async def test_count_workflows_with_a_filter_and_grouped_by_status() -> None:
    async with await Client.connect(":memory:") as client:
        async with Worker(client, task_queue="q", workflows=[Waits]):
            await _three_runs(client)
            assert await client.count_workflows() == WorkflowExecutionCount(3, [])
            assert (await client.count_workflows("ExecutionStatus = 'Running'")).count == 2
            grouped = await client.count_workflows("WorkflowType = 'Waits' GROUP BY ExecutionStatus")
            assert grouped.count == 3
            assert sorted((list(g.group_values), g.count) for g in grouped.groups) == [(["Completed"], 1), (["Running"], 2)]
            with pytest.raises(ValueError, match="can group by ExecutionStatus only"):
                await client.count_workflows("GROUP BY WorkflowType")
            with pytest.raises(ListFilterError):
                await client.count_workflows("Nope = ")


async def test_fetch_history_events_pages_and_waits_for_new_events() -> None:
    async with await Client.connect(":memory:") as client:
        async with Worker(client, task_queue="q", workflows=[Waits]):
            handle = await client.start_workflow(Waits.run, "x", id="w", task_queue="q")
            await asyncio.sleep(0.2)
            so_far = [e async for e in handle.fetch_history_events(page_size=2)]
            assert [e.event_id for e in so_far] == list(range(1, len(so_far) + 1)) and len(so_far) >= 3

            async def follow() -> list[str]:
                return [e.event_type async for e in handle.fetch_history_events(wait_new_event=True)]

            following = asyncio.ensure_future(follow())
            await asyncio.sleep(0.1)
            assert not following.done()  # waiting for the run's next events
            await handle.signal(Waits.release)
            types = await asyncio.wait_for(following, 10)
            assert types[-1] == "WorkflowExecutionCompleted" and "WorkflowExecutionSignaled" in types
            assert types == [e.event_type for e in (await handle.fetch_history()).events]


async def test_raw_description_and_map_histories() -> None:
    async with await Client.connect(":memory:") as client:
        async with Worker(client, task_queue="q", workflows=[Waits]):
            await _three_runs(client)
            raw = (await client.get_workflow_handle("w0").describe()).raw_description.to_json()
            info = raw["workflowExecutionInfo"]
            assert info["execution"]["workflowId"] == "w0" and info["type"] == {"name": "Waits"}
            assert info["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED" and "closeTime" in info
            assert raw["executionConfig"]["taskQueue"]["name"] == "q"
            histories = [h async for h in client.list_workflows("WorkflowType = 'Waits'").map_histories()]
            assert sorted(h.workflow_id for h in histories) == ["w0", "w1", "w2"]
            assert all(h.events[0].event_type == "WorkflowExecutionStarted" for h in histories)


def test_errors_importable_from_engine_client_as_from_temporalio_client() -> None:
    from engine import client, errors

    for name in ("WorkflowFailureError", "WorkflowUpdateFailedError", "WorkflowQueryFailedError", "WorkflowAlreadyStartedError"):
        assert getattr(client, name) is getattr(errors, name) and name in client.__all__
