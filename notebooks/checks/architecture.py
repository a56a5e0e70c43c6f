"""Lesson 19 (architecture): what is waiting in matching?"""

from __future__ import annotations

import asyncio
from typing import Any

from kernel_ext.exercises import Check, NotYet, exercise


async def _until_event(handle: Any, event_type: str) -> None:
    for _ in range(250):
        if any(e.event_type == event_type for e in (await handle.fetch_history()).events):
            return
        await asyncio.sleep(0.02)


@exercise(
    "what is waiting in matching?",
    concept="the matching service's task queues, as the tasks table of persistence",
    hint="Each row of the tasks table names the run it belongs to (run_id): find the workflow id's latest run in "
    "executions (by start_time), then its rows in tasks.",
)
async def what_waits_in_matching(c: Check) -> None:
    pending: Any = c.namespace.get("pending_tasks")
    if not callable(pending):
        raise NotYet("pending_tasks is not defined: run the exercise's cell first.")
    db = c.session.resolved_path()
    session = c.session
    for workflow_id in ("arch-waiting", "arch-activity", "arch-done"):
        try:
            await c.client.get_workflow_handle(workflow_id).terminate(reason="a new check")
        except Exception:
            pass  # not running: nothing to end
    waiting = await session.start_workflow("Measure", task_queue="arch-nobody", workflow_id="arch-waiting", args=["x"])
    scenarios = [("a run no worker has taken yet", "arch-waiting", [("workflow", "arch-nobody")])]
    activity_run = await session.start_workflow("Measure", task_queue="arch", workflow_id="arch-activity", args=["xy", "arch-gpu"])
    await _until_event(activity_run, "ActivityTaskScheduled")
    scenarios.append(("a run whose activity waits for a worker of 'arch-gpu'", "arch-activity", [("activity", "arch-gpu")]))
    done = await session.start_workflow("Measure", task_queue="arch", workflow_id="arch-done", args=["xyz"])
    await asyncio.wait_for(done.result(), 10)
    scenarios.append(("a completed run", "arch-done", []))
    try:
        for what, workflow_id, expected in scenarios:
            truth = await c.client.store.read(_truth, workflow_id)
            c.require(truth == expected, "", f"the engine holds {truth} for {what}, not the {expected} the check set up: "
                      "run the lesson's cells again (%worker list: no worker may poll arch-nobody or arch-gpu)")
            try:
                got = pending(db, workflow_id)
            except Exception as e:
                c.require(False, "", f"for {what}, pending_tasks raised {type(e).__name__}: {e}")
            got_list = sorted(tuple(x) for x in got) if isinstance(got, (list, tuple)) else got
            c.expect(
                got_list == expected,
                f"for {what}: {expected}",
                f"for {what}, pending_tasks returned {got!r}, but matching holds {expected}",
                hint="Filter the tasks table by the run's run_id: other runs' tasks are not this run's."
                if isinstance(got_list, list) and len(got_list) > len(expected) else None,
            )
    finally:
        for handle in (waiting, activity_run):
            try:
                await handle.terminate(reason="the check is done")
            except Exception:
                pass  # already closed


def _truth(conn: Any, workflow_id: str) -> list[tuple[str, str]]:
    row = conn.execute(
        "SELECT run_id FROM executions WHERE workflow_id = ? ORDER BY start_time DESC LIMIT 1", (workflow_id,)
    ).fetchone()
    rows = conn.execute("SELECT kind, task_queue FROM tasks WHERE run_id = ?", (row[0],)).fetchall() if row else []
    return sorted((str(k), str(q)) for k, q in rows)
