"""workflow.info().get_current_history_length() and is_continue_as_new_suggested(), as
temporalio's: the id of the current workflow task's WorkflowTaskStarted, and that event's
suggestContinueAsNew."""

from __future__ import annotations

import dataclasses

import pytest

from engine import Worker, workflow
from engine.errors import NondeterminismError
from engine.history import History
from engine.testing import WorkflowEnvironment
from engine.worker import Replayer


@workflow.defn
class Lengths:
    @workflow.run
    async def run(self) -> list[object]:
        seen: list[object] = [workflow.info().get_current_history_length()]
        await workflow.sleep(5)
        seen.append(workflow.info().get_current_history_length())
        if workflow.info().is_continue_as_new_suggested():
            workflow.continue_as_new()
        return seen


async def test_history_length_and_the_servers_suggestion() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Lengths]):
        handle = await env.client.start_workflow(Lengths.run, id="l", task_queue="q")
        # 1 started, 2 scheduled, 3 task started | 4 completed, 5 timer, 6 fired, 7 scheduled, 8 task started
        assert await handle.result() == [3, 8]
        history = await handle.fetch_history()
    await env.shutdown()
    assert (await Replayer(workflows=[Lengths]).replay_workflow(history)).replay_failure is None
    # The same history where the server suggested continue-as-new at the second task: the code
    # now continues as new where the history completed, so the replay must diverge.
    events = [
        dataclasses.replace(e, attributes={**e.attributes, "suggestContinueAsNew": True}) if e.event_id == 8 else e
        for e in history.events
    ]
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[Lengths]).replay_workflow(dataclasses.replace(history, events=events))
