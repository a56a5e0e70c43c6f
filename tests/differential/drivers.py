"""One driver per scenario, written with temporalio's client API: the same calls on both sides.

A driver starts its workflow, signals, queries, updates, cancels or terminates it as a user
would, and returns what it saw (results, errors, query answers) as plain data, with the ids
of the workflows whose histories the comparison reads. Nothing here imports ``engine``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Awaitable, Callable

from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from tests.differential import workflows as w

TASK_QUEUE = "differential"
WAIT = 30.0  # seconds a driver waits for anything before it gives up


@dataclass
class Driven:
    """What a driver saw, and the workflow ids whose histories (every run) are compared."""

    outcome: dict[str, Any]
    workflow_ids: list[str] = field(default_factory=list)


Driver = Callable[[Client, str], Awaitable[Driven]]
DRIVERS: dict[str, Driver] = {}


def driver(fn: Driver) -> Driver:
    DRIVERS[fn.__name__] = fn
    return fn


async def _result(handle: Any) -> dict[str, Any]:
    try:
        return {"result": await asyncio.wait_for(handle.result(), WAIT)}
    except WorkflowFailureError as err:
        return {"error": w.describe(err)}


async def _start(client: Client, run: Any, *args: Any, id: str, **kwargs: Any) -> Any:
    return await client.start_workflow(run, *args, id=id, task_queue=TASK_QUEUE, **kwargs)


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Polls ``check`` (a query, a describe) until it holds: the driver waits for the run, never sleeps blindly."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


async def _status(client: Client, workflow_id: str) -> str:
    description = await client.get_workflow_handle(workflow_id).describe()
    return description.status.name if description.status is not None else "None"


async def _has_event(client: Client, workflow_id: str, event_type: str) -> bool:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return event_type in history.to_json()


async def _simple(client: Client, wid: str, run: Any, *args: Any, **kwargs: Any) -> Driven:
    return Driven(await _result(await _start(client, run, *args, id=wid, **kwargs)), [wid])


@driver
async def activity_retries(client: Client, wid: str) -> Driven:
    return await _simple(client, wid, w.ActivityRetries.run)


@driver
async def activity_timeouts(client: Client, wid: str) -> Driven:
    return await _simple(client, wid, w.ActivityTimeouts.run)


@driver
async def heartbeats(client: Client, wid: str) -> Driven:
    return await _simple(client, wid, w.Heartbeats.run, 3)


@driver
async def timers(client: Client, wid: str) -> Driven:
    return await _simple(client, wid, w.Timers.run)


@driver
async def wait_conditions(client: Client, wid: str) -> Driven:
    handle = await _start(client, w.WaitConditions.run, id=wid)
    await _until(lambda: _has_event(client, wid, "WORKFLOW_TASK_COMPLETED"), "the first workflow task")
    await handle.signal(w.WaitConditions.release)
    return Driven(await _result(handle), [wid])


@driver
async def signals_and_queries(client: Client, wid: str) -> Driven:
    handle = await _start(client, w.SignalsAndQueries.run, id=wid)
    await handle.signal(w.SignalsAndQueries.add, "first")
    await handle.signal("add", "second")
    await _until(lambda: _counted(handle, 2), "two signals to be handled")
    seen: dict[str, Any] = {"items-so-far": await handle.query("items-so-far")}
    try:
        await handle.query("no-such-query")
    except Exception as err:  # noqa: BLE001 - which error the client raises is compared
        # The class, and temporalio's words (the engine adds what to do after them).
        words = "Query handler for 'no-such-query' expected but not found, known queries: ["
        seen["unknown query"] = {"class": type(err).__name__, "temporalio's words": str(err).startswith(words)}
    await handle.signal("close-list")
    outcome = await _result(handle)
    seen["count after close"] = await handle.query(w.SignalsAndQueries.count)
    return Driven({**outcome, "queries": seen}, [wid])


async def _counted(handle: Any, n: int) -> bool:
    return await handle.query(w.SignalsAndQueries.count) >= n


@driver
async def updates(client: Client, wid: str) -> Driven:
    handle = await _start(client, w.Updates.run, 1, id=wid)
    seen: list[Any] = [await handle.execute_update(w.Updates.add, 5)]
    for amount in (-1, 13):
        try:
            await handle.execute_update(w.Updates.add, amount)
        except WorkflowUpdateFailedError as err:
            seen.append(w.describe(err))
    seen.append(await handle.execute_update("finish"))
    return Driven({**await _result(handle), "updates": seen}, [wid])


@driver
async def children(client: Client, wid: str) -> Driven:
    driven = await _simple(client, wid, w.Children.run)
    return Driven(driven.outcome, [wid, f"{wid}-greet", f"{wid}-fail", f"{wid}-wait"])


@driver
async def parent_close_policies(client: Client, wid: str) -> Driven:
    outcome = await _result(await _start(client, w.ParentClosePolicies.run, id=wid))
    ids = {p: f"{wid}-{p}" for p in ("terminate", "abandon", "request_cancel")}
    # The server applies the policies after the parent closed: wait for the two that end.
    await _until(lambda: _closed(client, ids["terminate"]), "the TERMINATE child to close")
    await _until(lambda: _closed(client, ids["request_cancel"]), "the REQUEST_CANCEL child to close")
    statuses = {p: await _status(client, i) for p, i in ids.items()}
    abandoned = client.get_workflow_handle(ids["abandon"])
    await abandoned.signal(w.Child.release)
    statuses["abandon, released"] = (await _result(abandoned))
    return Driven({**outcome, "children": statuses}, [wid, *ids.values()])


async def _closed(client: Client, workflow_id: str) -> bool:
    return await _status(client, workflow_id) != "RUNNING"


@driver
async def continue_as_new(client: Client, wid: str) -> Driven:
    return await _simple(client, wid, w.ContinueAsNew.run, 3)


async def _reset(client: Client, workflow_id: str, run_id: str, event_id: int, reason: str) -> str:
    """Reset a run to event ``event_id``; the new run's id. temporalio has reset only as the raw
    service call; the engine's handle has ``reset`` (this is the one place the sides differ)."""
    handle: Any = client.get_workflow_handle(workflow_id, run_id=run_id)
    if hasattr(handle, "reset"):
        return str((await handle.reset(reason=reason, event_id=event_id)).run_id)
    import uuid

    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

    request = ResetWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
        reason=reason, workflow_task_finish_event_id=event_id, request_id=str(uuid.uuid4()),
    )
    return str((await client.workflow_service.reset_workflow_execution(request)).run_id)


