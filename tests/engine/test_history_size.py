"""workflow.info().get_current_history_size(): temporalio's meaning (the history's size in
bytes as the current workflow task began): a real Temporal history's recorded
historySizeBytes, else the engine's own measure, the same live and on replay."""

from __future__ import annotations

from pathlib import Path

from engine import Worker, workflow
from engine._runtime.history_size import HistorySize, event_size
from engine.history import History
from engine.testing import WorkflowEnvironment

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


@workflow.defn
class Sizes:
    @workflow.run
    async def run(self) -> list[int]:
        seen = [workflow.info().get_current_history_size()]
        for _ in range(3):
            await workflow.sleep(1)
            seen.append(workflow.info().get_current_history_size())
        return seen


async def _sizes(cached: bool) -> tuple[list[int], History]:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Sizes], max_cached_workflows=100 if cached else 0):
        handle = await env.client.start_workflow(Sizes.run, id="sizes", task_queue="q")
        result = await handle.result()
        history = await handle.fetch_history()
    await env.shutdown()
    return result, history


async def test_the_size_grows_with_the_history_and_is_the_same_on_replay() -> None:
    cached, history = await _sizes(cached=True)
    replayed, _ = await _sizes(cached=False)  # every task rebuilds the run from its history
    assert cached == replayed
    assert cached == sorted(set(cached)) and cached[0] > 0
    started = [e.event_id for e in history.events if e.event_type == "WorkflowTaskStarted"]
    # The first task began after WorkflowExecutionStarted and WorkflowTaskScheduled.
    assert cached[0] == sum(event_size(e) for e in history.events if e.event_id < started[0])
    assert cached[-1] == sum(event_size(e) for e in history.events if e.event_id < started[-1])


def test_a_real_temporal_history_gives_what_the_server_recorded() -> None:
    history = History.from_json("fixture-signals-queries-update", (HISTORIES / "signals_queries_update.json").read_text())
    size = HistorySize()
    checked = 0
    for event in history.events:
        size.add(event)
        if event.event_type == "WorkflowTaskStarted":
            size.task_started(event)
            assert size.current(event.event_id) == int(event.attributes["historySizeBytes"])
            checked += 1
    assert checked >= 3
