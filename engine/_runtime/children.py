"""Child workflows and handles to other workflows, as seen from workflow code.

A child is started by a ``StartChildWorkflowExecution`` command; the engine answers with
``ChildWorkflowExecutionStarted`` (or ``StartChildWorkflowExecutionFailed``) and, when the
child closes, one of the ``ChildWorkflowExecution{Completed,Failed,...}`` events. Cancelling
a child and signalling another workflow go through ``RequestCancelExternalWorkflowExecution``
and ``SignalExternalWorkflowExecution``, as in Temporal.
"""

from __future__ import annotations

import asyncio
import enum
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from engine._runtime import interceptors as _interceptors
from engine._conversion.payload_converter import from_json_payload, to_json_payload, to_json_payloads
from engine.common import WorkflowIDReusePolicy
from engine.errors import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    RetryState,
    TerminatedError,
    TimeoutError,
    TimeoutType,
    WorkflowAlreadyStartedError,
)
from engine.history import HistoryEvent

if TYPE_CHECKING:
    from engine._runtime.instance import WorkflowInstance


_ARG_UNSET = object()  # so that None can be sent as a signal's argument


class ParentClosePolicy(enum.IntEnum):
    """What happens to a still-running child when its parent closes (temporalio's values)."""

    UNSPECIFIED = 0
    TERMINATE = 1
    ABANDON = 2
    REQUEST_CANCEL = 3


class ChildWorkflowCancellationType(enum.IntEnum):
    """What cancelling a child's handle waits for (temporalio's values)."""

    ABANDON = 0
    TRY_CANCEL = 1
    WAIT_CANCELLATION_COMPLETED = 2
    WAIT_CANCELLATION_REQUESTED = 3


_POLICY_NAMES = {
    ParentClosePolicy.UNSPECIFIED: "PARENT_CLOSE_POLICY_TERMINATE",
    ParentClosePolicy.TERMINATE: "PARENT_CLOSE_POLICY_TERMINATE",
    ParentClosePolicy.ABANDON: "PARENT_CLOSE_POLICY_ABANDON",
    ParentClosePolicy.REQUEST_CANCEL: "PARENT_CLOSE_POLICY_REQUEST_CANCEL",
}


class ChildWorkflowHandle(asyncio.Future):
    """A started child workflow: await it for the result, ``cancel()`` it, ``signal()`` it."""

    def __init__(
        self,
        instance: WorkflowInstance,
        workflow_id: str,
        workflow_type: str,
        cancellation_type: ChildWorkflowCancellationType,
        result_type: Any,
    ) -> None:
        super().__init__(loop=instance)
        self._instance = instance
        self._id = workflow_id
        self.workflow_type = workflow_type
        self.cancellation_type = cancellation_type
        self.result_type = result_type
        self.started: asyncio.Future = instance.create_future()
        self.initiated_event_id: int | None = None
        self.started_event_id = 0
        self.run_id: str | None = None
        self._command: Any = None
        self._cancel_wanted = False
        self._cancel_sent = False

    @property
    def id(self) -> str:
        return self._id

    @property
    def first_execution_run_id(self) -> str | None:
        return self.run_id

    async def signal(self, signal: Any, arg: Any = _ARG_UNSET, *, args: Sequence[Any] = ()) -> None:
        """Send a signal to this child (a ``SignalExternalWorkflowExecution`` command)."""
        all_args = ([arg] if arg is not _ARG_UNSET else []) + list(args)
        await signal_external(self._instance, self._id, None, _signal_name(signal), all_args, child_only=True)

    def cancel(self, msg: Any = None) -> bool:
        if self.done():
            return False
        instance = self._instance
        if instance._evicting:
            return super().cancel(msg)
        if self._cancel_wanted:
            return True
        self._cancel_wanted = True
        if self.cancellation_type == ChildWorkflowCancellationType.ABANDON:
            self._resolve_cancelled()
            return True
        if self.initiated_event_id is None and self._command in instance._commands:
            # Not sent yet: the start is withdrawn, as Temporal's SDK does.
            instance._commands.remove(self._command)
            self._resolve_cancelled()
            if not self.started.done():
                self.started.set_exception(asyncio.CancelledError())
            return True
        if self.run_id is not None:
            self._send_cancel()
        # else: sent once ChildWorkflowExecutionStarted arrives (the child must exist first).
        if self.cancellation_type == ChildWorkflowCancellationType.TRY_CANCEL:
            self._resolve_cancelled()
        return True

    def _send_cancel(self) -> None:
        if self._cancel_sent:
            return
        self._cancel_sent = True

        def requested(_: Any) -> None:
            if self.cancellation_type == ChildWorkflowCancellationType.WAIT_CANCELLATION_REQUESTED:
                self._resolve_cancelled()

        request_cancel_external(self._instance, self._id, self.run_id, child_only=True, on_done=requested)

    def _error(self, message: str, cause: BaseException, retry_state: RetryState | None = None) -> ChildWorkflowError:
        error = ChildWorkflowError(
            message,
            namespace=self._instance.info.namespace,
            workflow_id=self._id,
            run_id=self.run_id or "",
            workflow_type=self.workflow_type,
            initiated_event_id=self.initiated_event_id or 0,
            started_event_id=self.started_event_id,
            retry_state=retry_state,
        )
        error.__cause__ = cause
        return error

    def _resolve_cancelled(self) -> None:
        if not self.done():
            self.set_exception(self._error("Child Workflow execution cancelled", CancelledError("Child Workflow execution cancelled"), RetryState.CANCEL_REQUESTED))


