"""Lesson 07 (the crash lab, parts 1-3): retries that give up, an idempotency key, an orphaned run."""

from __future__ import annotations

from typing import Any

from engine import faults
from kernel_ext.exercises import Check, NotYet, exercise

TRANSFER = {"source": "alice", "target": "bob", "amount": 100}


@exercise(
    "retry what can heal, not what cannot",
    concept="retry policies: non-retryable error types",
    hint="A RetryPolicy can list error types it never retries: non_retryable_error_types=[...]. "
    "Keep the other settings, so that other failures are still retried.",
)
async def careful_transfer(c: Check) -> None:
    client = c.client
    c.defined("workflow", "CarefulTransfer")
    await faults.clear_faults(client)
    try:
        await faults.fail_activity(client, "deposit", times=3, error_type="AccountClosed", message="account bob is closed")
        closed = await c.run("CarefulTransfer", TRANSFER, task_queue="money-transfer", workflow_id="careful-closed")
    finally:
        await faults.clear_faults(client)
    tries = len(closed.attempts_of("deposit"))
    c.require(
        closed.status == "FAILED" and tries == 1,
        "a closed account: one deposit attempt, then the run failed",
        f"a closed account: the deposit was tried {tries} times and the run ended {closed.status}"
        + (" only because the bank's fault ran out" if closed.completed else ""),
        hint="Retrying cannot open a closed account: list its error type in the policy's non_retryable_error_types.",
    )
    try:
        await faults.fail_activity(client, "deposit", times=2)
        down = await c.run("CarefulTransfer", TRANSFER, task_queue="money-transfer", workflow_id="careful-bank-down")
    finally:
        await faults.clear_faults(client)
    tries = len(down.attempts_of("deposit"))
    c.expect(
        down.completed and tries == 3,
        "a bank down for two attempts: three deposit attempts, and the transfer completed",
        f"a bank down for two attempts: the deposit was tried {tries} time(s) and the run ended {down.status}: "
        "other errors must still be retried",
        hint="maximum_attempts=1 stops every retry; non_retryable_error_types=['AccountClosed'] stops only those.",
    )


def _what_is_wrong(requests: list[tuple[str, int, str | None]]) -> str:
    """What the keys of one run's bank requests say about how they were built."""
    withdrawals = [key for account, amount, key in requests if amount < 0]
    deposits = [key for account, amount, key in requests if amount > 0]
    if None in withdrawals + deposits:
        return "withdraw or deposit passes no key yet (key = None)."
    if set(withdrawals) & set(deposits):
        return (
            "withdraw and deposit send the same key, so the bank takes the deposit for a repeat "
            "of the withdrawal: the key must also tell the two activities apart."
        )
    if len(set(withdrawals)) > 1 or len(set(deposits)) > 1:
        return (
            "the key changed between two attempts of one activity, so the bank took the repeat "
            "for a new request: leave out what differs from attempt to attempt."
        )
    return "the bank got the same key for every attempt of a step, yet the money moved twice."


@exercise(
    "an idempotency key",
    concept="activities run at least once: idempotency",
    hint="The key must be the same for every attempt of one activity in one run, and different for any "
    "other activity or run: build it from the facts of activity.info() that never change between attempts.",
)
async def idempotency_key(c: Check) -> None:
    bank: Any = c.namespace.get("bank")
    money_moved_once: Any = c.namespace.get("money_moved_once")
    if bank is None or money_moved_once is None:
        raise NotYet("bank or money_moved_once is not defined: run the cells above this one first.")
    reasons: list[str] = []

    def noting_why(outcome: Any) -> str | None:
        problem = money_moved_once(outcome)
        if problem:
            reasons.append(_what_is_wrong(bank.requests))
        return problem  # type: ignore[no-any-return]

    report = await c.explore("MoneyTransfer", TRANSFER, setup=bank.reset, check=noting_why)
    bad = report.violations
    c.require(
        report.ok,
        f"at all {len(report.points)} crash points the money moved exactly once",
        f"at {len(bad)} of {len(report.points)} crash points {bad[0].violations[0] if bad else ''}",
        hint=reasons[0] if reasons else None,
    )
    again = [p for p in report.points if p.outcome and p.outcome.reexecuted]
    c.expect(
        bool(again),
        f"the engine still ran an activity twice at {len(again)} crash points, and the key made it harmless",
        "no activity ran twice at any crash point: the check expected the engine to re-run one",
    )
    bank.reset()
    runs = [
        await c.run("MoneyTransfer", TRANSFER, task_queue="money-transfer", workflow_id=workflow_id)
        for workflow_id in ("key-check-1", "key-check-2", "key-check-1")  # the third: a new run of an id used before
    ]
    unfinished = [r for r in runs if not r.completed]
    c.require(not unfinished, "three ordinary transfers completed", f"{unfinished[0].workflow_id}: {unfinished[0].problem}" if unfinished else "")
    if bank.balances == {"alice": -300, "bob": 300}:
        c.ok("three transfers (the third a new run of the first one's workflow id) moved 300")
    elif len({key for _, _, key in bank.requests}) == 2:
        c.expect(False, "", "the three transfers moved only 100, because they sent the same two keys",
                 hint="The keys of two runs must differ: put something in them that names the run.")
    else:
        c.expect(False, "", f"three transfers of 100 left {bank.balances}: the third, a new run with the first one's "
                 "workflow id, was taken for a repeat",
                 hint="A workflow id can be used again by a later run, so it does not name one run.")


