"""Lesson 16 (cancellation): give the seat back."""

from __future__ import annotations

import asyncio
from typing import Any

from kernel_ext.exercises import Check, exercise


async def _cancel_once_reserved(handle: Any) -> None:
    for _ in range(200):  # the check's time limit stops this too
        history = await handle.fetch_history()
        if any(e.event_type == "ActivityTaskCompleted" for e in history.events):
            break
        await asyncio.sleep(0.02)
    await handle.cancel(reason="the exercise check cancels the hold")


@exercise(
    "give the seat back",
    concept="cancellation: asyncio.CancelledError, cleanup activities, Canceled",
    hint="Wrap the wait in try / except asyncio.CancelledError: run release_seat there, then raise again.",
)
async def give_the_seat_back(c: Check) -> None:
    seats: Any = c.namespace.get("seats")
    if isinstance(seats, dict):
        seats.clear()
    run = await c.run("HoldSeat", "Ada", task_queue="endings", workflow_id="hold-cancelled", timeout=5,
                      before_wait=_cancel_once_reserved)
    if run.status == "TASK_FAILED":
        c.require(False, "", f"hold-cancelled: {run.problem}")
    types = run.event_types()
    requested = types.index("WorkflowExecutionCancelRequested") if "WorkflowExecutionCancelRequested" in types else -1
    released = [
        e for e in run.events()[requested + 1 :]
        if requested >= 0 and e.event_type == "ActivityTaskScheduled"
        and (e.attributes.get("activityType") or {}).get("name") == "release_seat"
    ]
    c.expect(
        bool(released) and requested >= 0,
        "a cancelled hold releases its seat (release_seat runs after WorkflowExecutionCancelRequested)",
        "a cancelled hold never released its seat: no release_seat after WorkflowExecutionCancelRequested",
        hint="Catch asyncio.CancelledError around the wait and run the release_seat activity there.",
    )
    c.expect(
        run.status == "CANCELED",
        "and it ends Canceled",
        f"the cancelled hold ended {run.status}" + (f" (result {run.result!r})" if run.completed else ""),
        hint="Raise the CancelledError again after the cleanup, so that the run ends Canceled, not Completed.",
    )

    async def pay(handle: Any) -> None:
        await handle.signal("pay")

    paid = await c.run("HoldSeat", "Grace", task_queue="endings", workflow_id="hold-paid", timeout=5, before_wait=pay)
    c.expect(
        paid.completed and "release_seat" not in paid.activity_types(),
        "a paid hold completes and keeps its seat",
        f"a paid hold: {paid.problem or 'it released its seat'}",
    )
