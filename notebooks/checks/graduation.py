"""Lesson 09 (from a notebook to Temporal): a transfer with a fee, the same on the engine and on Temporal."""

from __future__ import annotations

import asyncio
from typing import Any

from kernel_ext._temporal import current_target
from kernel_ext.exercises import Check, NotYet, exercise
from kernel_ext.history_compare import compare_histories

DETAILS = {"source": "dana", "target": "erin", "amount": 400}
# The check's own workers poll it on both sides (the notebook's temporalio worker serves the cells
# as they were when it started); the same queue and id on both, so the histories compare.
QUEUE = "fee-check"
WORKFLOW_ID = "fee"
TEMPORAL_TIMEOUT = 8.0  # seconds for the run on Temporal (it takes well under one)
ORDER = ["withdraw", "charge_fee", "deposit"]
ORDER_HINT = "The fee is charged once the money is withdrawn, before it is deposited: call charge_fee between the two."


@exercise(
    "a fee, the same on the engine and on Temporal",
    concept="one workflow code for both: temporalio's imports, definitions in %%workflow/%%activity cells",
    hint="Write the cell as a Temporal app would (from temporalio import workflow) and call "
    "charge_fee between withdraw and deposit; a worker outside the notebook sees only the "
    "%%workflow/%%activity cells.",
)
async def fee_on_both(c: Check) -> None:
    c.defined("workflow", "TransferWithFee")
    engine_worker = await c.session.start_worker(QUEUE, _free_name(c, "check-engine"))
    try:
        ours = await c.run("TransferWithFee", DETAILS, task_queue=QUEUE, workflow_id=WORKFLOW_ID)
    finally:
        await c.session.stop_worker(engine_worker.name)
    c.require_completed(ours, "it runs on the engine")
    c.require(ours.activity_types() == ORDER, "on the engine: withdraw, charge_fee, deposit, in this order",
              f"on the engine it ran {', '.join(ours.activity_types()) or 'no activity'}", hint=ORDER_HINT)
    target = current_target()
    if target is None or not target.connected:
        raise NotYet("the notebook is not connected to Temporal any more.", "Run `%temporal dev-server start` above again.")
    try:
        types = target.real_workflow_types(list(c.session.sources))
    except Exception as e:  # noqa: BLE001 - the learner's cells under the real SDK: any refusal is a "not yet"
        raise NotYet(f"the cells do not load with the real temporalio SDK: {e}") from None
    c.require("TransferWithFee" in types, "Temporal's SDK sees TransferWithFee as a workflow",
              "Temporal's SDK does not see TransferWithFee as a workflow: its cell decorates it with the engine's "
              "`workflow` (from engine import workflow), which only the engine reads",
              hint="Import as a Temporal app does: from temporalio import workflow.")
    theirs = await _run_on_temporal(c, target)
    result = theirs[0]
    c.expect(result == ours.result, "the same result on Temporal",
             f"Temporal's run returned {result!r}, the engine's {ours.result!r}")
    assert ours.history is not None
    comparison = compare_histories(ours.history, theirs[1])
    wrong = [row for row in comparison.rows() if row[3].startswith("NOT")]
    c.expect(comparison.same, "the two histories differ only where two runs of the same code may differ",
             f"the histories differ where they may not: {wrong[0] if wrong else comparison.summary()}")


async def _run_on_temporal(c: Check, target: Any) -> tuple[Any, Any]:
    """Run TransferWithFee on the server with a temporalio worker of the check's own."""
    from temporalio.common import WorkflowIDConflictPolicy

    taken = {w.name for w in c.session.workers()}
    name = _free_name(c, "check-temporal", target)
    try:
        await target.start_worker(list(c.session.sources), QUEUE, name, taken)
    except Exception as e:  # noqa: BLE001 - temporalio's refusal of the learner's code
        raise NotYet(f"a temporalio worker cannot serve the cells: {e}") from None
    try:
        handle = await target.client.start_workflow(
            "TransferWithFee", DETAILS, id=WORKFLOW_ID, task_queue=QUEUE, id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING)
        try:
            result = await asyncio.wait_for(handle.result(), TEMPORAL_TIMEOUT)
        except asyncio.TimeoutError:
            history = await target.runs().history(WORKFLOW_ID, handle.result_run_id)
            await handle.terminate(reason="ended by the exercise check")
            failed = [e for e in history.events if e.event_type == "WorkflowTaskFailed"]
            why = (failed[-1].attributes.get("failure") or {}).get("message", "") if failed else ""
            raise NotYet(f"on Temporal the run did not finish in {TEMPORAL_TIMEOUT:g} s"
                         + (f": its workflow task fails with {why!r}" if why else ""),
                         "A worker outside the notebook runs only the %%workflow/%%activity cells: a name from "
                         "another cell does not exist there. Move it into a definition cell.") from None
        except Exception as e:  # noqa: BLE001 - the run failed on Temporal: the learner's to see
            raise NotYet(f"on Temporal the run failed: {type(e).__name__}: {getattr(e, 'cause', None) or e}") from None
        return result, await target.runs().history(WORKFLOW_ID, handle.result_run_id)
    finally:
        await target.stop_worker(name)


def _free_name(c: Check, prefix: str, target: Any = None) -> str:
    taken = {w.name for w in c.session.workers()} | set(getattr(target, "workers", ()))
    return next(n for n in (f"{prefix}-{i}" for i in range(1, 1000)) if n not in taken)
