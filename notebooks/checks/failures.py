"""Lesson 14 (failure types): refuse a refund the right way."""

from __future__ import annotations

from typing import Any

from kernel_ext.exercises import Check, exercise


def _failure(run: Any) -> dict[str, Any]:
    failed = run.events("WorkflowExecutionFailed")
    return dict(failed[0].attributes.get("failure") or {}) if failed else {}


@exercise(
    "refuse a refund the right way",
    concept="failure types: ApplicationError fails the run, other exceptions fail the workflow task",
    hint="Raise ApplicationError(message, type='RefundTooLarge', non_retryable=True) from the workflow: it fails the "
    "run; any other exception fails only the workflow task, and the run waits for a fix.",
)
async def refuse_refund(c: Check) -> None:
    big = await c.run("Refund", 5000, task_queue="failures", workflow_id="refund-big", timeout=5)
    c.require(
        big.status != "TASK_FAILED",
        "a refund of 5000 does not leave the run waiting for a code fix",
        f"a refund of 5000: {big.problem}: to the engine that is a bug, and the run waits for a fix",
        hint="Only an ApplicationError fails the run; a ValueError (or any other exception) fails the workflow task.",
    )
    c.require(
        big.status == "FAILED",
        "a refund of 5000 fails the run (WorkflowExecutionFailed)",
        f"a refund of 5000 ended {big.status}" + (f" with {big.result!r}: a refusal that completes the run reads as a success"
                                                   if big.completed else ""),
        hint="Refuse by raising an ApplicationError from the workflow, not by returning a value.",
    )
    failure = _failure(big)
    info = failure.get("applicationFailureInfo") or {}
    kind = info.get("type")
    c.expect(
        kind == "RefundTooLarge" and bool(info.get("nonRetryable")),
        "its failure is a non-retryable RefundTooLarge",
        f"its failure has type {kind!r}" + ("" if info.get("nonRetryable") else " and is retryable")
        + ", expected a non-retryable RefundTooLarge",
        hint="ApplicationError(..., type='RefundTooLarge', non_retryable=True): the type is what callers match on.",
    )
    small = await c.run("Refund", 50, task_queue="failures", workflow_id="refund-small", timeout=5)
    c.expect(small.completed and small.result == "refunded 50", "a refund of 50 still completes",
             f"a refund of 50: {small.problem or repr(small.result)}")
