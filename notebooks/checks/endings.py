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


def _last_event(history: Any) -> Any:
    return history.events[-1] if history is not None and history.events else None


@exercise(
    "stop the runaway, bound the next",
    concept="termination and workflow execution timeouts: WorkflowExecutionTerminated, WorkflowExecutionTimedOut",
    hint="Terminate forces (await runaway.terminate(reason=...) or %workflow terminate); "
    "--execution-timeout 2d on %workflow start bounds a run's whole life.",
)
async def stop_the_runaway(c: Check) -> None:
    runaway: Any = c.namespace.get("runaway")
    c.require(runaway is not None and hasattr(runaway, "fetch_history"), "", "there is no `runaway` run: run the exercise cell as it is given")
    history = await runaway.fetch_history()
    if any(e.event_type == "WorkflowExecutionCancelRequested" for e in history.events):
        # A cancel is a request: the run closes once a worker has run its code. Judge how it ended.
        await c.existing(runaway.workflow_id, timeout=5)
        history = await runaway.fetch_history()
    last = _last_event(history)
    closed = last is not None and last.event_type.startswith("WorkflowExecution") and last.event_type not in (
        "WorkflowExecutionStarted", "WorkflowExecutionSignaled", "WorkflowExecutionCancelRequested",
    )
    if not closed:
        c.expect(False, "", f"runaway ({runaway.workflow_id}) is still running: it would sleep for 365 days",
                 hint="End it from outside at once: await runaway.terminate(reason=\"...\"), or %workflow terminate "
                 "--workflow-id with its id.")
    elif last.event_type == "WorkflowExecutionTerminated":
        reason = last.attributes.get("reason") or ""
        c.expect(bool(reason), f"runaway was terminated (reason {reason!r}); no workflow code ran after it",
                 "runaway was terminated, but with no reason in its history",
                 hint="Say why: the reason is recorded in WorkflowExecutionTerminated for whoever reads the history later.")
    else:
        ran = [e.event_type for e in history.events[-4:]]
        c.expect(False, "", f"runaway ended with {last.event_type} (its last events: {', '.join(ran)})",
                 hint="Cancel asks, and the workflow code runs again (Nap's except block did); terminate forces: "
                 "no code runs, the history ends with WorkflowExecutionTerminated.")

    bounded: Any = c.namespace.get("bounded")
    c.require(bounded is not None and hasattr(bounded, "fetch_history"), "",
              "bounded is None: start a Nap of 30 days as `bounded = %workflow start ...`",
              hint="bounded = %workflow start --type Nap --task-queue endings --input 30 --execution-timeout 2d")
    run = await c.existing(bounded.workflow_id)
    started = run.events("WorkflowExecutionStarted")
    attributes = started[0].attributes if started else {}
    limit = attributes.get("workflowExecutionTimeout")
    c.expect(
        limit == "172800s",
        "bounded may live 2 days at most (workflowExecutionTimeout 172800s in WorkflowExecutionStarted)",
        f"bounded's WorkflowExecutionStarted has workflowExecutionTimeout {limit or 'unset'}"
        + (f" and workflowRunTimeout {attributes['workflowRunTimeout']}" if "workflowRunTimeout" in attributes and not limit else ""),
        hint="--execution-timeout bounds the whole execution (every run of it); --run-timeout bounds one run. "
        "Two days are 2d." if not limit else "Two days: --execution-timeout 2d.",
    )
    c.expect(
        run.status == "TIMED_OUT" and run.event_types()[-1] == "WorkflowExecutionTimedOut",
        "and the engine ended it with WorkflowExecutionTimedOut",
        f"bounded ended {run.status}" + (f" with {run.result!r}" if run.completed else ""),
        hint="The nap takes 30 days: a limit of 2 days ends it before, with WorkflowExecutionTimedOut.",
    )
