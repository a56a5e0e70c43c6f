"""Workflow updates: validated, accepted, answered; rejected ones leave no trace; accepted ones
replay from history; Temporal's own update history replays in our engine."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from engine import Worker, workflow
from engine.client import WorkflowUpdateStage
from engine.errors import ApplicationError, WorkflowUpdateFailedError, describe_failure
from engine.history import load_history
from engine.replay import Replayer
from engine.testing import WorkflowEnvironment

from tests.engine.workflows import echo

SHARED_HISTORIES = Path(__file__).resolve().parents[1] / "histories"


@workflow.defn
class Cart:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.discount = 0
        self.done = False

    @workflow.run
    async def run(self, customer: str) -> dict:
        await workflow.wait_condition(lambda: self.done)
        return {"customer": customer, "items": self.items, "discount": self.discount}

    @workflow.signal
    def add_item(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def item_count(self) -> int:
        return len(self.items)

    @workflow.update
    async def set_discount(self, percent: int) -> str:
        greeting = await workflow.execute_activity(echo, f"{percent}% off", start_to_close_timeout=timedelta(seconds=5))
        self.discount = percent
        return greeting

    @set_discount.validator
    def validate_discount(self, percent: int) -> None:
        if not 0 <= percent <= 50:
            raise ValueError(f"discount {percent}% is not between 0 and 50")

    @workflow.update
    def remove_item(self, item: str) -> int:
        if item not in self.items:
            raise ApplicationError(f"{item!r} is not in the cart", type="NotInCart")
        self.items.remove(item)
        return len(self.items)


async def _types(handle) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.event_type for e in (await handle.fetch_history()).events]


@pytest.mark.parametrize("cached", [True, False])
async def test_updates_are_validated_accepted_and_answered(cached: bool) -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Cart], activities=[echo], max_cached_workflows=100 if cached else 0):
        handle = await env.client.start_workflow(Cart.run, "Barbara", id=f"cart-{cached}", task_queue="q")
        await handle.signal(Cart.add_item, "apple")
        await handle.signal(Cart.add_item, "pear")
        assert await handle.execute_update(Cart.set_discount, 10) == "10% off"

        before = await _types(handle)
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(Cart.set_discount, 90)
        assert "between 0 and 50" in str(info.value.cause)
        # A rejected update leaves no event at all, as on a Temporal server.
        assert await _types(handle) == before

        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update("remove_item", "plum")
        assert isinstance(info.value.cause, ApplicationError) and info.value.cause.type == "NotInCart"
        assert await handle.execute_update(Cart.remove_item, "pear") == 1

        with pytest.raises(WorkflowUpdateFailedError) as unknown:
            await handle.execute_update("nope")
        # temporalio's text; the reason is in the cause, and describe_failure shows both.
        assert str(unknown.value) == "Workflow update failed" and "has no update 'nope'" in str(unknown.value.cause)
        assert describe_failure(unknown.value).startswith("Workflow update failed: ApplicationError")
        assert "has no update 'nope'" in describe_failure(unknown.value)

        await handle.signal(Cart.finish)
        assert await handle.result() == {"customer": "Barbara", "items": ["apple"], "discount": 10}
    history = await handle.fetch_history()
    await env.shutdown()
    accepted = [e for e in history.events if e.event_type == "WorkflowExecutionUpdateAccepted"]
    completed = [e for e in history.events if e.event_type == "WorkflowExecutionUpdateCompleted"]
    assert [e.attributes["acceptedRequest"]["input"]["name"] for e in accepted] == ["set_discount", "remove_item", "remove_item"]
    first = accepted[0].attributes
    assert first["acceptedRequestMessageId"] == f"{first['protocolInstanceId']}/request"
    assert completed[0].attributes["acceptedEventId"] == str(accepted[0].event_id)
    assert "success" in completed[0].attributes["outcome"]
    assert "failure" in completed[1].attributes["outcome"]
    # The accepted update's activity sits between its Accepted and Completed events.
    ids = [e.event_type for e in history.events]
    assert ids.index("WorkflowExecutionUpdateAccepted") < ids.index("ActivityTaskScheduled") < ids.index("WorkflowExecutionUpdateCompleted")
    # Replaying the whole history re-delivers the accepted updates from it.
    Replayer(workflows=[Cart]).replay_workflow(history)


async def test_an_update_sent_while_no_worker_runs_is_answered_when_one_starts() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    handle = await env.client.start_workflow(Cart.run, "Ada", id="cart-later", task_queue="q")
    await handle.signal(Cart.add_item, "fig")
    pending = asyncio.ensure_future(handle.execute_update(Cart.remove_item, "fig"))
    await asyncio.sleep(0.05)
    assert not pending.done()
    async with Worker(env.client, task_queue="q", workflows=[Cart], activities=[echo]):
        assert await asyncio.wait_for(pending, 10) == 0
        update = await handle.start_update(Cart.set_discount, 5, id="my-update")
        assert update.id == "my-update"
        assert await update.result() == "5% off"
        # The same update id again is the same update, answered once.
        again = await handle.start_update(Cart.set_discount, 5, id="my-update", wait_for_stage=WorkflowUpdateStage.COMPLETED)
        assert await again.result() == "5% off"
        await handle.signal(Cart.finish)
        assert (await handle.result())["discount"] == 5
    assert (await _types(handle)).count("WorkflowExecutionUpdateAccepted") == 2
    await env.shutdown()


async def test_an_update_to_a_closed_run_is_refused() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Cart], activities=[echo]):
        handle = await env.client.start_workflow(Cart.run, "Ada", id="cart-closed", task_queue="q")
        await handle.signal(Cart.finish)
        await handle.result()
        with pytest.raises(Exception, match="already closed"):
            await handle.execute_update(Cart.remove_item, "x")
    await env.shutdown()


@workflow.defn(name="SignalsQueriesUpdateWorkflow")
class TemporalsCart(Cart):
    """The workflow of tests/histories/signals_queries_update.json, written with our API."""


@workflow.defn(name="SignalsQueriesUpdateWorkflow")
class TemporalsCartNoValidator:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, customer: str) -> dict:
        await workflow.wait_condition(lambda: self.done)
        return {}

    @workflow.signal
    def add_item(self, item: str) -> None:
        pass

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.update
    async def set_discount(self, percent: int) -> str:
        return "no activity"  # the history has the handler's activity: must not replay


def test_a_real_temporal_update_history_replays_in_our_engine() -> None:
    path = SHARED_HISTORIES / "signals_queries_update.json"
    history = load_history(path)
    # The recorded activity is 'greet'; ours is called 'echo', so rename in the copy.
    for event in history.events:
        if event.event_type == "ActivityTaskScheduled":
            event.attributes["activityType"]["name"] = "echo"
    Replayer(workflows=[TemporalsCart]).replay_workflow(history)
    result = Replayer(workflows=[TemporalsCartNoValidator]).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None and "ActivityTaskScheduled" in str(result.replay_failure)