class ExternalWorkflowHandle:
    """A handle to another running workflow, for ``signal()`` and ``cancel()`` from workflow code."""

    def __init__(self, instance: WorkflowInstance, workflow_id: str, run_id: str | None) -> None:
        self._instance = instance
        self.id = workflow_id
        self.run_id = run_id

    async def signal(self, signal: Any, arg: Any = _ARG_UNSET, *, args: Sequence[Any] = ()) -> None:
        all_args = ([arg] if arg is not _ARG_UNSET else []) + list(args)
        await signal_external(self._instance, self.id, self.run_id, _signal_name(signal), all_args, child_only=False)

    async def cancel(self) -> None:
        fut = self._instance.create_future()

        def done(error: BaseException | None) -> None:
            if not fut.done():
                fut.set_exception(error) if error else fut.set_result(None)

        request_cancel_external(self._instance, self.id, self.run_id, child_only=False, on_done=done)
        await fut


def _signal_name(signal: Any) -> str:
    if isinstance(signal, str):
        return signal
    name = getattr(signal, "__temporal_signal_name__", None) or getattr(signal, "_signal_name", None)
    return str(name or signal.__name__)


# ------------------------------------------------------------------------- commands
def start_child(
    instance: WorkflowInstance,
    workflow_type: str,
    args: Sequence[Any],
    *,
    workflow_id: str,
    task_queue: str | None,
    result_type: Any,
    cancellation_type: ChildWorkflowCancellationType,
    parent_close_policy: ParentClosePolicy,
    execution_timeout: timedelta | None,
    run_timeout: timedelta | None,
    task_timeout: timedelta | None,
    memo: Mapping[str, Any] | None,
    summary: str | None,
    search_attributes: Any = None,
    headers: Mapping[str, Any] | None = None,
    id_reuse_policy: Any = None,
) -> ChildWorkflowHandle:
    from engine._api.durations import to_duration

    handle = ChildWorkflowHandle(instance, workflow_id, workflow_type, cancellation_type, result_type)
    attrs: dict[str, Any] = {
        "namespace": instance.info.namespace,
        "workflowId": workflow_id,
        "workflowType": {"name": workflow_type},
        "taskQueue": {"name": task_queue or instance.info.task_queue, "kind": "TASK_QUEUE_KIND_NORMAL"},
        "input": to_json_payloads(instance.payload_converter, args, f"argument of child workflow {workflow_type!r}"),
        "workflowExecutionTimeout": to_duration(execution_timeout),
        "workflowRunTimeout": to_duration(run_timeout) or "0s",
        "workflowTaskTimeout": to_duration(task_timeout or timedelta(seconds=10)),
        "parentClosePolicy": _POLICY_NAMES[ParentClosePolicy(parent_close_policy)],
        "workflowIdReusePolicy": _reuse_policy_name(id_reuse_policy),
        "header": _interceptors.headers_to_json(headers),
    }
    if attrs["taskQueue"]["name"] == instance.info.task_queue:  # as temporalio: same queue, the parent's build
        attrs["inheritBuildId"] = True
    if attrs["workflowExecutionTimeout"] is None:
        del attrs["workflowExecutionTimeout"]
    if memo:
        attrs["memo"] = {"fields": {k: to_json_payload(instance.payload_converter, v, f"memo field {k!r}") for k, v in memo.items()}}
    if search_attributes:
        from engine._conversion.search_attributes import encode_typed

        attrs["searchAttributes"] = {"indexedFields": encode_typed(search_attributes)}
    if summary:
        attrs["userMetadata"] = {"summary": to_json_payload(instance.payload_converter, summary, "the child workflow summary")}

    def bound(event_id: int) -> None:
        handle.initiated_event_id = event_id
        instance._children[event_id] = handle

    handle._command = instance._add_command("StartChildWorkflowExecution", attrs, bound)
    return handle


