"""Lesson 04 (expense report): two approvers for a big expense."""

from __future__ import annotations

import asyncio
from typing import Any

from kernel_ext.exercises import Check, exercise

EXPENSE = {"employee": "ada", "amount": 5000, "description": "a conference in Lisbon"}


async def _decide_and_look(handle: Any, approver: str, outcome: str) -> bool:
    """Send a decision, wait for the workflow task that handles it, and say whether pay is scheduled."""
    await handle.signal("decide", {"approver": approver, "outcome": outcome})
    for _ in range(250):
        events = (await handle.fetch_history()).events
        signals = [e.event_id for e in events if e.event_type == "WorkflowExecutionSignaled"]
        handled = [e.event_id for e in events if e.event_type == "WorkflowTaskCompleted" and signals and e.event_id > signals[-1]]
        closed = any(e.event_type.startswith("WorkflowExecution") and e.event_type not in ("WorkflowExecutionStarted", "WorkflowExecutionSignaled") for e in events)
        if handled or closed:
            return any(e.event_type == "ActivityTaskScheduled" and (e.attributes.get("activityType") or {}).get("name") == "pay" for e in events)
        await asyncio.sleep(0.02)
    return False


@exercise(
    "two approvers for a big expense",
    concept="signals change state; wait_condition re-checks it after every signal",
    hint="Wait with workflow.wait_condition(lambda: <one rejection> or <two different approvers>): collect the names "
    "of the approvers in a set.",
)
async def two_approvers(c: Check) -> None:
    seen: dict[str, bool] = {}

    async def approvals(handle: Any) -> None:
        seen["after grace"] = await _decide_and_look(handle, "grace", "APPROVED")
        if not seen["after grace"]:
            seen["after grace again"] = await _decide_and_look(handle, "grace", "APPROVED")
            if not seen["after grace again"]:
                seen["after alan"] = await _decide_and_look(handle, "alan", "APPROVED")

    run = await c.run("BigExpense", EXPENSE, task_queue="expenses", workflow_id="big-expense", timeout=5, before_wait=approvals)
    c.require(not seen.get("after grace", True), "one approval does not pay", "pay was scheduled after one approval (grace)")
    c.require(not seen.get("after grace again", True), "the same approver twice does not pay",
              "pay was scheduled after grace approved twice: two approvals must come from two people",
              hint="Count the approvers' names (a set), not the approvals.")
    c.require_completed(run, "a second approver's decision lets the run go on")
    c.expect(run.result == "PAID" and "pay" in run.activity_types(), "then it pays: PAID",
             f"after two approvers it returned {run.result!r} and ran {run.activity_types()}")

    async def approve_then_reject(handle: Any) -> None:
        await _decide_and_look(handle, "grace", "APPROVED")
        await _decide_and_look(handle, "alan", "REJECTED")

    rejected = await c.run("BigExpense", EXPENSE, task_queue="expenses", workflow_id="big-expense-rejected", timeout=5,
                           before_wait=approve_then_reject)
    c.expect(
        rejected.completed and rejected.result == "REJECTED" and "pay" not in rejected.activity_types(),
        "an approval then a rejection: REJECTED, nothing paid",
        f"an approval then a rejection: {rejected.problem or repr(rejected.result)}, activities {rejected.activity_types()}",
    )
