"""The worker's side of local activities: run the requests a workflow task's code made,
retrying in process, and hand each outcome back so the code goes on in the same task."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine._conversion.payload_converter import from_json_payloads
from engine._runtime.commands import Command
from engine._runtime.instance import WorkflowInstance
from engine._runtime.local_activities import Outcome, Request, result_payload
from engine._runtime.interceptors import ExecuteActivityInput
from engine.activity import Info, _CompleteAsyncError, _Context, _current
from engine.worker._activity_interceptors import EngineActivityInbound, EngineActivityOutbound, activity_chain
from engine.errors import ApplicationError, PayloadError

if TYPE_CHECKING:
    from engine.worker import Worker


async def run_local_activities(worker: "Worker", instance: WorkflowInstance) -> list[Command]:
    """Until the code waits for nothing local: run what it scheduled (together, as core
    does), hand the code each outcome as it comes (several at once in schedule order), let
    the code go on; its new commands. An activity the code cancels meanwhile is stopped."""
    produced: list[Command] = []
    local = instance._local
    if local is None or not local.pending:
        return produced
    local.running = True
    running: dict[int, asyncio.Task[Outcome]] = {}
    stopping: set[int] = set()  # told to stop; the code waits for their outcome
    try:
        while local.pending and not instance._finished:
            for request in sorted(local.pending.values(), key=lambda r: r.seq):
                if request.seq not in running:
                    running[request.seq] = asyncio.ensure_future(_run(worker, instance, request))
            _stop_cancelled(local.pending, running, stopping)
            waiting = {seq: task for seq, task in running.items() if seq in local.pending}
            if not waiting:
                break
            await asyncio.wait(waiting.values(), return_when=asyncio.FIRST_COMPLETED)
            for seq in sorted(seq for seq, task in waiting.items() if task.done()):
                outcome = running.pop(seq).result()
                local.resolve(seq, dataclasses.replace(outcome, activation_index=local.activation_index))
            local.activation_index += 1
            produced += instance.continue_activation()
    finally:
        local.running = False
        for task in running.values():  # cancelled without waiting (TRY_CANCEL, ABANDON), or the run ended
            task.cancel()
    return produced


def _stop_cancelled(pending: dict[int, Any], running: dict[int, "asyncio.Task[Outcome]"], stopping: set[int]) -> None:
    """Stop the activities the code cancelled: one resolved already (no wait) is dropped; one
    the code waits for is told, and its outcome is the cancel (see _run)."""
    for seq in list(running):
        request = pending.get(seq)
        if request is None:
            running.pop(seq).cancel()
        elif request.cancel_requested and seq not in stopping:
            stopping.add(seq)
            running[seq].cancel()


async def _run(worker: "Worker", instance: WorkflowInstance, request: Request) -> Outcome:
    attempt = [request.attempt]
    try:
        return await _attempts(worker, instance, request, attempt)
    except asyncio.CancelledError:
        if not request.cancel_requested:
            raise
        # The code cancelled it and waits for it to stop (WAIT_CANCELLATION_COMPLETED): the
        # outcome is the cancel, as the activity's own CancelledError is recorded in temporalio.
        return Outcome(attempt[0], failure={"message": "Cancelled", "canceledFailureInfo": {}}, complete_time=worker.client.clock.now())


async def _attempts(worker: "Worker", instance: WorkflowInstance, request: Request, attempt_box: list[int]) -> Outcome:
    clock = worker.client.clock
    policy = request.retry_policy
    deadline = request.original_schedule_time + request.schedule_to_close if request.schedule_to_close else None
    attempt = request.attempt
    while True:
        attempt_box[0] = attempt
        error = await _attempt(worker, instance, request, attempt)
        now = clock.now()
        if not isinstance(error, BaseException):
            return Outcome(attempt, result=error, complete_time=now)
        failure = instance.failure_converter.to_failure(error, instance.payload_converter)
        app = failure.get("applicationFailureInfo") or {}
        delay = policy.delay_before_attempt(attempt + 1)
        final = (
            app.get("nonRetryable")
            or not policy.is_retryable(app.get("type"))
            or not policy.allows_attempt(attempt + 1)
            or (deadline is not None and now + delay > deadline)
        )
        if final:
            return Outcome(attempt, failure=failure, complete_time=now)
        if delay > request.retry_threshold:
            return Outcome(attempt, failure=failure, backoff=delay, complete_time=now)
        await asyncio.sleep(delay.total_seconds())  # a short local backoff: real time, as in core
        attempt += 1


async def _attempt(worker: "Worker", instance: WorkflowInstance, request: Request, attempt: int) -> Any:
    """The result payload of one attempt, or the exception it raised."""
    defn = worker._activities.get(request.activity_type)
    if defn is None:
        return ApplicationError(
            f"Local activity {request.activity_type!r} is not registered on this worker (it has: "
            f"{', '.join(sorted(worker._activities)) or 'none'}): a local activity runs on the worker "
            "that runs its workflow, so add it to that Worker(activities=[...]).",
            type="NotFoundError", non_retryable=True,
        )
    converter = worker.client.data_converter.payload_converter
    try:
        args = from_json_payloads(converter, request.input, defn.arg_types, f"the input of local activity {defn.name!r}")
    except PayloadError as e:
        return ApplicationError(str(e), type="PayloadError", non_retryable=True)
    started = worker.client.clock.now()
    info = instance.info

    def make_info() -> Info:
        return Info(
            activity_id=request.activity_id, activity_type=request.activity_type, attempt=attempt,
            workflow_id=info.workflow_id, workflow_run_id=info.run_id, workflow_type=info.workflow_type,
            workflow_namespace=worker.client.namespace, task_queue=info.task_queue,
            scheduled_time=request.original_schedule_time, started_time=started,
            schedule_to_close_timeout=request.schedule_to_close, start_to_close_timeout=request.start_to_close,
            heartbeat_timeout=None, heartbeat_details=[], is_local=True,
        )

    context = _Context(make_info, lambda _: _no_heartbeat, converter)
    limit = (request.start_to_close or request.schedule_to_close or timedelta(0)).total_seconds() or None
    token = _current.set(context)
    try:
        if worker._interceptors:
            # Through the activity interceptors, as temporalio runs a local activity.
            chain = activity_chain(worker._interceptors, EngineActivityInbound(worker._executor))
            chain.init(EngineActivityOutbound(context))
            intercepted = ExecuteActivityInput(defn.fn, args, None if defn.is_async else worker._executor, dict(request.headers))
            result = await asyncio.wait_for(chain.execute_activity(intercepted), limit)
        elif defn.is_async:
            result = await asyncio.wait_for(defn.fn(*args), limit)
        else:
            ctx = contextvars.copy_context()
            call = asyncio.get_running_loop().run_in_executor(worker._executor, ctx.run, defn.fn, *args)
            result = await asyncio.wait_for(call, limit)
    except asyncio.TimeoutError:
        return ApplicationError("local activity ran past its start-to-close timeout", type="TimeoutError")
    except _CompleteAsyncError:
        return ApplicationError("a local activity cannot complete asynchronously", type="IllegalState", non_retryable=True)
    except asyncio.CancelledError:
        raise
    except BaseException as e:  # noqa: BLE001 - every failure is the attempt's outcome
        return e
    finally:
        _current.reset(token)
    try:
        return result_payload(converter, result, defn.name)
    except PayloadError as e:
        return ApplicationError(str(e), type="PayloadError", non_retryable=True)


def _no_heartbeat(details: Any) -> None:
    """Local activities do not heartbeat (as in Temporal): the call does nothing."""