@driver
async def reset(client: Client, wid: str) -> Driven:
    handle = await _start(client, w.ResetAfterSignal.run, id=wid)
    await _until(lambda: _has_event(client, wid, "WORKFLOW_TASK_COMPLETED"), "the first workflow task")
    await handle.signal(w.ResetAfterSignal.name, "Ada")
    first = await _result(handle)
    events = json.loads((await handle.fetch_history()).to_json())["events"]
    point = next(int(e["eventId"]) for e in events if e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED")
    base_run_id = events[0]["workflowExecutionStartedEventAttributes"]["originalExecutionRunId"]
    new_run_id = await _reset(client, wid, base_run_id, point, "reset by the differential suite")
    second = await _result(client.get_workflow_handle(wid, run_id=new_run_id))
    return Driven({"first": first, "reset to": point, "second": second}, [wid])


@driver
async def cancel_inside(client: Client, wid: str) -> Driven:
    return Driven((await _simple(client, wid, w.CancelInside.run)).outcome, [wid, f"{wid}-child"])


@driver
async def cancelled_by_client(client: Client, wid: str) -> Driven:
    handle = await _start(client, w.CancelledByClient.run, id=wid)
    await _until(lambda: _has_event(client, wid, "ACTIVITY_TASK_SCHEDULED"), "the activity to be scheduled")
    await handle.cancel()
    return Driven(await _result(handle), [wid])


@driver
async def terminated(client: Client, wid: str) -> Driven:
    handle = await _start(client, w.WaitsLong.run, id=wid)
    await _until(lambda: _has_event(client, wid, "TIMER_STARTED"), "the timer to start")
    await handle.terminate("a detail", reason="enough waiting")
    return Driven({**await _result(handle), "status": await _status(client, wid)}, [wid])


@driver
async def execution_timeout(client: Client, wid: str) -> Driven:
    handle = await _start(client, w.WaitsLong.run, id=wid, execution_timeout=timedelta(seconds=5))
    return Driven({**await _result(handle), "status": await _status(client, wid)}, [wid])


@driver
async def patches(client: Client, wid: str) -> Driven:
    return await _simple(client, wid, w.Patches.run, "Ada")


@driver
async def search_attributes_and_memo(client: Client, wid: str) -> Driven:
    handle = await _start(
        client, w.SearchAttributesAndMemo.run, id=wid, memo={"note": "first", "draft": True},
        search_attributes=TypedSearchAttributes([SearchAttributePair(w.COLOUR, "red")]),
    )
    outcome = await _result(handle)
    description = await handle.describe()
    # Visibility on a real server is eventually consistent: the closed run's attributes may lag.
    described = {
        "memo": await description.memo(),
        "colour": description.typed_search_attributes.get(w.COLOUR),
        "change_version": description.typed_search_attributes.get(SearchAttributeKey.for_keyword_list("TemporalChangeVersion")),
    }
    return Driven({**outcome, "described": described}, [wid])


@driver
async def saga(client: Client, wid: str) -> Driven:
    return await _simple(client, wid, w.Saga.run)


@driver
async def fails_with_application_error(client: Client, wid: str) -> Driven:
    return await _simple(client, wid, w.FailsWithApplicationError.run)


@driver
async def fails_from_activity(client: Client, wid: str) -> Driven:
    return await _simple(client, wid, w.FailsFromActivity.run)


@driver
async def fails_with_declared_exception(client: Client, wid: str) -> Driven:
    return await _simple(client, wid, w.FailsWithDeclaredException.run)


@driver
async def fails_task(client: Client, wid: str) -> Driven:
    handle = await _start(client, w.FailsTask.run, id=wid)
    await _until(lambda: _has_event(client, wid, "WORKFLOW_TASK_FAILED"), "the workflow task to fail")
    status = await _status(client, wid)
    await handle.terminate(reason="the task kept failing")
    return Driven({"status while failing": status, **await _result(handle)}, [wid])


@driver
async def child_fails(client: Client, wid: str) -> Driven:
    return Driven((await _simple(client, wid, w.ChildFails.run)).outcome, [wid, f"{wid}-child"])


@driver
async def side_effects(client: Client, wid: str) -> Driven:
    return await _simple(client, wid, w.SideEffects.run)
