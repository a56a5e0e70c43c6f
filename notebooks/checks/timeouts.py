"""Lesson 13 (timeouts and heartbeats): a resumable import."""

from __future__ import annotations

import json
from typing import Any

from kernel_ext.exercises import Check, exercise

ROWS = 30


def _timeout_type(failure: Any) -> str:
    """HEARTBEAT, START_TO_CLOSE, ... of a timeout failure (its cause's, if wrapped), else ''."""
    text = json.dumps(failure or {})
    for kind in ("HEARTBEAT", "START_TO_CLOSE", "SCHEDULE_TO_CLOSE", "SCHEDULE_TO_START"):
        if f"TIMEOUT_TYPE_{kind}" in text:
            return kind
    return ""


@exercise(
    "a resumable import",
    concept="heartbeats: heartbeat_timeout notices a frozen attempt, heartbeat details resume it",
    hint="Heartbeat after each row (activity.heartbeat(row)), give the activity heartbeat_timeout=timedelta(seconds=1), "
    "and start after activity.info().heartbeat_details[0] when a retry has details.",
)
async def resumable_import(c: Check) -> None:
    imported: Any = c.namespace.get("imported")
    if not isinstance(imported, list):
        raise Exception("run the exercise's %%activity cell first: it defines imported")
    before = len(imported)
    run = await c.run("ImportRows", ROWS, task_queue="timeouts", workflow_id="import-check", timeout=8)
    scheduled = run.events("ActivityTaskScheduled")
    heartbeat_timeout = str(scheduled[0].attributes.get("heartbeatTimeout") or "0s") if scheduled else "0s"
    c.require(
        heartbeat_timeout not in ("0s", "0"),
        f"the activity has a heartbeat timeout ({heartbeat_timeout})",
        "the activity has no heartbeat timeout, so a frozen attempt is noticed only by its 10-minute start-to-close timeout",
        hint="Give execute_activity heartbeat_timeout=timedelta(seconds=1).",
    )
    c.require_completed(
        run,
        "the import completed",
        hint="With a heartbeat timeout but no heartbeats, every attempt times out: call activity.heartbeat(row) after each row.",
    )
    attempts = run.attempts_of("import_rows")
    first = _timeout_type(attempts[0].failure) if attempts else ""
    c.expect(
        len(attempts) == 2 and first == "HEARTBEAT",
        "2 attempts: the frozen one ended by a heartbeat timeout, then one that finished",
        f"{len(attempts)} attempt(s), the first ended by {first or 'no'} timeout",
    )
    rows = [row for _, _, row in imported[before:]]
    twice = sorted({row for row in rows if rows.count(row) > 1})
    c.expect(
        not twice and sorted(rows) == list(range(1, ROWS + 1)),
        f"each of the {ROWS} rows was imported once: the second attempt resumed at row {min((r for _, a, r in imported[before:] if a == 2), default='?')}",
        f"rows {twice[0]}-{twice[-1]} were imported twice: the second attempt started again from row 1" if twice
        else f"the rows imported were {rows}",
        hint="Start at activity.info().heartbeat_details[0] + 1 when the details hold a row (they are empty on attempt 1).",
    )


def _seconds(duration: Any) -> float:
    return float(str(duration or "0s").rstrip("s") or 0)


def _on_queue(run: Any, queue: str) -> list[Any]:
    """The ActivityTaskScheduled events of the run for the task queue ``queue``."""
    return [e for e in run.events("ActivityTaskScheduled") if (e.attributes.get("taskQueue") or {}).get("name") == queue]


def _ended(run: Any, scheduled: Any) -> Any:
    """The event that closed the activity scheduled by ``scheduled`` (None while it is open)."""
    return next(
        (e for e in run.events() if e.event_type.startswith("ActivityTask") and e.event_type not in (
            "ActivityTaskScheduled", "ActivityTaskStarted", "ActivityTaskCancelRequested")
         and str(e.attributes.get("scheduledEventId")) == str(scheduled.event_id)),
        None,
    )