def request_cancel_external(
    instance: WorkflowInstance, workflow_id: str, run_id: str | None, *, child_only: bool, on_done: Any
) -> None:
    execution = {"workflowId": workflow_id}
    if run_id:
        execution["runId"] = run_id
    attrs = {"namespace": instance.info.namespace, "workflowExecution": execution, "childWorkflowOnly": child_only}

    def bound(event_id: int) -> None:
        instance._external[event_id] = on_done

    instance._add_command("RequestCancelExternalWorkflowExecution", attrs, bound)


async def signal_external(
    instance: WorkflowInstance, workflow_id: str, run_id: str | None, name: str, args: Sequence[Any], *, child_only: bool
) -> None:
    """Signal a child or another workflow, through the run's outbound interceptors if any."""
    outbound = instance.outbound
    if outbound is None:
        await send_signal(instance, workflow_id, run_id, name, args, child_only=child_only)
    elif child_only:
        await outbound.signal_child_workflow(_interceptors.SignalChildWorkflowInput(name, list(args), workflow_id, {}))
    else:
        await outbound.signal_external_workflow(
            _interceptors.SignalExternalWorkflowInput(name, list(args), instance.info.namespace, workflow_id, run_id, {})
        )


async def send_signal(
    instance: WorkflowInstance, workflow_id: str, run_id: str | None, name: str, args: Sequence[Any], *, child_only: bool,
    headers: Mapping[str, Any] | None = None,
) -> None:
    execution = {"workflowId": workflow_id}
    if run_id:
        execution["runId"] = run_id
    attrs: dict[str, Any] = {
        "namespace": instance.info.namespace,
        "execution": execution,
        "signalName": name,
        "input": to_json_payloads(instance.payload_converter, args, f"argument of signal {name!r}"),
        "childWorkflowOnly": child_only,
        "header": _interceptors.headers_to_json(headers),
    }
    fut = instance.create_future()

    def done(error: BaseException | None) -> None:
        if not fut.done():
            fut.set_exception(error) if error else fut.set_result(None)

    def bound(event_id: int) -> None:
        instance._external[event_id] = done

    instance._add_command("SignalExternalWorkflowExecution", attrs, bound)
    await fut


# ------------------------------------------------------------------------- events
def _child_of(instance: WorkflowInstance, event: HistoryEvent) -> ChildWorkflowHandle | None:
    return instance._children.get(int(event.attributes.get("initiatedEventId") or 0))


def on_child_started(instance: WorkflowInstance, event: HistoryEvent) -> None:
    handle = _child_of(instance, event)
    if handle is None:
        return
    handle.run_id = str((event.attributes.get("workflowExecution") or {}).get("runId", ""))
    handle.started_event_id = event.event_id
    if not handle.started.done():
        handle.started.set_result(None)
    if handle._cancel_wanted and handle.cancellation_type != ChildWorkflowCancellationType.ABANDON:
        handle._send_cancel()


