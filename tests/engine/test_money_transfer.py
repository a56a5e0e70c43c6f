"""The seed's money transfer: withdraw, then deposit that fails twice and is retried."""

from __future__ import annotations

from datetime import timedelta

from engine import Worker
from engine.testing import WorkflowEnvironment

from tests.engine.workflows import RUNS, MoneyTransfer, Transfer, deposit, withdraw


async def test_deposit_retried_with_backoff_and_withdraw_runs_once() -> None:
    RUNS.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="money", workflows=[MoneyTransfer], activities=[withdraw, deposit]):
        handle = await env.client.start_workflow(
            MoneyTransfer.run, Transfer("alice", "bob", 100), id="transfer-1", task_queue="money"
        )
        assert await handle.result() == ["withdrew 100 from alice", "deposited 100 into bob"]
        attempts = await handle.activity_attempts()
        history = await handle.fetch_history()
    await env.shutdown()

    assert RUNS["withdraw"] == 1
    assert RUNS["deposit"] == 3
    deposit_tries = [a for a in attempts if a.attempt > 0 and a.scheduled_event_id != attempts[0].scheduled_event_id]
    assert [a.outcome for a in deposit_tries] == ["failed", "failed", "completed"]
    delays = [
        (later.started_at - earlier.ended_at) for earlier, later in zip(deposit_tries, deposit_tries[1:])
    ]
    # Virtual time runs at real speed between jumps: allow the few ms the worker takes to poll.
    assert [round(d.total_seconds(), 1) for d in delays] == [1.0, 2.0], delays
    assert "bank bob unavailable (attempt 1)" in deposit_tries[0].failure["message"]

    types = [e.event_type for e in history.events]
    # Only the last attempt lands in history, as in Temporal.
    assert types.count("ActivityTaskStarted") == 2
    started = [e for e in history.events if e.event_type == "ActivityTaskStarted"]
    assert started[1].attributes["attempt"] == 3
    assert "attempt 2" in started[1].attributes["lastFailure"]["message"]
    assert types[-1] == "WorkflowExecutionCompleted"
    assert [e.event_id for e in history.events] == list(range(1, len(types) + 1))
