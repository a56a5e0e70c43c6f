"""Lesson 03 (subscription): a free trial."""

from __future__ import annotations

import asyncio
from typing import Any

from kernel_ext.exercises import Check, CheckedRun, exercise

DAY = 86400.0


def _timers(run: CheckedRun) -> list[float]:
    """The length in days of each timer the run started."""
    return [float(str(e.attributes.get("startToFireTimeout", "0s")).rstrip("s")) / DAY for e in run.events("TimerStarted")]


def _charges(run: CheckedRun) -> int:
    return run.activity_types().count("charge")


@exercise(
    "a free trial",
    concept="durable timers with an early way out: wait_condition(..., timeout=...) and a signal",
    hint="await workflow.wait_condition(lambda: self.cancelled, timeout=timedelta(days=14)) inside "
    "try / except asyncio.TimeoutError; charge only if not self.cancelled.",
)
async def free_trial(c: Check) -> None:
    full = await c.run("FreeTrial", "dan", 10, task_queue="subscriptions", workflow_id="trial-full", timeout=5)
    c.require_completed(full, "a trial nobody cancels completes")
    timers = _timers(full)
    c.require(
        timers == [14.0],
        "it waits on one durable timer of 14 days (TimerStarted)",
        f"its history has timers of {', '.join(f'{d:g} days' for d in timers)}" if timers else "its history has no timer: it did not wait",
        hint="Wait with a durable timer: workflow.wait_condition(..., timeout=timedelta(days=14)) or workflow.sleep.",
    )
    c.expect(
        _charges(full) == 1 and full.result == "converted",
        "after 14 days it charges once and returns 'converted'",
        f"after 14 days it charged {_charges(full)} time(s) and returned {full.result!r}",
    )

    async def cancel_while_waiting(handle: Any) -> None:
        while not any(e.event_type == "TimerStarted" for e in (await handle.fetch_history()).events):
            await asyncio.sleep(0.02)
        await handle.signal("cancel")

    cancelled = await c.run("FreeTrial", "eve", 10, task_queue="subscriptions", workflow_id="trial-cancelled",
                            timeout=5, before_wait=cancel_while_waiting)
    c.require_completed(cancelled, "a cancelled trial completes")
    c.expect(
        _charges(cancelled) == 0 and cancelled.result == "trial cancelled",
        "a trial cancelled during the 14 days charges nothing and returns 'trial cancelled'",
        f"a trial cancelled on its first day charged {_charges(cancelled)} time(s) and returned {cancelled.result!r}",
    )
    signalled = cancelled.events("WorkflowExecutionSignaled")
    closed = cancelled.events("WorkflowExecutionCompleted")
    late = (
        (closed[0].event_time - signalled[0].event_time).total_seconds() / DAY
        if signalled and closed and closed[0].event_time and signalled[0].event_time else 0.0
    )
    c.expect(
        late < 1,
        "the cancellation ends the trial at once (the run closes right after the signal)",
        f"the cancelled trial closed {late:.0f} days after the cancel signal: the customer waited for the timer",
        hint="workflow.sleep cannot be cut short: wait with wait_condition(lambda: self.cancelled, timeout=...).",
    )


def _started_input(history: Any) -> list[Any]:
    from engine.history import decode_payloads

    started = [e for e in history.events if e.event_type == "WorkflowExecutionStarted"]
    return decode_payloads(started[0].attributes.get("input")) if started else []


@exercise(
    "a run per quarter",
    concept="continue-as-new: a chain of runs under one workflow id, state carried in the new run's input",
    hint="Bill min(months, 3) months, then, if months are left, workflow.continue_as_new(args=[customer, "
    "months - 3, billed]): the new run starts with what is left and what was billed so far.",
)
async def a_run_per_quarter(c: Check) -> None:
    run = await c.run("Membership", "frank", 7, task_queue="subscriptions", workflow_id="membership-frank", timeout=10)
    c.require_completed(run, "the membership of 7 months completes")
    histories = await c.chain(run)
    months = [sum(1 for e in h.events if e.event_type == "ActivityTaskScheduled"
                  and (e.attributes.get("activityType") or {}).get("name") == "charge") for h in histories]
    c.require(
        len(histories) == 3,
        "7 months make 3 runs under one workflow id (3 + 3 + 1 months)",
        f"7 months made {len(histories)} run(s), billing {months} months",
        hint="One run per quarter: bill at most 3 months in a run, then workflow.continue_as_new(...) with the rest."
        if len(histories) < 3 else "Continue as new after 3 months, not after each one.",
    )
    c.expect(months == [3, 3, 1], "each run bills its quarter: [3, 3, 1] charges",
             f"the runs billed {months} months", hint="Each run bills min(months, 3) months.")
    ended = [h.events[-1].event_type for h in histories]
    c.expect(
        ended[:-1] == ["WorkflowExecutionContinuedAsNew"] * 2 and ended[-1] == "WorkflowExecutionCompleted",
        "the first two runs end with WorkflowExecutionContinuedAsNew, the last completes",
        f"the runs ended with {ended}",
    )
    inputs = [_started_input(h) for h in histories[1:]]
    c.expect(
        inputs == [["frank", 4, 3], ["frank", 1, 6]],
        "each new run starts with the months left and the months billed so far (['frank', 4, 3], then ['frank', 1, 6])",
        f"the new runs started with the inputs {inputs}",
        hint="A new run has no memory of the old one: carry the months billed in the new run's input "
        "(continue_as_new(args=[customer, months - 3, billed])).",
    )
    c.expect(run.result == "7 months billed", "and the last run returns '7 months billed'", f"the last run returned {run.result!r}")
