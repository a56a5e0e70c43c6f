"""Injected faults in a run's steps and graph, placed by the attempt the fault log names."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from engine import Worker, faults, workflow
from engine.testing import WorkflowEnvironment
from kernel_ext._dot import INJECTED_COLOUR
from kernel_ext.graphs import STATUS_COLOURS, history_timeline_rows, run_graph

from tests.engine.test_faults import MOVE, Move, Pay, _reset, credit, debit
from tests.kernel_ext.test_graphs import node_titled


@workflow.defn
class DebitTwice:
    @workflow.run
    async def run(self, m: Move) -> list[str]:
        first = await workflow.execute_activity(debit, m, start_to_close_timeout=timedelta(seconds=30))
        await workflow.sleep(60)
        second = await workflow.execute_activity(debit, m, start_to_close_timeout=timedelta(seconds=30))
        return [first, second]


async def _faulty_run() -> tuple:  # type: ignore[type-arg]
    """Pay with: debit hangs once, credit fails twice, and the worker crashes right after
    recording the debit's completion (a second worker finishes the run)."""
    _reset()
    env = await WorkflowEnvironment.start_time_skipping()
    await faults.hang_activity(env.client, debit)
    await faults.fail_activity(env.client, credit, times=2)
    await faults.crash_worker(env.client, after="ActivityTaskCompleted", activity=debit)
    first = Worker(env.client, task_queue="q", workflows=[Pay], activities=[debit, credit])
    async with first:
        handle = await env.client.start_workflow(Pay.run, MOVE, id="marked", task_queue="q")
        for _ in range(100):  # the hung attempt times out after 30 s (skipped)
            if first.crashed:
                break
            await env.sleep(1)
    assert first.crashed
    async with Worker(env.client, task_queue="q", workflows=[Pay], activities=[debit, credit]):
        await handle.result()
    history, attempts = await handle.fetch_history(), await handle.activity_attempts()
    log = await faults.fault_log(env.client, run_id=handle.run_id)
    await env.shutdown()
    return history, attempts, log


async def test_the_fault_log_names_the_activity_attempt_each_fault_hit() -> None:
    history, _, log = await _faulty_run()
    scheduled = [e.event_id for e in history.events if e.event_type == "ActivityTaskScheduled"]
    hits = [(f.kind, f.scheduled_event_id, f.attempt) for f in log]
    # The debit's second attempt completed, then the worker died; credit failed twice.
    assert hits == [
        ("hang", scheduled[0], 1), ("crash_worker", scheduled[0], 2), ("fail", scheduled[1], 1), ("fail", scheduled[1], 2)
    ]


async def test_steps_show_hangs_and_crashes_early_in_their_detail() -> None:
    history, attempts, log = await _faulty_run()
    rows = {r["title"]: r for r in history_timeline_rows(history, attempts, log)}
    debit_row, credit_row = rows["debit"], rows["credit"]
    assert debit_row["injected"] == 2  # the hang and the crash
    # Right after the attempt count: text views and labels cut long details short.
    assert debit_row["detail"].startswith("activity 1 · 2 attempts · ⚡ worker crashed here (injected) · ⚡ injected fault · →")
    assert "⚡ injected fault: hang attempt 1 of debit" in debit_row["tooltip"]
    assert credit_row["injected"] == 2 and credit_row["detail"].startswith("activity 2 · 3 attempts · ⚡ 2 injected faults")
    plain = {r["title"]: r for r in history_timeline_rows(history, attempts)}
    assert plain["debit"]["injected"] == 0 and plain["credit"]["injected"] == 2  # failures say so themselves
    dot = run_graph(history, attempts, faults=log)
    assert node_titled(dot, "debit")["border"] == INJECTED_COLOUR
    assert node_titled(run_graph(history, attempts), "debit")["border"] == STATUS_COLOURS["retried"][1]


async def test_a_fault_marks_the_call_it_hit_when_a_run_calls_one_activity_twice() -> None:
    _reset()
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[DebitTwice], activities=[debit]):
        handle = await env.client.start_workflow(DebitTwice.run, MOVE, id="twice", task_queue="q")
        while "TimerStarted" not in [e.event_type for e in (await handle.fetch_history()).events]:
            await asyncio.sleep(0.01)
        await faults.hang_activity(env.client, debit)  # so it hits the second call
        await handle.result()
        history, attempts = await handle.fetch_history(), await handle.activity_attempts()
        log = await faults.fault_log(env.client, run_id=handle.run_id)
    await env.shutdown()
    calls = [r for r in history_timeline_rows(history, attempts, log) if r["title"] == "debit"]
    assert [(r["attempts"], r["injected"]) for r in calls] == [(1, 0), (2, 1)]