@exercise(
    "a scarce GPU, a hard deadline",
    concept="schedule-to-start bounds the wait for a worker; schedule-to-close bounds the whole activity, retries included",
    hint="On gpu: schedule_to_start_timeout=timedelta(minutes=2). On timeouts: schedule_to_close_timeout=timedelta(minutes=1) "
    "(the retries go on until it passes). Catch ActivityError around each.",
)
async def scarce_gpu(c: Check) -> None:
    quick = await c.run("Render", 7, task_queue="timeouts", workflow_id="render-7", timeout=5)
    gpu = _on_queue(quick, "gpu")
    c.require(bool(gpu), "", "Render scheduled nothing on the gpu queue: try the GPU first",
              hint="workflow.execute_activity(render, frame, task_queue=\"gpu\", ...) first.")
    wait = _seconds(gpu[0].attributes.get("scheduleToStartTimeout"))
    ended = _ended(quick, gpu[0])
    if ended is None:
        c.require(False, "", f"render-7: {quick.problem}: its render task is still waiting on gpu, which no worker polls "
                  + (f"(its schedule-to-start timeout: {wait:g} s)" if wait else "(it has no schedule-to-start timeout)"),
                  hint="start-to-close starts counting only when a worker takes the task: bound the wait for one with "
                  "schedule_to_start_timeout=timedelta(minutes=2)." if not wait else None)
    kind = _timeout_type(ended.attributes.get("failure"))
    c.expect(
        ended.event_type == "ActivityTaskTimedOut" and kind == "SCHEDULE_TO_START" and wait == 120,
        "the GPU task waited 2 minutes for a worker, then timed out SCHEDULE_TO_START",
        f"the GPU task ended with {ended.event_type}" + (f" ({kind})" if kind else "") + f" after a wait bounded to {wait:g} s",
        hint="schedule_to_start_timeout=timedelta(minutes=2) on the gpu call.",
    )
    c.require_completed(quick, "then it fell back")
    c.expect(
        quick.result == "frame 7 rendered on timeouts" and bool(_on_queue(quick, "timeouts")),
        "and rendered frame 7 on the timeouts queue ('frame 7 rendered on timeouts')",
        f"it returned {quick.result!r}, expected 'frame 7 rendered on timeouts'",
        hint="After the GPU's timeout (an ActivityError), call render again with task_queue=\"timeouts\".",
    )

    doomed = await c.run("Render", 500, task_queue="timeouts", workflow_id="render-500", timeout=5)
    cpu = _on_queue(doomed, "timeouts")
    if not cpu:
        c.require(False, "", f"render-500: {doomed.problem or 'no render was scheduled on the timeouts queue'}")
    attempts = [a for a in doomed.attempts if a.scheduled_event_id == cpu[-1].event_id]
    closed = _ended(doomed, cpu[-1])
    kind = _timeout_type(closed.attributes.get("failure")) if closed is not None else ""
    deadline = _seconds(cpu[-1].attributes.get("scheduleToCloseTimeout"))
    if closed is None:
        c.require(False, "", f"render-500: {doomed.problem}, after {len(attempts)} attempts of the CPU render: "
                  "its retries never stop", hint="start-to-close bounds one attempt, and each failed attempt is retried: "
                  "a deadline for the whole activity, retries included, is schedule_to_close_timeout.")
    retry_state = str(closed.attributes.get("retryState", "")) if closed is not None else ""
    # The deadline ends it either way: timed out SCHEDULE_TO_CLOSE, or failed because the next
    # retry would start after it (retryState TIMEOUT), as in Temporal.
    by_deadline = kind == "SCHEDULE_TO_CLOSE" or retry_state == "RETRY_STATE_TIMEOUT"
    c.expect(
        by_deadline and deadline == 60,
        f"frame 500 kept failing; the retries went on ({len(attempts)} attempts) until the 1-minute deadline "
        f"left no time for another ({retry_state or kind})",
        f"the CPU render of frame 500 ended with {closed.event_type if closed is not None else 'nothing'} after "
        f"{len(attempts)} attempts ({retry_state or kind}"
        + (": ended by its retry policy, not by a deadline)" if not by_deadline else f", a deadline of {deadline:g} s)"),
        hint="schedule_to_close_timeout=timedelta(minutes=1) on the timeouts call: the whole activity, every attempt "
        "and retry delay, gets a minute.",
    )
    c.expect(doomed.completed and doomed.result == "gave up on frame 500",
             "and Render returned 'gave up on frame 500'",
             f"render-500 {'returned ' + repr(doomed.result) if doomed.completed else doomed.problem}",
             hint="Catch the ActivityError of the CPU call and return f\"gave up on frame {frame}\".")
