"""The client's errors say what temporalio's say; ``describe_failure`` says why, in one line."""

from __future__ import annotations

import pytest

from engine import Worker
from engine.errors import (
    ActivityError,
    ApplicationError,
    RetryState,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    describe_failure,
)
from engine.testing import WorkflowEnvironment

from tests.engine.workflows import Refusing, refuse


async def test_a_failed_run_says_what_temporalio_says_and_keeps_the_chain() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Refusing], activities=[refuse]):
        with pytest.raises(WorkflowFailureError) as info:
            await env.client.execute_workflow(Refusing.run, id="r1", task_queue="q")
    await env.shutdown()
    error = info.value
    # temporalio: str() is exactly this, and the cause chain is WorkflowFailureError -> ActivityError -> ApplicationError.
    assert str(error) == "Workflow execution failed" and error.args == ("Workflow execution failed",)
    assert isinstance(error.cause, ActivityError) and error.cause.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert isinstance(error.cause.cause, ApplicationError) and error.cause.cause.type == "Refused"
    assert describe_failure(error) == (
        "Workflow execution failed: ActivityError: Activity task failed: ApplicationError (Refused): refused: no"
    )


def test_describe_failure_names_every_cause_once() -> None:
    update = WorkflowUpdateFailedError(cause=ApplicationError("not in the cart", type="NotInCart"))
    assert str(update) == "Workflow update failed"
    assert describe_failure(update) == "Workflow update failed: ApplicationError (NotInCart): not in the cart"
    # A plain cause shows its own text; a type equal to the class name is not repeated.
    plain = WorkflowUpdateFailedError(cause=LookupError("No update 'u1' on run r."))
    assert describe_failure(plain) == "Workflow update failed: LookupError: No update 'u1' on run r."
    same = WorkflowFailureError(cause=ApplicationError("boom", type="ApplicationError"))
    assert describe_failure(same) == "Workflow execution failed: ApplicationError: boom"
    # A cause without text is named; a cycle in the chain ends the line instead of looping.
    looping = ValueError("outer")
    inner = RuntimeError()
    looping.__cause__, inner.__cause__ = inner, looping
    assert describe_failure(looping) == "outer: RuntimeError"
    # Errors without a cause are their own text.
    assert describe_failure(WorkflowQueryFailedError("No worker answered")) == "No worker answered"


def test_the_crash_explorer_shows_a_failed_runs_causes() -> None:
    from engine._testing.explore import RunOutcome, _shown

    failed = RunOutcome(None, WorkflowFailureError(cause=ApplicationError("no", type="Refused")), None, [], [], None)
    assert _shown(failed) == "WorkflowFailureError('Workflow execution failed: ApplicationError (Refused): no')"
    assert _shown(RunOutcome(["a"], None, None, [], [], None)) == "['a']"
