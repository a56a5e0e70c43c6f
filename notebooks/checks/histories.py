"""Lesson 18 (reading a history, logging): log once, price at checkout."""

from __future__ import annotations

import logging
from typing import Any

from kernel_ext.exercises import Check, NotYet, exercise

ITEMS = ["pen", "ink", "paper"]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().split(" ({")[0])  # the logger appends the run's details


@exercise(
    "log once",
    concept="replay-safe logging: workflow.logger is silent during replay",
    hint="Replace each say(...) in the workflow with workflow.logger.info(...): the logger stays silent while the "
    "code replays what was already done.",
)
async def log_once(c: Check) -> None:
    said: Any = c.namespace.get("said")
    if not isinstance(said, list):
        raise NotYet("said is not defined: run the cells above this one first.")
    before = len(said)
    base = logging.getLogger("engine.workflow")
    records, level = _Records(), base.level
    base.addHandler(records)
    base.setLevel(logging.INFO)
    try:
        run = await c.run("Checkout", ITEMS, task_queue="shop", workflow_id="checkout-log", replay_every_task=True)
    finally:
        base.removeHandler(records)
        base.setLevel(level)
    c.require_completed(run, "Checkout completes when every workflow task replays the history")
    repeated = len(said) - before
    c.expect(
        repeated == 0,
        "say ran no more (its lines repeat on every replay)",
        f"say ran {repeated} times for 3 steps: each replay said everything again",
    )
    c.expect(
        len(records.messages) == 3,
        f"the workflow logger wrote 3 lines, one per step: {records.messages}",
        f"the workflow logger wrote {len(records.messages)} line(s), expected 3 (one per step): {records.messages}",
        hint="Log each of the three steps with workflow.logger.info(...), once each.",
    )


@exercise(
    "price at checkout",
    concept="reading a history: what the workflow knew when it sent each command",
    hint="Wait for the checkout signal first (workflow.wait_condition(lambda: self.checked_out)), then ask for the price "
    "with the coupon the signals left in self.coupon.",
)
async def price_at_checkout(c: Check) -> None:
    async def coupon_then_checkout(handle: Any) -> None:
        import asyncio

        await asyncio.sleep(0.1)  # as a customer would: a moment after the start
        await handle.signal("apply_coupon", "SAVE20")
        await handle.signal("checkout")

    run = await c.run("Basket", ITEMS, task_queue="shop", workflow_id="basket-check", timeout=5, before_wait=coupon_then_checkout)
    c.require_completed(run)
    types = run.event_types()
    signalled = max((i for i, t in enumerate(types) if t == "WorkflowExecutionSignaled"), default=-1)
    priced = types.index("ActivityTaskScheduled") if "ActivityTaskScheduled" in types else -1
    inputs = run.activity_inputs("price")
    c.expect(
        priced > signalled >= 0,
        "price is scheduled after the coupon and checkout signals",
        f"price is scheduled (event {priced + 1}) before the checkout signal (event {signalled + 1}): "
        "the workflow priced before it knew the coupon",
    )
    c.expect(
        bool(inputs) and inputs[0][1:] == ["SAVE20"] and run.result == 24.0,
        "it gets the coupon and returns the discounted total (24.0)",
        f"price got {inputs[0] if inputs else 'nothing'} and the run returned {run.result!r}, expected the coupon and 24.0",
    )

    async def checkout_only(handle: Any) -> None:
        await handle.signal("checkout")

    plain = await c.run("Basket", ITEMS, task_queue="shop", workflow_id="basket-no-coupon", timeout=5, before_wait=checkout_only)
    c.expect(
        plain.completed and plain.result == 30.0,
        "a basket checked out without a coupon completes at full price (30.0)",
        f"a basket checked out without a coupon: {plain.problem or repr(plain.result)}",
        hint="Wait for the checkout, not for the coupon: a customer may have none.",
    )