@exercise(
    "an orphaned run",
    concept="a run lives in the engine; any worker of its task queue carries it on",
    hint="A run waits in the engine until a worker polls its task queue, whichever process started it: "
    "start a worker on the run's task queue (%workflow describe shows it).",
)
async def orphaned_run(c: Check) -> None:
    queues = c.polled_queues()
    if "night-transfers" not in queues:
        near = sorted(q for q in queues if q.lower() == "night-transfers")
        if near:
            raise NotYet(
                f"a worker polls {near[0]!r}, but the run waits on 'night-transfers'",
                "Task queue names are case-sensitive: start the worker on night-transfers.",
            )
        raise NotYet("no worker polls task queue 'night-transfers', so the run's first workflow task still waits there")
    run = await c.existing("orphan", timeout=20)
    c.require_completed(run, "the run completed")
    started_by = str(run.events("WorkflowExecutionStarted")[0].attributes.get("identity", ""))
    c.expect(
        started_by.startswith("dlab-cli"),
        "it is the run the terminal started (a worker of this kernel finished it)",
        f"this run was started by {started_by!r}, not by the terminal's dlab: it was started again",
        hint="Do not start the run again: start a worker, and the waiting run goes on.",
    )


@exercise(
    "approve it from a terminal",
    concept="the CLI on the same database: dlab workflow signal, recorded with the CLI's identity",
    hint="!{dlab} workflow signal --workflow-id {approval.workflow_id} --name approve --input '\"grace\"' "
    "(the input is JSON: a string needs its quotes).",
)
async def approve_from_a_terminal(c: Check) -> None:
    approval: Any = c.namespace.get("approval")
    c.require(approval is not None and hasattr(approval, "fetch_history"), "",
              "there is no `approval` run: run the exercise cell as it is given")
    history = await approval.fetch_history()
    signals = [e for e in history.events if e.event_type == "WorkflowExecutionSignaled"]
    c.require(
        bool(signals),
        "",
        f"the run {approval.workflow_id} has no WorkflowExecutionSignaled in its history: no signal reached it yet",
        hint="Send it from a terminal line in the cell: !{dlab} workflow signal --workflow-id {approval.workflow_id} "
        "--name approve --input '\"grace\"' (--input takes JSON: a string needs its double quotes).",
    )
    from engine.history import decode_payloads

    signal = signals[0].attributes
    name, identity = signal.get("signalName"), str(signal.get("identity") or "")
    inputs = decode_payloads(signal.get("input"))
    c.expect(name == "approve", "a signal named approve reached it", f"the signal's name was {name!r}, not 'approve'",
             hint="Signal names are case-sensitive, like task queue names: --name approve.")
    c.expect(inputs == ["grace"], "with the input ['grace']", f"the signal's input was {inputs}, expected ['grace']",
             hint="--input '\"grace\"': one JSON value per --input.")
    c.expect(
        identity.startswith("dlab-cli:"),
        f"sent from a terminal: the event's identity is the CLI's ({identity})",
        f"it was sent by {identity or 'no identity'}, this kernel's client, not from a terminal",
        hint="Use the CLI: a line starting with ! runs a shell command (!{dlab} workflow signal ...).",
    )
    if name == "approve":
        run = await c.existing(approval.workflow_id, timeout=5)
        c.expect(run.completed and run.result == "5000 approved by grace", "and the run completed: '5000 approved by grace'",
                 f"the run {run.problem or 'returned ' + repr(run.result)}")
