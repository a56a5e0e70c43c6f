"""Changed workflow code meets a recorded history: the error names event, commands and line."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine import Worker, workflow
from engine.errors import NondeterminismError
from engine.history import History
from engine.replay import Replayer
from engine.testing import WorkflowEnvironment

from tests.engine.workflows import echo


@workflow.defn(name="Order")
class OrderV1:
    @workflow.run
    async def run(self) -> str:
        a = await workflow.execute_activity(echo, "reserve", start_to_close_timeout=timedelta(seconds=5))
        await workflow.sleep(timedelta(hours=1))
        b = await workflow.execute_activity(echo, "ship", start_to_close_timeout=timedelta(seconds=5))
        return a + b


@workflow.defn(name="Order")
class OrderV2:
    @workflow.run
    async def run(self) -> str:
        a = await workflow.execute_activity(echo, "reserve", start_to_close_timeout=timedelta(seconds=5))
        b = await workflow.execute_activity(echo, "charge", start_to_close_timeout=timedelta(seconds=5))  # CHANGED
        return a + b


async def _wait_for(handle, event_type: str) -> History:  # type: ignore[no-untyped-def]
    for _ in range(500):
        history = await handle.fetch_history()
        if any(e.event_type == event_type for e in history.events):
            return history
        await asyncio.sleep(0.01)
    raise AssertionError(f"{event_type} never recorded")


async def test_restarted_worker_with_changed_code_reports_the_disagreement() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="orders", workflows=[OrderV1], activities=[echo]):
        handle = await env.client.start_workflow("Order", id="order-1", task_queue="orders")
        await _wait_for(handle, "TimerStarted")
    async with Worker(env.client, task_queue="orders", workflows=[OrderV2], activities=[echo]):
        await env.sleep(timedelta(hours=1))
        history = await _wait_for(handle, "WorkflowTaskFailed")
    await env.shutdown()

    failed = next(e for e in history.events if e.event_type == "WorkflowTaskFailed")
    assert failed.attributes["cause"] == "WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR"
    message = failed.attributes["failure"]["message"]
    timer = next(e for e in history.events if e.event_type == "TimerStarted")
    assert f"history event {timer.event_id} is TimerStarted(timer_id='1')" in message
    assert "ScheduleActivityTask(activity_type='echo', activity_id='2')" in message
    assert "test_nondeterminism.py" in message and '# CHANGED' in message
    assert "workflow.patched" in message


async def test_offline_replayer_names_the_divergence_and_accepts_the_same_code() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="orders", workflows=[OrderV1], activities=[echo]):
        result = await env.client.execute_workflow(OrderV1.run, id="order-2", task_queue="orders")
        history = await env.client.get_workflow_handle("order-2").fetch_history()
    await env.shutdown()
    assert result == "reserveship"

    assert Replayer(workflows=[OrderV1]).replay_workflow(history).replay_failure is None
    with pytest.raises(NondeterminismError) as info:
        Replayer(workflows=[OrderV2]).replay_workflow(history)
    assert info.value.event_id == next(e.event_id for e in history.events if e.event_type == "TimerStarted")
    assert info.value.recorded == "TimerStarted(timer_id='1')"
    assert info.value.produced and "charge" not in info.value.produced and "echo" in info.value.produced
    assert info.value.code_line and "# CHANGED" in info.value.code_line


@workflow.defn(name="Order")
class OrderShorter:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(echo, "reserve", start_to_close_timeout=timedelta(seconds=5))


async def test_code_that_skips_a_recorded_command_is_reported() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="orders", workflows=[OrderV1], activities=[echo]):
        await env.client.execute_workflow(OrderV1.run, id="order-3", task_queue="orders")
        history = await env.client.get_workflow_handle("order-3").fetch_history()
    await env.shutdown()
    with pytest.raises(NondeterminismError) as info:
        Replayer(workflows=[OrderShorter]).replay_workflow(history)
    assert "TimerStarted" in str(info.value)
    assert "CompleteWorkflowExecution" in str(info.value)


@workflow.defn
class Kid:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hi {name}"


@workflow.defn(name="Family")
class FamilyV1:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_child_workflow(Kid.run, "Ada", id="kid-ada")


@workflow.defn(name="Family")
class FamilyV2:
    @workflow.run
    async def run(self) -> str:
        # gather wraps the engine's coroutine in a task of its own: no frame of this method
        # is on that task's stack, so the line must come from where the task was created.
        (kid,) = await asyncio.gather(workflow.execute_child_workflow(Kid.run, "Ada", id="kid-grace"))  # CHILD ID CHANGED
        return kid


@workflow.defn(name="Family")
class FamilyV2Direct:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_child_workflow(Kid.run, "Ada", id="kid-grace")  # CHILD ID CHANGED


@pytest.mark.parametrize("changed", [FamilyV2, FamilyV2Direct])
async def test_changed_child_workflow_id_names_the_workflow_line(changed: type) -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="family", workflows=[FamilyV1, Kid]):
        assert await env.client.execute_workflow("Family", id="family-1", task_queue="family") == "hi Ada"
        history = await env.client.get_workflow_handle("family-1").fetch_history()
    await env.shutdown()
    with pytest.raises(NondeterminismError) as info:
        Replayer(workflows=[changed]).replay_workflow(history)
    assert info.value.produced and "kid-grace" in info.value.produced
    assert "# CHILD ID CHANGED" in info.value.code_line, info.value.code_line
    assert "# CHILD ID CHANGED" in str(info.value)
