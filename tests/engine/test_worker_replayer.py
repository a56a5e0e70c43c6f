"""engine.worker.Replayer is temporalio.worker.Replayer's API: awaitable replay_workflow,
replay_workflows over an (async) iterator of histories, workflow_replay_iterator."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import Worker, workflow
from engine.errors import NondeterminismError
from engine.history import History
from engine.testing import WorkflowEnvironment
from engine.worker import Replayer, WorkflowReplayResult, WorkflowReplayResults

from tests.engine.workflows import echo


@workflow.defn(name="Pair")
class PairV1:
    @workflow.run
    async def run(self, x: str) -> str:
        a = await workflow.execute_activity(echo, x, start_to_close_timeout=timedelta(seconds=5))
        await workflow.sleep(timedelta(minutes=1))
        return a


@workflow.defn(name="Pair")
class PairV2:
    @workflow.run
    async def run(self, x: str) -> str:
        return await workflow.execute_activity(echo, x + "!", start_to_close_timeout=timedelta(seconds=5), activity_id="other")


async def _histories() -> list[History]:
    env = await WorkflowEnvironment.start_time_skipping()
    out = []
    async with Worker(env.client, task_queue="pairs", workflows=[PairV1], activities=[echo]):
        for i in range(2):
            await env.client.execute_workflow(PairV1.run, f"x{i}", id=f"pair-{i}", task_queue="pairs")
            out.append(await env.client.get_workflow_handle(f"pair-{i}").fetch_history())
    await env.shutdown()
    return out


async def test_replayer_has_temporalios_async_api() -> None:
    histories = await _histories()
    result = await Replayer(workflows=[PairV1]).replay_workflow(histories[0])
    assert isinstance(result, WorkflowReplayResult) and result.replay_failure is None
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[PairV2]).replay_workflow(histories[0])

    async def stream():  # type: ignore[no-untyped-def]
        for h in histories:
            yield h

    results = await Replayer(workflows=[PairV2]).replay_workflows(stream(), raise_on_replay_failure=False)
    assert isinstance(results, WorkflowReplayResults)
    assert set(results.replay_failures) == {h.run_id for h in histories}
    assert all(isinstance(e, NondeterminismError) for e in results.replay_failures.values())
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[PairV2]).replay_workflows(histories)
    assert (await Replayer(workflows=[PairV1]).replay_workflows(histories)).replay_failures == {}

    seen = []
    async with Replayer(workflows=[PairV1, ]).workflow_replay_iterator(stream()) as replays:
        async for one in replays:
            seen.append((one.history.workflow_id, one.replay_failure))
    assert seen == [("pair-0", None), ("pair-1", None)]


def test_replay_workflow_still_works_without_await() -> None:
    import asyncio

    histories = asyncio.run(_histories())
    assert Replayer(workflows=[PairV1]).replay_workflow(histories[1]).replay_failure is None
