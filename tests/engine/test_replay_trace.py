"""The replay trace: every event applied and every line of workflow code run, with its state."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any

import pytest

from engine import Worker
from engine.history import History
from engine.replay import Replayer, ReplayTrace, TraceStep
from engine.testing import WorkflowEnvironment
from tests.engine import debugger_workflows as w
from tests.engine.debugger_workflows import line_of

FILE = w.__file__


async def _record() -> dict[str, History]:
    env = await WorkflowEnvironment.start_time_skipping()
    client = env.client
    workflows = [w.Counting, w.Approval, w.Parent, w.Child, w.Race, w.Awkward]
    histories: dict[str, History] = {}
    async with Worker(client, task_queue="q", workflows=workflows, activities=[w.add_one, w.shout]):
        await client.execute_workflow(w.Counting.run, 3, id="counting", task_queue="q")
        approval = await client.start_workflow(w.Approval.run, id="approval", task_queue="q")
        for _ in range(200):  # the first workflow task must be done, so the signal lands in a later one
            if any(e.event_type == "WorkflowTaskCompleted" for e in (await approval.fetch_history()).events):
                break
            await asyncio.sleep(0.01)
        await approval.signal(w.Approval.approve, "bob")
        await approval.result()
        await client.execute_workflow(w.Parent.run, id="parent", task_queue="q")
        race = await client.start_workflow(w.Race.run, id="race-expired", task_queue="q")
        await env.sleep(timedelta(hours=2))
        assert await race.result() == "expired"
        await client.execute_workflow(w.Awkward.run, id="awkward", task_queue="q")
        for wid in ("counting", "approval", "parent", "race-expired", "awkward"):
            histories[wid] = await client.get_workflow_handle(wid).fetch_history()
    await env.shutdown()
    return histories


@pytest.fixture(scope="module")
def histories() -> dict[str, History]:
    return asyncio.run(_record())


def trace_of(histories: dict[str, History], wid: str, cls: type) -> ReplayTrace:
    return Replayer(workflows=[cls]).trace_workflow(histories[wid])


def lines(trace: ReplayTrace) -> list[int]:
    return [s.line.lineno for s in trace.steps if s.kind == "line" and s.line is not None]


def line_steps(trace: ReplayTrace, marker: str) -> list[TraceStep]:
    number = line_of(marker)
    return [s for s in trace.steps if s.kind == "line" and s.lineno == number]


def test_a_loop_is_traced_line_by_line_with_its_locals_and_commands(histories: dict[str, History]) -> None:
    trace = trace_of(histories, "counting", w.Counting)
    assert trace.ok and trace.divergence is None
    loop, call, done = line_of("LOOP"), line_of("CALL"), line_of("DONE")
    init = line_of("LOOP") - 4  # self.total = 0 in __init__
    assert lines(trace) == [init, loop, call, loop, call, loop, call, loop, done]
    # Every event applied, in order, once.
    assert [s.event_id for s in trace.steps if s.kind == "event"] == [e.event_id for e in histories["counting"].events]
    # The loop variable and the attribute, as they are before each line runs.
    calls = line_steps(trace, "CALL")
    assert [s.locals["i"] for s in calls] == ["0", "1", "2"]
    assert [s.attributes["total"] for s in calls] == ["0", "1", "2"]
    assert "self" not in calls[0].locals and calls[0].locals["rounds"] == "3"
    # Each activity command appears once, as new, with the line that made it.
    new = [c for s in trace.steps for c in s.new_commands]
    assert [c.kind for c in new] == ["ScheduleActivityTask"] * 3 + ["CompleteWorkflowExecution"]
    assert {c.line.lineno for c in new[:3] if c.line} == {call}
    assert new[3].line is not None and new[3].line.lineno == done
    # The recorded event names the command the code produced for it.
    scheduled = [s for s in trace.steps if s.kind == "event" and s.event and s.event.event_type == "ActivityTaskScheduled"]
    assert all(s.matched is not None and s.matched.line is not None and s.matched.line.lineno == call for s in scheduled)
    # Pending work: the activity waits from its command until its completion is applied.
    completed = next(s for s in trace.steps if s.kind == "event" and s.event and s.event.event_type == "ActivityTaskCompleted")
    assert completed.pending.activities and "add_one" in completed.pending.activities[0]
    # Lines run in replayed workflow tasks, at the time their WorkflowTaskStarted recorded.
    assert all(s.replaying and s.event is not None and s.time == s.event.event_time for s in trace.steps if s.kind == "line" and s.line and s.line.function == "run")


def test_workflow_task_commands_accumulate_and_reset(histories: dict[str, History]) -> None:
    trace = trace_of(histories, "counting", w.Counting)
    tasks = [s for s in trace.steps if s.kind == "event" and s.event and s.event.event_type == "WorkflowTaskCompleted"]
    assert [[c.kind for c in s.commands] for s in tasks] == [["ScheduleActivityTask"]] * 3 + [["CompleteWorkflowExecution"]]
    started = [s for s in trace.steps if s.kind == "event" and s.event and s.event.event_type == "WorkflowTaskStarted"]
    assert all(s.commands == () for s in started)


def test_a_signal_handler_runs_in_the_trace_and_feeds_the_condition(histories: dict[str, History]) -> None:
    trace = trace_of(histories, "approval", w.Approval)
    assert trace.ok
    handler = line_steps(trace, "HANDLER")
    assert len(handler) == 1 and handler[0].line is not None and handler[0].line.function == "approve"
    assert handler[0].locals == {"who": "'bob'"}
    assert handler[0].event is not None and handler[0].event.event_type == "WorkflowTaskStarted"
    # Before the handler the condition is pending; after it, the attributes changed and it fired.
    assert handler[0].pending.conditions and "approved_by is not None" in handler[0].pending.conditions[0]
    shout = line_steps(trace, "SHOUT")[0]
    assert shout.attributes["approved_by"] == "'bob'" and shout.attributes["basket"] == "Basket(items=['bob'])"
    assert not shout.pending.conditions
    signalled = next(s for s in trace.steps if s.kind == "event" and s.event and s.event.event_type == "WorkflowExecutionSignaled")
    assert signalled.index < handler[0].index


def test_a_child_workflow_is_pending_until_its_result(histories: dict[str, History]) -> None:
    trace = trace_of(histories, "parent", w.Parent)
    assert trace.ok
    assert lines(trace) == [line_of("SPAWN"), line_of("PARENT_DONE")]
    kinds = [c.kind for s in trace.steps for c in s.new_commands]
    assert kinds == ["StartChildWorkflowExecution", "CompleteWorkflowExecution"]
    started = next(s for s in trace.steps if s.kind == "event" and s.event and s.event.event_type == "ChildWorkflowExecutionStarted")
    assert started.pending.children == ("Child 'child-of-parent'",)
    done = line_steps(trace, "PARENT_DONE")[0]
    assert done.locals["greeting"] == "'ADA'" and not done.pending.children


def test_a_timer_race_with_wait_condition(histories: dict[str, History]) -> None:
    trace = trace_of(histories, "race-expired", w.Race)
    assert trace.ok
    race = line_steps(trace, "RACE")
    assert race and race[0].attributes == {"paid": "False"}
    started = next(s for s in trace.steps if s.kind == "event" and s.event and s.event.event_type == "TimerStarted")
    assert started.matched is not None and started.matched.kind == "StartTimer" and started.matched.line is not None
    assert started.matched.line.lineno == line_of("RACE")
    assert started.pending.timers and started.pending.conditions
    expired = line_steps(trace, "EXPIRED")
    assert len(expired) == 1 and expired[0].event is not None
    fired = next(s for s in trace.steps if s.kind == "event" and s.event and s.event.event_type == "TimerFired")
    assert fired.index < expired[0].index
    assert not expired[0].pending.timers
    # Workflow time moved with the history: the line after the timer runs an hour later.
    assert expired[0].time - race[0].time >= timedelta(hours=1)


def test_snapshots_are_bounded_and_never_raise(histories: dict[str, History]) -> None:
    trace = trace_of(histories, "awkward", w.Awkward)
    assert trace.ok, trace.failure
    end = line_steps(trace, "AWKWARD_END")[0]
    assert end.locals["loud"].startswith("<Loud at 0x")
    assert len(end.locals["huge"]) <= 160 and end.locals["huge"].endswith("…")
    assert end.locals["nested"] == "[[[[…]]]]"
    assert end.locals["me"] == "[…]"
    # Its repr read the clock, which the sandbox forbids: shown as its type, the replay goes on.
    assert end.locals["clocky"].startswith("<Clocky at 0x")


def test_tracing_leaves_no_hook_behind(histories: dict[str, History]) -> None:
    before = sys.gettrace()
    replayer = Replayer(workflows=[w.Counting])
    replayer.trace_workflow(histories["counting"])
    assert sys.gettrace() is before
    instance = replayer.instance_for(histories["counting"])
    assert instance._tracer is None
    assert replayer.replay_workflow(histories["counting"]).replay_failure is None


def test_only_workflow_code_is_traced(histories: dict[str, History]) -> None:
    trace = trace_of(histories, "counting", w.Counting)
    assert {s.line.filename for s in trace.steps if s.line is not None} == {FILE}
    assert trace.files == (FILE,)
    assert trace.source_lines()[line_of("CALL") - 1].rstrip().endswith("# CALL")


def _divergence_of(trace: ReplayTrace) -> Any:
    assert not trace.ok and trace.divergence is not None
    assert trace.steps[-1].kind == "divergence"
    return trace.divergence


def test_divergence_on_a_changed_activity(histories: dict[str, History]) -> None:
    trace = trace_of(histories, "counting", w.CountingChangedActivity)
    d = _divergence_of(trace)
    assert d.recorded == "ActivityTaskScheduled(activity_type='add_one', activity_id='2')"
    assert d.produced == "ScheduleActivityTask(activity_type='shout', activity_id='2')"
    assert d.line is not None and d.line.lineno == line_of("CHANGED_ACTIVITY")
    last = trace.steps[-1]
    assert last.event_id == d.event_id and last.line == d.line and "workflow.patched" in (last.error or "")
    # Nothing after the divergence was applied.
    assert max(s.event_id or 0 for s in trace.steps) == d.event_id


def test_divergence_on_a_changed_timer(histories: dict[str, History]) -> None:
    trace = trace_of(histories, "race-expired", w.RaceChangedTimer)
    d = _divergence_of(trace)
    # As in Temporal, a timer's duration is not compared: the new 5-minute sleep takes the
    # place of the recorded 1-hour timer (same id), and the code parts from the history one
    # task later, when it starts a second timer where the run completed.
    assert d.recorded == "WorkflowExecutionCompleted()"
    assert d.produced == "StartTimer(timer_id='2')"
    assert d.line is not None and d.line.lineno == line_of("SECOND_TIMER")
    started = next(s for s in trace.steps if s.kind == "event" and s.event and s.event.event_type == "TimerStarted")
    assert started.matched is not None and started.matched.line is not None
    assert started.matched.line.lineno == line_of("CHANGED_TIMER")


def test_divergence_on_a_removed_signal_handler(histories: dict[str, History]) -> None:
    trace = trace_of(histories, "approval", w.ApprovalHandlerRemoved)
    d = _divergence_of(trace)
    assert d.recorded == "ActivityTaskScheduled(activity_type='shout', activity_id='1')" and d.produced is None
    # The code never got past its wait: the divergence points at it.
    assert d.line is not None and d.line.lineno == line_of("NO_HANDLER_WAIT")
    assert not line_steps(trace, "HANDLER")


def test_the_public_names_of_engine_replay() -> None:
    import engine.replay

    assert set(engine.replay.__all__) == {
        "Replayer", "WorkflowReplayResult", "WorkflowReplayResults", "ReplayTrace", "TraceStep", "TracedCommand",
        "Pending", "Divergence", "ReplayDebugger", "Breakpoint",
    }
    for name in engine.replay.__all__:
        assert hasattr(engine.replay, name), name
