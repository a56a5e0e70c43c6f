"""Update-with-start (issue 11, item 7): send an update to a workflow, starting it first if
need be, in one transaction, as temporalio's ``WithStartWorkflowOperation`` and
``Client.execute_update_with_start_workflow``.

The operation's ``id_conflict_policy`` decides, as on Temporal's server: ``USE_EXISTING``
sends the update to the running run of the id (or starts one), ``FAIL`` refuses when one
runs, ``TERMINATE_EXISTING`` replaces it. A new run's first workflow task carries the
update (tests/histories/update_with_start.json has the shape a dev server writes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import TYPE_CHECKING, Any, Callable, Sequence

from engine._frontend.handles import WorkflowHandle, _hinted_result
from engine._frontend.updates import WorkflowUpdateHandle, WorkflowUpdateStage, update_name, wait_for
from engine._history import updates as history_updates
from engine._history.mutable_state import new_run_id
from engine._history.starts import StartRequest, start_workflow
from engine.common import WorkflowIDConflictPolicy
from engine.errors import WorkflowUpdateFailedError

if TYPE_CHECKING:
    from engine.client import Client

_unset = object()


class WithStartWorkflowOperation:
    """A workflow start that an update-with-start call may perform (temporalio's arguments:
    the workflow, its argument(s), ``id``, ``task_queue``, a required ``id_conflict_policy``
    and the other ``start_workflow`` options). Use each operation for one call."""

    def __init__(
        self,
        workflow: str | Callable[..., Any],
        arg: Any = _unset,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        id_conflict_policy: WorkflowIDConflictPolicy,
        result_type: type | None = None,
        **start_options: Any,
    ) -> None:
        if int(id_conflict_policy) == int(WorkflowIDConflictPolicy.UNSPECIFIED):
            raise ValueError(
                "WithStartWorkflowOperation needs an id_conflict_policy (as temporalio): "
                "USE_EXISTING to update the running workflow if there is one, FAIL or TERMINATE_EXISTING."
            )
        for unsupported in ("cron_schedule", "start_delay"):
            if start_options.get(unsupported):
                raise ValueError(f"Update-with-start cannot take {unsupported} (Temporal refuses it too): start such a workflow with start_workflow.")
        self._workflow = workflow
        self._args = ([arg] if arg is not _unset else []) + list(args)
        self._options = {"id": id, "task_queue": task_queue, "id_conflict_policy": id_conflict_policy, **start_options}
        self._result_type = result_type
        self._used = False
        self._handle: asyncio.Future[WorkflowHandle] | None = None

    async def workflow_handle(self) -> WorkflowHandle:
        """The handle of the run the update went to (started now, or already running);
        raises what the start raised if it failed."""
        if self._handle is None:
            raise RuntimeError("This operation was not used yet: pass it to client.execute_update_with_start_workflow(...) first.")
        return await asyncio.shield(self._handle)


def _start_and_update(tx: Any, request: StartRequest, update: tuple[str, str, dict[str, Any]], now: Any) -> tuple[str, bool]:
    """Start (or take the running run, per the policy) and request the update; the run id,
    and whether it was started now."""
    run_id = start_workflow(tx, request, now)
    if run_id == request.run_id:
        return run_id, True
    update_id, name, payloads = update
    history_updates.request_update(tx, run_id, update_id, name, payloads, request.identity, now)
    return run_id, False


async def start(
    client: Client,
    update: str | Callable[..., Any],
    args: Sequence[Any],
    operation: WithStartWorkflowOperation,
    *,
    id: str | None,
    wait_for_stage: WorkflowUpdateStage,
    result_type: Any,
) -> WorkflowUpdateHandle:
    if not isinstance(operation, WithStartWorkflowOperation):
        raise TypeError(f"start_workflow_operation must be a WithStartWorkflowOperation, not {type(operation).__name__}.")
    if operation._used:
        raise ValueError("This WithStartWorkflowOperation was used already: make a new one for each call.")
    if wait_for_stage == WorkflowUpdateStage.ADMITTED:
        raise ValueError("wait_for_stage=ADMITTED is not supported (as in temporalio): use ACCEPTED or COMPLETED.")
    operation._used = True
    loop = asyncio.get_running_loop()
    operation._handle = loop.create_future()
    operation._handle.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)  # read or not
    try:
        name = update_name(update)
        request, hinted = await client._start_request(operation._workflow, *operation._args[:1], args=operation._args[1:], **operation._options)
        payloads = await client.data_converter._encode_json(list(args), f"argument of update {name!r}")
        update_id = id or str(uuid.uuid4())
        # The run id is chosen here, so that a start that took the running run is told apart.
        request = dataclasses.replace(request, run_id=new_run_id(), update=(update_id, name, payloads))
        client._ensure_service()
        run_id, _started = await client.store.run(_start_and_update, request, (update_id, name, payloads), client.clock.now())
    except BaseException as e:
        if not operation._handle.done():
            operation._handle.set_exception(e)
        raise
    workflow = WorkflowHandle(
        client, request.workflow_id, run_id=run_id, result_run_id=run_id, first_execution_run_id=run_id,
        result_type=operation._result_type or hinted,
    )
    operation._handle.set_result(workflow)
    hinted_update = None if isinstance(update, str) else _hinted_result(update)
    handle = WorkflowUpdateHandle(workflow, run_id, update_id, name, result_type or hinted_update)
    state, outcome = await wait_for(workflow, run_id, update_id, wait_for_stage)
    if state in ("rejected", "failed"):
        raise WorkflowUpdateFailedError(cause=await client.data_converter.decode_failure((outcome or {}).get("failure") or {}))
    return handle