def on_child_start_failed(instance: WorkflowInstance, event: HistoryEvent) -> None:
    handle = instance._children.pop(int(event.attributes.get("initiatedEventId") or 0), None)
    if handle is None:
        return
    error = WorkflowAlreadyStartedError(handle.id, handle.workflow_type)
    if not handle.started.done():
        handle.started.set_exception(error)
    if not handle.done():
        handle.set_exception(error)
        handle.exception()  # retrieved: the start's awaiter reports it, not this future


def on_child_closed(instance: WorkflowInstance, event: HistoryEvent) -> None:
    handle = instance._children.pop(int(event.attributes.get("initiatedEventId") or 0), None)
    if handle is None or handle.done():
        return
    attrs = event.attributes
    etype = event.event_type
    if etype == "ChildWorkflowExecutionCompleted":
        payloads = (attrs.get("result") or {}).get("payloads") or [None]
        what = f"the result of child workflow {handle.workflow_type!r}"
        handle.set_result(from_json_payload(instance.payload_converter, payloads[0], handle.result_type, what))
        return
    state = str(attrs.get("retryState", "")).replace("RETRY_STATE_", "")
    retry_state = RetryState.__members__.get(state, RetryState.NON_RETRYABLE_FAILURE if etype.endswith("Failed") else None)
    cause: BaseException
    if etype == "ChildWorkflowExecutionFailed":
        cause = instance.failure_converter.from_failure(attrs.get("failure") or {}, instance.payload_converter)
    elif etype == "ChildWorkflowExecutionCanceled":
        cause = CancelledError("Cancelled")  # temporalio's wording (tests/differential)
        retry_state = RetryState.NON_RETRYABLE_FAILURE
    elif etype == "ChildWorkflowExecutionTerminated":
        cause = TerminatedError("Child Workflow execution terminated")
    else:
        cause = TimeoutError("Child Workflow execution timed out", type=TimeoutType.START_TO_CLOSE)
    message = "Child Workflow execution cancelled" if etype == "ChildWorkflowExecutionCanceled" else "Child Workflow execution failed"
    handle.set_exception(handle._error(message, cause, retry_state))


def on_external_done(instance: WorkflowInstance, event: HistoryEvent) -> None:
    callback = instance._external.pop(int(event.attributes.get("initiatedEventId") or 0), None)
    if callback is None:
        return
    if event.event_type.endswith("Failed"):
        target = (event.attributes.get("workflowExecution") or {}).get("workflowId", "")
        what = "signal" if event.event_type.startswith("Signal") else "cancel"
        callback(ApplicationError(f"Unable to {what} external workflow {target!r}: it was not found or is closed", type="ExternalWorkflowExecutionNotFound"))
    else:
        callback(None)


JOBS = {
    "ChildWorkflowExecutionStarted": on_child_started,
    "StartChildWorkflowExecutionFailed": on_child_start_failed,
    "ChildWorkflowExecutionCompleted": on_child_closed,
    "ChildWorkflowExecutionFailed": on_child_closed,
    "ChildWorkflowExecutionCanceled": on_child_closed,
    "ChildWorkflowExecutionTerminated": on_child_closed,
    "ChildWorkflowExecutionTimedOut": on_child_closed,
    "ExternalWorkflowExecutionCancelRequested": on_external_done,
    "RequestCancelExternalWorkflowExecutionFailed": on_external_done,
    "ExternalWorkflowExecutionSignaled": on_external_done,
    "SignalExternalWorkflowExecutionFailed": on_external_done,
}


def _reuse_policy_name(policy: Any) -> str:
    """The command's ``workflowIdReusePolicy``: an ``engine.common.WorkflowIDReusePolicy`` (or
    temporalio's, by value) as Temporal's enum name; unset is ALLOW_DUPLICATE, as temporalio sends."""
    try:
        chosen = WorkflowIDReusePolicy(int(policy)) if policy is not None else WorkflowIDReusePolicy.ALLOW_DUPLICATE
    except (TypeError, ValueError):
        raise ValueError(f"id_reuse_policy must be a WorkflowIDReusePolicy, not {policy!r}") from None
    if chosen == WorkflowIDReusePolicy.UNSPECIFIED:
        chosen = WorkflowIDReusePolicy.ALLOW_DUPLICATE
    return f"WORKFLOW_ID_REUSE_POLICY_{chosen.name}"
