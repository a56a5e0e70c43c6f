"""Injected faults in a run's steps and graph: marked attempts, and a node per worker crash."""

from __future__ import annotations

from engine import Worker, faults
from engine.testing import WorkflowEnvironment
from kernel_ext._dot import INJECTED_COLOUR
from kernel_ext.graphs import STATUS_COLOURS, history_timeline_rows, run_graph

from tests.engine.test_faults import MOVE, Pay, _reset, credit, debit
from tests.kernel_ext.test_graphs import node_titled


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


async def test_the_fault_log_says_which_attempt_each_fault_hit_and_where_in_the_history() -> None:
    history, _, log = await _faulty_run()
    debit_scheduled = next(e.event_id for e in history.events if e.event_type == "ActivityTaskScheduled")
    by_kind = {(f.kind, f.attempt): f for f in log}
    assert by_kind[("hang", 1)].scheduled_event_id == debit_scheduled
    crash = by_kind[("crash_worker", 2)]  # the debit's second attempt completed, then the worker died
    assert crash.scheduled_event_id == debit_scheduled
    completed = next(e.event_id for e in history.events if e.event_type == "ActivityTaskCompleted")
    # After the commit: the completion (and the workflow task it scheduled) were recorded.
    assert crash.last_event_id == completed + 1
    assert [f.attempt for f in log if f.kind == "fail"] == [1, 2]


async def test_steps_mark_injected_attempts_and_show_the_crash_after_the_step_it_followed() -> None:
    history, attempts, log = await _faulty_run()
    # The dead worker's claim on the next workflow task, if it got one, times out.
    rows = [r for r in history_timeline_rows(history, attempts, log) if r["kind"] != "workflow_task_timed_out"]
    assert [r["kind"] for r in rows] == ["start", "activity", "crash", "activity", "result"]
    debit_row, crash_row, credit_row = rows[1], rows[2], rows[3]
    # The hang is known from the fault log only: a timed-out attempt looks like any other.
    assert debit_row["injected"] == 1 and "2 attempts · ⚡ 1 injected fault" in debit_row["detail"]
    assert "attempt 1: hung past its timeout (injected fault)" in debit_row["tooltip"]
    assert credit_row["injected"] == 2 and "⚡ 2 injected faults" in credit_row["detail"]
    assert "attempt 2 failed: injected fault: credit failed on purpose (injected fault)" in credit_row["tooltip"]
    assert crash_row["status"] == "injected" and crash_row["event_ids"] == []
    assert crash_row["detail"] == "after commit of ActivityTaskStarted(debit) + ActivityTaskCompleted(debit)"
    # Without the log, only failures are marked: their failure says it was injected.
    plain = [r for r in history_timeline_rows(history, attempts) if r["kind"] != "workflow_task_timed_out"]
    assert [r["kind"] for r in plain] == ["start", "activity", "activity", "result"]
    assert [r["injected"] for r in plain] == [0, 0, 2, 0]  # injected failures say so themselves


async def test_the_graph_draws_injected_faults_in_purple() -> None:
    history, attempts, log = await _faulty_run()
    dot = run_graph(history, attempts, faults=log)
    crash = node_titled(dot, "Worker crashed (injected)")
    assert (crash["fill"], crash["border"]) == STATUS_COLOURS["injected"]
    assert "shape=octagon" in next(line for line in dot.splitlines() if "Worker crashed" in line)
    debit_node = node_titled(dot, "debit")
    assert debit_node["border"] == INJECTED_COLOUR and debit_node["fill"] == STATUS_COLOURS["retried"][0]
    without_log = run_graph(history, attempts)
    assert node_titled(without_log, "debit")["border"] == STATUS_COLOURS["retried"][1]
    assert "Worker crashed" not in without_log
