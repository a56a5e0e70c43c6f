"""A temporalio-written app, as a Temporal user writes it (temporalio imports only): the
temporalio switch's tests run it with `dlab run`, and give its definitions, made by the real
temporalio's decorators, to the engine."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.worker import Worker


@dataclass
class Order:
    item: str
    quantity: int


@activity.defn(name="reserve_stock")
async def reserve(order: Order) -> str:
    if order.quantity > 10:
        raise ApplicationError(f"only 10 {order.item} in stock", type="OutOfStock", non_retryable=True)
    return f"reserved {order.quantity} {order.item}"


@activity.defn
def ship(order: Order) -> str:
    return f"shipped {order.item}"


@workflow.defn
class OrderWorkflow:
    def __init__(self) -> None:
        self.approved = False
        self.note = ""

    @workflow.run
    async def run(self, order: Order) -> str:
        try:
            reserved = await workflow.execute_activity(
                reserve, order, start_to_close_timeout=timedelta(seconds=10), retry_policy=RetryPolicy(maximum_attempts=2)
            )
        except ActivityError as e:
            # Code that reads temporalio's failure objects, as hello_exception does.
            cause = e.cause
            detail = cause.failure.message if isinstance(cause, FailureError) and cause.failure else str(cause)
            return f"failed: {detail}"
        await workflow.wait_condition(lambda: self.approved)
        shipped = await workflow.execute_activity(ship, order, start_to_close_timeout=timedelta(seconds=10))
        return f"{reserved}; {shipped}; {self.note}"

    @workflow.signal
    def approve(self, note: str) -> None:
        self.approved = True
        self.note = note

    @workflow.query(name="is_approved")
    def approved_yet(self) -> bool:
        return self.approved

    @workflow.update
    def set_note(self, note: str) -> str:
        previous, self.note = self.note, note
        return previous


async def main(quantity: int) -> None:
    client = await Client.connect("localhost:7233")
    async with Worker(client, task_queue="orders", workflows=[OrderWorkflow], activities=[reserve, ship]):
        handle = await client.start_workflow(OrderWorkflow.run, Order("pen", quantity), id=f"order-{quantity}", task_queue="orders")
        if quantity <= 10:
            await handle.signal(OrderWorkflow.approve, "ok")
        print("result:", await handle.result())


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
