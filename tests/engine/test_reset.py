"""Reset (``handle.reset``, ``temporal workflow reset``): a new run copies the history up to a
workflow task, records WorkflowTaskFailed RESET_WORKFLOW, re-applies later signals, and the
code running now takes over."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine import Worker, activity, workflow
from engine._history.resets import ResetError
from engine.client import WorkflowHandle
from engine.client import WorkflowExecutionStatus
from engine.testing import WorkflowEnvironment


@workflow.defn(name="Greeter")
class GreeterWithBug:
    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: bool(self.names))
        return f"Helo, {self.names[0]}!"  # the bug

    @workflow.signal
    def name(self, value: str) -> None:
        self.names.append(value)


@workflow.defn(name="Greeter")
class GreeterFixed:
    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: bool(self.names))
        return f"Hello, {self.names[0]}!"

    @workflow.signal
    def name(self, value: str) -> None:
        self.names.append(value)


@workflow.defn
class Sleeper:
    def __init__(self) -> None:
        self.woken = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.woken, timeout=timedelta(hours=1))
        return "woken"

    @workflow.signal
    def wake(self) -> None:
        self.woken = True


async def _completed_tasks(handle: WorkflowHandle, count: int) -> None:
    for _ in range(400):
        events = (await handle.fetch_history()).events
        if sum(e.event_type == "WorkflowTaskCompleted" for e in events) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} workflow tasks completed")


async def test_a_closed_run_reset_to_its_first_task_finishes_with_the_fixed_code() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[GreeterWithBug]):
        handle = await env.client.start_workflow("Greeter", id="g", task_queue="q")
        await _completed_tasks(handle, 1)
        await handle.signal("name", "Ada")
        assert await handle.result() == "Helo, Ada!"
    async with Worker(env.client, task_queue="q", workflows=[GreeterFixed]):
        new = await handle.reset(reason="fix the greeting", reset_type="FirstWorkflowTask")
        assert await new.result() == "Hello, Ada!"
    old = (await handle.fetch_history()).events
    events = (await new.fetch_history()).events
    old_status = (await handle.describe()).status
    await env.shutdown()
    assert old_status == WorkflowExecutionStatus.COMPLETED  # a closed run stays as it was
    assert new.run_id != handle.run_id
    # Events 1..3 (start, the first task's scheduled and started) are copied as they were.
    assert [(e.event_id, e.event_type, dict(e.attributes)) for e in events[:3]] == [
        (e.event_id, e.event_type, dict(e.attributes)) for e in old[:3]
    ]
    assert events[0].attributes["originalExecutionRunId"] == handle.run_id
    failed = events[3]
    assert failed.event_type == "WorkflowTaskFailed"
    assert dict(failed.attributes) == {
        "scheduledEventId": "2", "startedEventId": "3", "cause": "WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW",
        "failure": {"message": "fix the greeting", "resetWorkflowFailureInfo": {}}, "identity": "history-service",
        "baseRunId": handle.run_id, "newRunId": new.run_id,
    }
    # The signal the old run got after its first task is re-applied, with its own attributes.
    signalled = [e for e in events if e.event_type == "WorkflowExecutionSignaled"]
    assert [e.attributes["signalName"] for e in signalled] == ["name"]
    assert signalled[0].event_id == 5
    assert events[-1].event_type == "WorkflowExecutionCompleted"


async def test_an_open_run_is_terminated_by_the_reset_and_signals_can_be_left_out() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[GreeterWithBug]):
        handle = await env.client.start_workflow("Greeter", id="open", task_queue="q")
        await _completed_tasks(handle, 1)
        new = await handle.reset(reason="again", reset_type="LastWorkflowTask", reapply_signals=False)
        described = await handle.describe()
        last = (await handle.fetch_history()).events[-1]
        await new.signal("name", "Bo")
        assert await new.result() == "Helo, Bo!"
    events = (await new.fetch_history()).events
    await env.shutdown()
    assert described.status == WorkflowExecutionStatus.TERMINATED
    assert last.event_type == "WorkflowExecutionTerminated"
    assert last.attributes["reason"] == "again" and last.attributes["identity"] == "history-resetter"
    assert [e.event_type for e in events[:5]] == [
        "WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskFailed", "WorkflowTaskScheduled",
    ]


async def test_bad_event_ids_name_the_events_a_reset_can_go_to() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Sleeper]):
        handle = await env.client.start_workflow(Sleeper.run, id="s", task_queue="q")
        await _completed_tasks(handle, 1)
        await handle.signal(Sleeper.wake)
        assert await handle.result() == "woken"
    with pytest.raises(ResetError, match=r"Event 1 is WorkflowExecutionStarted, not the end of a workflow task\. "
                       r"Events you can reset to: 4 \(WorkflowTaskCompleted\), 9 \(WorkflowTaskCompleted\)\."):
        await handle.reset(reason="x", event_id=1)
    with pytest.raises(ResetError, match=r"Event 99 is not in the run \(it has events 1 to \d+\)"):
        await handle.reset(reason="x", event_id=99)
    with pytest.raises(ValueError, match="needs a reason"):
        await handle.reset(reason="", event_id=4)
    with pytest.raises(ResetError, match="either an event id or a reset type"):
        await handle.reset(reason="x")
    runs = [r async for r in env.client.list_workflows("WorkflowId='s'")]
    await env.shutdown()
    assert len(runs) == 1  # nothing was made


@workflow.defn
class Napper:
    def __init__(self) -> None:
        self.pokes = 0

    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(hours=1))
        return f"rested, poked {self.pokes} time(s)"

    @workflow.signal
    def poke(self) -> None:
        self.pokes += 1


GATE: dict[str, asyncio.Event] = {}


@activity.defn
async def wait_at_gate(name: str) -> str:
    await GATE[name].wait()
    return f"{name} passed"


@workflow.defn
class GateKeeper:
    def __init__(self) -> None:
        self.pokes = 0

    @workflow.run
    async def run(self) -> str:
        passed = await workflow.execute_activity(wait_at_gate, "gate", start_to_close_timeout=timedelta(minutes=5))
        return f"{passed}, poked {self.pokes} time(s)"

    @workflow.signal
    def poke(self) -> None:
        self.pokes += 1


async def test_a_timer_pending_at_the_point_is_armed_again() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Napper]):
        handle = await env.client.start_workflow(Napper.run, id="nap", task_queue="q")
        await _completed_tasks(handle, 1)
        await handle.signal(Napper.poke)
        await _completed_tasks(handle, 2)
        new = await handle.reset(reason="again", reset_type="LastWorkflowTask")
        assert await new.result() == "rested, poked 1 time(s)"
    events = (await new.fetch_history()).events
    await env.shutdown()
    started = next(e for e in events if e.event_type == "TimerStarted")
    fired = next(e for e in events if e.event_type == "TimerFired")
    assert fired.attributes["startedEventId"] == str(started.event_id)
    assert [e.event_type for e in events].count("TimerStarted") == 1  # the copied one, not a second timer


async def test_an_activity_pending_at_the_point_runs_again_in_the_new_run() -> None:
    GATE["gate"] = asyncio.Event()
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[GateKeeper], activities=[wait_at_gate]):
        handle = await env.client.start_workflow(GateKeeper.run, id="gk", task_queue="q")
        await _completed_tasks(handle, 1)
        await handle.signal(GateKeeper.poke)
        await _completed_tasks(handle, 2)
        new = await handle.reset(reason="again", reset_type="LastWorkflowTask")
        GATE["gate"].set()
        assert await new.result() == "gate passed, poked 1 time(s)"
    events = (await new.fetch_history()).events
    await env.shutdown()
    scheduled = [e for e in events if e.event_type == "ActivityTaskScheduled"]
    completed = [e for e in events if e.event_type == "ActivityTaskCompleted"]
    assert len(scheduled) == 1 and completed[0].attributes["scheduledEventId"] == str(scheduled[0].event_id)


@workflow.defn
class Parent:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_child_workflow(Napper.run, id="kid-napper")

    @workflow.signal
    def poke(self) -> None:
        pass


async def test_a_point_while_a_child_runs_is_refused_as_temporal_does() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Parent, Napper]):
        handle = await env.client.start_workflow(Parent.run, id="parent", task_queue="q")
        await _completed_tasks(handle, 2)  # the child's start is seen in a second task
        await handle.signal(Parent.poke)
        await _completed_tasks(handle, 3)
        with pytest.raises(ResetError, match=r"waits for child workflow 'Napper' \(event 5\), which a reset cannot start "
                           r"again \(Temporal refuses it too\)\. Events you can reset to: 4 \(WorkflowTaskCompleted\)\."):
            await handle.reset(reason="x", reset_type="LastWorkflowTask")
        with pytest.raises(ResetError, match=r"Workflow 'kid-napper' is a child of the open workflow 'parent'; the engine "
                           r"resets a child only once its parent has closed\. Reset the parent instead\."):
            await env.client.get_workflow_handle("kid-napper").reset(reason="x", reset_type="FirstWorkflowTask")
        await handle.terminate()
    await env.shutdown()
