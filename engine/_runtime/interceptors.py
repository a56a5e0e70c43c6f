"""Worker interceptors (``engine.worker.Interceptor`` and friends), as temporalio's.

An interceptor wraps the calls into workflow code (inbound: run, signal, query, update), the
calls workflow code makes (outbound: activities, child workflows, signals, continue-as-new)
and the calls into activity code, each with an ``Input`` dataclass whose ``headers`` travel
with the call (recorded in the history's ``header`` fields, as Temporal does). The classic use
is context propagation: the client puts a value in a header, the workflow and its activities
read it back. Chains are built as temporalio builds them: the first interceptor given is the
outermost; each wrapper's ``next`` is the one below it, and the engine's own is at the bottom.

Headers are ``{name: Payload}``: the engine's ``Payload`` or anything with protobuf's
``SerializeToString`` (a temporalio ``Payload`` from temporalio's converter).
"""

from __future__ import annotations

import concurrent.futures
import inspect
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, MutableMapping, NoReturn, Sequence

from engine._conversion.payload_converter import Payload

if TYPE_CHECKING:
    from engine._runtime.instance import WorkflowInstance

__all__ = [
    "Interceptor",
    "WorkflowInterceptorClassInput",
    "ActivityInboundInterceptor",
    "ActivityOutboundInterceptor",
    "ExecuteActivityInput",
    "WorkflowInboundInterceptor",
    "WorkflowOutboundInterceptor",
    "ExecuteWorkflowInput",
    "HandleSignalInput",
    "HandleQueryInput",
    "HandleUpdateInput",
    "StartActivityInput",
    "StartChildWorkflowInput",
    "SignalChildWorkflowInput",
    "SignalExternalWorkflowInput",
    "ContinueAsNewInput",
]


# ------------------------------------------------------------------ headers
def headers_to_json(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A history ``header`` field (``{"fields": {name: payload JSON}}``; ``{}`` when empty)."""
    if not headers:
        return {}
    return {"fields": {str(k): _payload(v).to_json() for k, v in headers.items()}}


def headers_from_json(header: Any) -> dict[str, Payload]:
    if not header:  # most runs: no interceptor wrote any
        return {}
    fields = (header or {}).get("fields") if isinstance(header, Mapping) else None
    return {str(k): Payload.from_json(v) for k, v in (fields or {}).items()}


def _payload(value: Any) -> Payload:
    if isinstance(value, Payload):
        return value
    serialize = getattr(value, "SerializeToString", None)
    if serialize is None:
        raise TypeError(
            f"a header value must be a Payload (payload_converter.to_payload(value)), got {type(value).__name__}"
        )
    return Payload.FromString(serialize())


# ------------------------------------------------------------------ the interceptor
@dataclass
class WorkflowInterceptorClassInput:
    """What ``Interceptor.workflow_interceptor_class`` is given."""

    unsafe_extern_functions: MutableMapping[str, Callable[..., Any]] = field(default_factory=dict)


class Interceptor:
    """Give it to ``Worker(interceptors=[...])``; override what you intercept."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap activity calls: return an ``ActivityInboundInterceptor`` around ``next``."""
        return next

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor] | None:
        """A ``WorkflowInboundInterceptor`` class, built per run around the next one; None for none."""
        return None


# ------------------------------------------------------------------ activities
@dataclass
class ExecuteActivityInput:
    fn: Callable[..., Any]
    args: Sequence[Any]
    executor: concurrent.futures.Executor | None
    headers: Mapping[str, Any]


class ActivityOutboundInterceptor:
    """Calls activity code makes (``activity.info()``, ``activity.heartbeat()``)."""

    def __init__(self, next: ActivityOutboundInterceptor) -> None:
        self.next = next

    def info(self) -> Any:
        return self.next.info()

    def heartbeat(self, *details: Any) -> None:
        self.next.heartbeat(*details)


class ActivityInboundInterceptor:
    """Calls into activity code."""

    def __init__(self, next: ActivityInboundInterceptor) -> None:
        self.next = next

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        self.next.init(outbound)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        return await self.next.execute_activity(input)


# ------------------------------------------------------------------ workflows


@dataclass
class ExecuteWorkflowInput:
    type: type
    run_fn: Callable[..., Awaitable[Any]]
    args: Sequence[Any]
    headers: Mapping[str, Any]


@dataclass
class HandleSignalInput:
    signal: str
    args: Sequence[Any]
    headers: Mapping[str, Any]


@dataclass
class HandleQueryInput:
    id: str
    query: str
    args: Sequence[Any]
    headers: Mapping[str, Any]


@dataclass
class HandleUpdateInput:
    id: str
    update: str
    args: Sequence[Any]
    headers: Mapping[str, Any]


