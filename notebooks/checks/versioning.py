"""Lesson 06 (versioning): a receipt, without breaking anyone."""

from __future__ import annotations

from typing import Any

from engine.history import decode_payloads
from engine.replay import Replayer
from kernel_ext.exercises import Check, NotYet, exercise


@exercise(
    "a receipt, without breaking anyone",
    concept="versioning: workflow.patched keeps recorded runs replaying",
    hint="Put the new step behind its own patch: `if workflow.patched(\"receipt\"):` around send_receipt, and keep the "
    "fraud-check patch as it is.",
)
async def receipt_without_breaking(c: Check) -> None:
    order = c.defined("workflow", "Order")
    for name, recorded in (("order-1", "order_1_history"), ("order-3", "order_3_history")):
        history: Any = c.namespace.get(recorded)
        if history is None:
            raise NotYet(f"{recorded} is not defined: run the cells above this one first.")
        try:
            Replayer(workflows=[order]).replay_workflow(history)
            c.ok(f"your Order replays {name}'s history")
        except Exception as e:
            c.require(False, "", f"your Order cannot replay {name}: {str(e).splitlines()[0]}",
                      hint="A run in flight replays with the new code: a new step must be behind its own "
                      "workflow.patched(...) so that old histories take the old path.")
    run = await c.run("Order", "order-check", task_queue="orders", workflow_id="order-check", timeout=10)
    c.require_completed(run, "a new order completes")
    c.expect(
        "send_receipt" in run.activity_types(),
        "a new order sends the receipt",
        f"a new order ran {run.activity_types()}: no send_receipt",
        hint="New runs take the patched path: call send_receipt inside `if workflow.patched(\"receipt\"):`.",
    )
    markers = [
        str(decode_payloads((e.attributes.get("details") or {}).get("patch-data")))
        for e in run.events("MarkerRecorded")
    ]
    c.expect(
        any("receipt" in m for m in markers),
        "its history records the receipt's patch marker",
        "its history has no marker for the receipt: old runs could not tell it from a new step",
    )
