"""Lesson 11 (the sandbox): a raffle that draws the same winner on replay; one price list for every run."""

from __future__ import annotations

import sys

from kernel_ext.exercises import Check, exercise

TICKETS = [f"ticket-{n}" for n in range(1, 21)]


@exercise(
    "a raffle that draws the same winner on replay",
    concept="determinism: workflow.random() and workflow.now() instead of random and datetime",
    hint="Take the draw from workflow.random() and the time from workflow.now(): both give the same "
    "values when the run's history is replayed.",
)
async def replay_safe_raffle(c: Check) -> None:
    run = await c.run("Raffle", TICKETS, task_queue="sandbox", workflow_id="raffle")
    c.require_completed(run, "the raffle runs in the sandbox (no restricted call)")
    replayed = await c.run("Raffle", TICKETS, task_queue="sandbox", workflow_id="raffle-replayed", replay_every_task=True)
    c.require_completed(replayed, "it completes when every workflow task replays the history")
    announced = replayed.activity_inputs("announce")
    result = replayed.result if isinstance(replayed.result, dict) else {}
    c.require(
        bool(announced) and result.get("winner") in TICKETS,
        "it announces a winner drawn from the tickets",
        f"it returned {replayed.result!r} and announced {announced!r}",
    )
    told = announced[0][0] if announced[0] else ""
    c.expect(
        told == f"{result.get('winner')} at {result.get('drawn_at')}",
        f"after replays it returns what it announced ({told})",
        f"it announced {told!r} but, after replaying, returned {result.get('winner')} at {result.get('drawn_at')}: "
        "the replay drew other values",
        hint="sandbox_unrestricted() silences the sandbox, not the problem: a value that changes on replay "
        "must come from workflow.random() / workflow.now().",
    )


ITEMS = ["book", "lamp", "chair"]


def _host_lookups() -> list[str] | None:
    """The lookups recorded by the worker's own pricelist module (None if it has none)."""
    module = sys.modules.get("pricelist")
    lookups = getattr(module, "LOOKUPS", None)
    return lookups if isinstance(lookups, list) else None


@exercise(
    "one price list for every run",
    concept="pass-through modules: the worker's own module, loaded once outside the sandbox, shared by every run",
    hint="Import it inside `with workflow.unsafe.imports_passed_through():` (or give the worker "
    "SandboxRestrictions.default.with_passthrough_modules(\"pricelist\")).",
)
async def one_price_list(c: Check) -> None:
    host = _host_lookups()
    before = len(host) if host is not None else 0
    run = await c.run("Quote", ITEMS, task_queue="sandbox", workflow_id="quote")
    c.require_completed(run, "Quote runs in the sandbox")
    c.expect(run.result == 87, "it prices the three items (87)", f"it returned {run.result!r}, expected 87")
    host = _host_lookups()
    seen = host[before:] if host is not None else []
    c.expect(
        sorted(seen) == sorted(ITEMS),
        "the workflow used the worker's own pricelist module: its lookups are in the worker's pricelist.LOOKUPS",
        "the workflow used a fresh copy of pricelist, not the worker's: the worker's pricelist.LOOKUPS "
        + (f"got {seen}" if seen else "did not get its lookups"),
        hint="The sandbox runs your own modules afresh for each run (also inside sandbox_unrestricted(), which only "
        "lifts the restrictions); import pricelist inside workflow.unsafe.imports_passed_through() to share the worker's.",
    )