@dataclass
class StartActivityInput:
    activity: str
    args: Sequence[Any]
    activity_id: str | None
    task_queue: str | None
    schedule_to_close_timeout: timedelta | None
    schedule_to_start_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    heartbeat_timeout: timedelta | None
    retry_policy: Any
    cancellation_type: Any
    headers: Mapping[str, Any]
    summary: str | None
    ret_type: type | None = None
    disable_eager_execution: bool = False
    versioning_intent: Any = None


@dataclass
class StartLocalActivityInput:
    activity: str
    args: Sequence[Any]
    activity_id: str | None
    schedule_to_close_timeout: timedelta | None
    schedule_to_start_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    retry_policy: Any
    local_retry_threshold: timedelta | None
    cancellation_type: Any
    headers: Mapping[str, Any]
    summary: str | None
    arg_types: Sequence[Any] | None = None
    ret_type: type | None = None


@dataclass
class StartChildWorkflowInput:
    workflow: str
    args: Sequence[Any]
    id: str
    task_queue: str | None
    cancellation_type: Any
    parent_close_policy: Any
    execution_timeout: timedelta | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    memo: Mapping[str, Any] | None
    search_attributes: Any
    headers: Mapping[str, Any]
    static_summary: str | None
    ret_type: type | None = None
    id_reuse_policy: Any = None  # engine.common.WorkflowIDReusePolicy; None: ALLOW_DUPLICATE


@dataclass
class SignalChildWorkflowInput:
    signal: str
    args: Sequence[Any]
    child_workflow_id: str
    headers: Mapping[str, Any]


@dataclass
class SignalExternalWorkflowInput:
    signal: str
    args: Sequence[Any]
    namespace: str
    workflow_id: str
    workflow_run_id: str | None
    headers: Mapping[str, Any]


@dataclass
class ContinueAsNewInput:
    workflow: str | None
    args: Sequence[Any]
    task_queue: str | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    memo: Mapping[str, Any] | None
    search_attributes: Any
    headers: Mapping[str, Any]


class WorkflowOutboundInterceptor:
    """Calls workflow code makes; ``next`` ends at the engine's own."""

    def __init__(self, next: WorkflowOutboundInterceptor) -> None:
        self.next = next

    def info(self) -> Any:
        return self.next.info()

    def start_activity(self, input: StartActivityInput) -> Any:
        return self.next.start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> Any:
        return self.next.start_local_activity(input)

    async def start_child_workflow(self, input: StartChildWorkflowInput) -> Any:
        return await self.next.start_child_workflow(input)

    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        await self.next.signal_child_workflow(input)

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        await self.next.signal_external_workflow(input)

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        self.next.continue_as_new(input)
        raise AssertionError("continue_as_new returned")  # pragma: no cover


class WorkflowInboundInterceptor:
    """Calls into workflow code; ``init`` is given the outbound chain first."""

    def __init__(self, next: WorkflowInboundInterceptor) -> None:
        self.next = next

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        self.next.init(outbound)

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        return await self.next.execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        await self.next.handle_signal(input)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        return await self.next.handle_query(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        self.next.handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        return await self.next.handle_update_handler(input)


class EngineInbound:
    """The bottom of a run's inbound chain: calls the workflow object's own methods."""

    def __init__(self, instance: WorkflowInstance) -> None:
        self._instance = instance

    def init(self, outbound: Any) -> None:
        self._instance.outbound = outbound

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        return await input.run_fn(*input.args)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        result = self._handler("signal", input.signal).call(self._instance._object, input.args)
        if inspect.isawaitable(result):
            await result

    async def handle_query(self, input: HandleQueryInput) -> Any:
        return self._handler("query", input.query).call(self._instance._object, input.args)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        self._handler("update", input.update).validate(self._instance._object, input.args)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        result = self._handler("update", input.update).call(self._instance._object, input.args)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _handler(self, kind: str, name: str) -> Any:
        handler = self._instance.handlers.find(kind, name)
        if handler is None and kind == "query":  # an interceptor changed the name to one no handler takes
            raise self._instance.handlers.missing_query(self._instance.info.workflow_type, name)
        if handler is None:
            known = ", ".join(self._instance.handlers.names(kind)) or "none"
            raise KeyError(f"Workflow {self._instance.info.workflow_type} has no {kind} {name!r} (it has: {known}).")
        return handler


def run_sync(coro: Any, what: str) -> Any:
    """Run a coroutine that must not wait (a query handler through interceptors)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError(f"{what} awaited something; queries answer from the current state and cannot wait.")


def is_worker_interceptor(value: Any) -> bool:
    """Whether a client's interceptor also intercepts workers (temporalio's rule, by duck type
    so that temporalio's own ``worker.Interceptor`` subclasses count)."""
    return isinstance(value, Interceptor) or hasattr(value, "workflow_interceptor_class") or hasattr(value, "intercept_activity")
