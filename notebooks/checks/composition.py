"""Lesson 15 (child workflows, updates, execute_* vs start_*): best quote, guest list."""

from __future__ import annotations

from typing import Any

from engine.errors import WorkflowUpdateFailedError
from kernel_ext.exercises import Check, CheckedRun, NotYet, exercise

SUPPLIERS = ["acme", "globex", "initech"]


def _tasks_that_scheduled(run: CheckedRun) -> list[int]:
    """For each ActivityTaskScheduled, the id of the WorkflowTaskCompleted that sent its command."""
    last_task, found = 0, []
    for event in run.events():
        if event.event_type == "WorkflowTaskCompleted":
            last_task = event.event_id
        elif event.event_type == "ActivityTaskScheduled":
            found.append(last_task)
    return found


@exercise(
    "ask every supplier at once",
    concept="execute_activity waits for the result; start_activity returns a handle to await later",
    hint="Start all three with workflow.start_activity(...) (no await yet), then await the handles together: "
    "min(await asyncio.gather(*handles)).",
)
async def best_quote(c: Check) -> None:
    run = await c.run("BestQuote", SUPPLIERS, task_queue="shop", workflow_id="best-quote", timeout=5)
    c.require_completed(run)
    asked = run.activity_inputs("get_price")
    c.require(
        sorted(a[0] for a in asked if a) == sorted(SUPPLIERS),
        "every supplier was asked once",
        f"the suppliers asked were {[a[0] for a in asked if a]}, expected each of {SUPPLIERS} once",
    )
    tasks = _tasks_that_scheduled(run)
    c.expect(
        len(set(tasks)) == 1,
        "the three requests were scheduled by one workflow task: they ran at once",
        f"the three requests were scheduled by {len(set(tasks))} workflow tasks: each waited for the one before",
    )
    c.expect(run.result == 95, "it returns the lowest price (95)", f"it returned {run.result!r}, expected the lowest price, 95")


async def _try_invite(handle: Any, name: str) -> tuple[bool, Any]:
    try:
        return True, await handle.execute_update("invite", name)
    except WorkflowUpdateFailedError as e:
        return False, e.__cause__ or e


@exercise(
    "a guest list that refuses doubles",
    concept="updates and their validators",
    hint="@workflow.update def invite(self, name) -> int appends and returns len(self.guests); "
    "@invite.validator def ...(self, name) raises when the name is empty or already there.",
)
async def guest_list(c: Check) -> None:
    answers: dict[str, tuple[bool, Any]] = {}

    async def guests(handle: Any) -> None:
        for step, name in (("ada", "Ada"), ("grace", "Grace"), ("ada again", "Ada"), ("empty", "")):
            answers[step] = await _try_invite(handle, name)
        await handle.signal("close")

    run = await c.run("GuestList", task_queue="shop", workflow_id="guest-list", timeout=5, before_wait=guests)
    if run.status == "TASK_FAILED":
        raise NotYet(f"guest-list: {run.problem}")
    first, second = answers.get("ada"), answers.get("grace")
    c.require(
        bool(first and first[0] and first[1] == 1 and second and second[0] and second[1] == 2),
        "invite answers with the number of guests so far (1, then 2)",
        f"inviting Ada, then Grace answered {_shown(first)}, then {_shown(second)}; expected 1, then 2",
        hint="An update is a method decorated with @workflow.update; what it returns is the caller's answer.",
    )
    c.require_completed(run, "close ends the run")
    accepted = run.count("WorkflowExecutionUpdateAccepted")
    again, empty = answers.get("ada again"), answers.get("empty")
    c.expect(
        bool(again and not again[0]),
        "inviting Ada twice is refused",
        "inviting Ada twice was accepted",
        hint="Refuse in a validator (@invite.validator), which runs before the update is recorded.",
    )
    c.expect(
        bool(empty and not empty[0]),
        "an empty name is refused",
        "an empty name was accepted",
        hint="The validator gets the update's arguments: refuse a name that is empty.",
    )
    c.expect(
        accepted == 2,
        "the history holds the two accepted invitations only (2 WorkflowExecutionUpdateAccepted)",
        f"the history holds {accepted} accepted updates, expected 2: a refused request must leave nothing in it",
        hint="Raise in the validator, not in the update handler: a validator's refusal is never recorded.",
    )


def _shown(answer: tuple[bool, Any] | None) -> str:
    if answer is None:
        return "nothing"
    ok, value = answer
    return repr(value) if ok else f"a refusal ({str(value).splitlines()[0]})"
