"""Runs for the explorer's tests: retries, a parallel saga, a child, a chain, a timer, a signal."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from engine import activity, workflow
from engine.common import RetryPolicy
from engine.errors import ApplicationError, WorkflowNotFoundError
from engine.saga import Saga

TRIES: dict[str, int] = {}


@activity.defn
async def flaky(name: str) -> str:
    TRIES[name] = TRIES.get(name, 0) + 1
    if TRIES[name] < 3:
        raise ApplicationError(f"try {TRIES[name]} of {name} failed")
    return f"ok {name}"


@activity.defn
async def book(what: str) -> str:
    if what == "flight":
        raise ApplicationError("sold out", non_retryable=True)
    return f"{what}-booked"


@activity.defn
async def cancel(booking: str) -> str:
    await asyncio.sleep(0.05)  # long enough for the two parallel cancellations to overlap
    return f"cancelled {booking}"


@workflow.defn
class Leaf:
    @workflow.run
    async def run(self, n: int) -> int:
        return n * 2


@workflow.defn
class Middle:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_child_workflow(Leaf.run, n, id=f"leaf-of-middle-{n}")


@workflow.defn
class Tree:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_child_workflow(Middle.run, 5, id="middle")


@workflow.defn
class Busy:
    """Retries, a timer, a signal, a child, and a continue-as-new once."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, rounds: int) -> str:
        policy = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
        value = await workflow.execute_activity(flaky, f"round {rounds}", start_to_close_timeout=timedelta(seconds=5), retry_policy=policy)
        await workflow.sleep(timedelta(seconds=3))
        await workflow.wait_condition(lambda: self.go)
        doubled = await workflow.execute_child_workflow(Leaf.run, rounds, id=f"leaf-{rounds}")
        if rounds > 1:
            workflow.continue_as_new(rounds - 1)
        return f"{value} {doubled}"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn
class Trip:
    """Books three things; the third fails; the two bookings are undone in parallel."""

    @workflow.run
    async def run(self) -> list[str]:
        saga = Saga(parallel_compensation=True)
        done = []
        options = dict(start_to_close_timeout=timedelta(seconds=5))
        try:
            for what in ("car", "hotel", "flight"):
                booking = await workflow.execute_activity(book, what, **options)  # type: ignore[arg-type]
                saga.add_compensation(cancel, booking, start_to_close_timeout=timedelta(seconds=5))
                done.append(booking)
        except Exception:
            await saga.compensate()
            raise
        return done


async def finish_busy(client: Any, workflow_id: str, result: Any) -> Any:
    """Signal each run of the chain on until ``result`` (the chain's result) is done."""
    done = asyncio.ensure_future(result)
    while not done.done():
        await asyncio.sleep(0.05)
        try:
            await client.get_workflow_handle(workflow_id).signal("proceed")
        except WorkflowNotFoundError:
            pass  # the run closed between the check and the signal
    return done.result()
