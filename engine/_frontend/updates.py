"""Client side of workflow updates: send one, wait for its stage, read its outcome."""

from __future__ import annotations

import asyncio
import enum
import uuid
from typing import TYPE_CHECKING, Any, Callable, Sequence

from engine._runtime import foreign as _foreign
from engine._history import updates as history_updates
from engine._frontend import interceptors as _client_interceptors
from engine.errors import WorkflowUpdateFailedError

if TYPE_CHECKING:
    from engine.client import WorkflowHandle

_POLL = 0.25  # how often a waiter looks for outcomes written by other processes


class WorkflowUpdateStage(enum.IntEnum):
    """How far an update must have gone before ``start_update`` returns (temporalio's values)."""

    ADMITTED = 1
    ACCEPTED = 2
    COMPLETED = 3


_REACHED = {
    WorkflowUpdateStage.ADMITTED: ("requested", "delivered", "accepted", *history_updates.FINAL_STATES),
    WorkflowUpdateStage.ACCEPTED: ("accepted", *history_updates.FINAL_STATES),
    WorkflowUpdateStage.COMPLETED: history_updates.FINAL_STATES,
}


def update_name(update: str | Callable[..., Any]) -> str:
    name = update if isinstance(update, str) else _foreign.handler_name(update, "update")
    if not name:
        raise ValueError(f"{update!r} is not an update: pass its name or a method decorated with @workflow.update.")
    return name


class WorkflowUpdateHandle:
    """An update sent to a workflow run: ``await handle.result()`` for what its handler returned."""

    def __init__(self, workflow: WorkflowHandle, run_id: str, update_id: str, name: str, result_type: Any = None) -> None:
        self._workflow = workflow
        self.workflow_id = workflow.id
        self.workflow_run_id = run_id
        self.id = update_id
        self.name = name
        self._result_type = result_type

    def __repr__(self) -> str:
        return f"<WorkflowUpdateHandle id={self.id!r} workflow_id={self.workflow_id!r}>"

    async def result(self) -> Any:
        """Wait for the update to finish; its result, or ``WorkflowUpdateFailedError``."""
        state, outcome = await wait_for(self._workflow, self.workflow_run_id, self.id, WorkflowUpdateStage.COMPLETED)
        outcome = outcome or {}
        converter = self._workflow._client.data_converter
        if state == "completed" and "success" in outcome:
            values = await converter._decode_json(outcome["success"], (self._result_type,), f"the result of update {self.name!r}")
            return values[0] if values else None
        raise WorkflowUpdateFailedError(cause=await converter.decode_failure(outcome.get("failure") or {}))


async def start(
    workflow: WorkflowHandle,
    update: str | Callable[..., Any],
    args: Sequence[Any],
    *,
    id: str | None,
    wait_for_stage: WorkflowUpdateStage,
    result_type: Any,
) -> WorkflowUpdateHandle:
    client = workflow._client
    name = update_name(update)
    if wait_for_stage == WorkflowUpdateStage.ADMITTED:
        raise ValueError("wait_for_stage=ADMITTED is not supported (as in temporalio): use ACCEPTED or COMPLETED.")
    payloads = await client.data_converter._encode_json(list(args), f"argument of update {name!r}")
    header = _client_interceptors.outgoing_header()
    if header:
        # Stored with the arguments: the update's input (Temporal's Input has header, name, args).
        payloads = {**payloads, "header": header}
    run_id = await workflow._resolve_run()
    update_id = id or str(uuid.uuid4())
    await client.store.run(
        history_updates.request_update, run_id, update_id, name, payloads, client.identity, client.clock.now()
    )
    handle = WorkflowUpdateHandle(workflow, run_id, update_id, name, result_type)
    state, outcome = await wait_for(workflow, run_id, update_id, wait_for_stage)
    if state in ("rejected", "failed"):
        # A refused update never started: say so now rather than through result().
        raise WorkflowUpdateFailedError(cause=await client.data_converter.decode_failure((outcome or {}).get("failure") or {}))
    return handle


async def wait_for(
    workflow: WorkflowHandle, run_id: str, update_id: str, stage: WorkflowUpdateStage
) -> tuple[str, dict[str, Any] | None]:
    client = workflow._client
    client._ensure_service()
    clock = client.clock
    if clock.skipping:
        clock.hold_auto_skip()  # type: ignore[attr-defined]
        client.store._wake(("timers", ""))
    try:
        while True:
            found = await client.store.read(history_updates.outcome, run_id, update_id)
            if found is None:
                raise WorkflowUpdateFailedError(cause=LookupError(f"No update {update_id!r} on run {run_id}."))
            if found[0] in _REACHED[stage]:
                return found
            waiter = client.store.waiter("update", f"{run_id}/{update_id}")
            try:
                await asyncio.wait_for(waiter.wait(), _POLL)
            except asyncio.TimeoutError:
                pass
    finally:
        if clock.skipping:
            clock.release_auto_skip()  # type: ignore[attr-defined]
