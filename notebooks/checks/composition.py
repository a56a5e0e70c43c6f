"""Lesson 15 (child workflows, updates, execute_* vs start_*): best quote, deliveries, guest list."""

from __future__ import annotations

import asyncio
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


def _child_ids(run: CheckedRun) -> list[str]:
    return [str(e.attributes.get("workflowId", "")) for e in run.events("StartChildWorkflowExecutionInitiated")]


def _tasks_that_started_children(run: CheckedRun) -> set[int]:
    last_task, found = 0, set()
    for event in run.events():
        if event.event_type == "WorkflowTaskCompleted":
            last_task = event.event_id
        elif event.event_type == "StartChildWorkflowExecutionInitiated":
            found.add(last_task)
    return found


async def _terminate_once_children_run(handle: Any) -> None:
    for _ in range(500):  # the check's time limit stops this too
        if any(e.event_type == "ChildWorkflowExecutionStarted" for e in (await handle.fetch_history()).events):
            break
        await asyncio.sleep(0.02)
    await handle.terminate(reason="the exercise check terminates the order")


@exercise(
    "deliveries that outlive the order",
    concept="child workflows: their ids, events and results; the parent-close policy",
    hint="workflow.start_child_workflow(Deliver.run, item, id=f\"{workflow.info().workflow_id}/{item}\", "
    "parent_close_policy=workflow.ParentClosePolicy.ABANDON) for each item, then await the handles together.",
)
async def deliveries(c: Check) -> None:
    run = await c.run("Fulfil", ["book", "lamp"], task_queue="shop", workflow_id="fulfil-1", timeout=10)
    c.require_completed(run)
    ids = _child_ids(run)
    c.require(
        bool(ids),
        "it starts child workflows (StartChildWorkflowExecutionInitiated)",
        "fulfil-1 started no child workflow: its history has no StartChildWorkflowExecutionInitiated",
        hint="Start one Deliver child per item: workflow.start_child_workflow(Deliver.run, item, id=...).",
    )
    expected = ["fulfil-1/book", "fulfil-1/lamp"]
    c.expect(
        sorted(ids) == expected,
        f"one child per item, with the ids {expected}",
        f"the children's ids were {ids}, expected {expected}",
        hint="Give each child an id you can find again: id=f\"{workflow.info().workflow_id}/{item}\".",
    )
    completed = run.count("ChildWorkflowExecutionCompleted")
    c.expect(
        completed == 2 and run.result == ["book delivered", "lamp delivered"],
        "the parent's history records both children completing (ChildWorkflowExecutionCompleted), "
        "and it returns their results in order",
        f"{completed} ChildWorkflowExecutionCompleted in the parent's history; it returned {run.result!r}",
        hint="Await the children's handles (asyncio.gather keeps the order) and return what they returned.",
    )
    c.expect(
        len(_tasks_that_started_children(run)) == 1,
        "both deliveries were started by one workflow task: they were on the road at once",
        f"the children were started by {len(_tasks_that_started_children(run))} workflow tasks: "
        "each delivery waited for the one before",
        hint="execute_child_workflow waits for the child's result; start_child_workflow gives a handle at once.",
    )

    order = await c.run("Fulfil", ["chair"], task_queue="shop", workflow_id="fulfil-2", timeout=10,
                        before_wait=_terminate_once_children_run)
    policies = [e.attributes.get("parentClosePolicy") for e in order.events("StartChildWorkflowExecutionInitiated")]
    # Only a child this order started: an earlier check's child of the same id may still be there.
    c.require(
        "fulfil-2/chair" in _child_ids(order) and order.count("ChildWorkflowExecutionStarted") > 0,
        "", f"the order fulfil-2 was terminated, and it had started no child with the id 'fulfil-2/chair' "
        f"(its children: {_child_ids(order)})",
    )
    child = await c.existing("fulfil-2/chair")
    c.expect(
        child.completed and child.result == "chair delivered",
        "when the order's run was terminated, its delivery went on and completed ('chair delivered')",
        f"when the order's run was terminated, its delivery fulfil-2/chair ended {child.status}"
        + (f" ({policies[0]})" if policies else ""),
        hint="By default a child is terminated with its parent (PARENT_CLOSE_POLICY_TERMINATE); "
        "parent_close_policy=workflow.ParentClosePolicy.ABANDON lets it go on"
        if "TERMINATE" in str(policies) else
        "REQUEST_CANCEL asks the child to cancel when the parent closes; ABANDON lets it go on.",
    )
