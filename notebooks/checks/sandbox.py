"""Lesson 11 (the sandbox): a raffle that draws the same winner on replay."""

from __future__ import annotations

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
