"""Behaviours matched against what temporalio and a real Temporal server record.

The real histories are in ``tests/histories`` (recorded by ``record_fixtures.py`` on a
Temporal 1.32 dev server with temporalio 1.35); the same workflows are written here with
our API and replayed against them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from engine import Worker, workflow
from engine.history import load_history
from engine.replay import Replayer
from engine.testing import WorkflowEnvironment

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


@workflow.defn
class WaitConditionTrueWorkflow:
    """tests/histories/fixture_workflows.py's workflow of the same name, with our imports."""

    def __init__(self) -> None:
        self.ready = True

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.wait_condition(lambda: self.ready, timeout=timedelta(seconds=30))
        await workflow.sleep(timedelta(milliseconds=100))
        return f"ready: {name}"


async def test_wait_condition_already_true_starts_no_timer() -> None:
    # temporalio: a timer started and cancelled before the activation ends is never sent,
    # but its sequence number is spent (the next timer is "2").
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[WaitConditionTrueWorkflow]):
        handle = await env.client.start_workflow(WaitConditionTrueWorkflow.run, "Ada", id="w", task_queue="q")
        assert await handle.result() == "ready: Ada"
        history = await handle.fetch_history()
    await env.shutdown()
    timers = [(e.event_type, e.attributes.get("timerId")) for e in history.events if e.event_type.startswith("Timer")]
    assert timers == [("TimerStarted", "2"), ("TimerFired", "2")]
    Replayer(workflows=[WaitConditionTrueWorkflow]).replay_workflow(history)


def test_real_wait_condition_history_replays() -> None:
    history = load_history(HISTORIES / "wait_condition_true.json")
    Replayer(workflows=[WaitConditionTrueWorkflow]).replay_workflow(history)
