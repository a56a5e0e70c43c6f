"""Client interceptors (``engine.client.Interceptor`` / ``OutboundInterceptor``), as temporalio's.

``Client.connect(interceptors=[...])``: each interceptor's ``intercept_client(next)`` wraps the
client's calls (start, signal, query, cancel, terminate, describe) with an ``Input`` dataclass;
the first interceptor given is the outermost. Headers an interceptor adds to a start or a
signal are recorded in the event's ``header`` (workflow interceptors read them back); a query's
reach the worker of this process that answers it. An interceptor given to the client that is
also a worker interceptor is used by that client's workers too (temporalio's rule).

The bottom of the chain calls the client's own method again with this module's context
variable set, so the method runs its usual code once, with the headers the chain settled on.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from engine._runtime.interceptors import _payload, headers_to_json

if TYPE_CHECKING:
    from engine.client import Client, WorkflowExecutionDescription, WorkflowHandle

__all__ = [
    "Interceptor",
    "OutboundInterceptor",
    "StartWorkflowInput",
    "SignalWorkflowInput",
    "QueryWorkflowInput",
    "CancelWorkflowInput",
    "TerminateWorkflowInput",
    "DescribeWorkflowInput",
    "StartWorkflowUpdateInput",
]

# Set by the chain's bottom while the client's own method runs: the headers to send.
_outgoing: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("engine_client_headers", default=None)


@dataclass
class StartWorkflowInput:
    workflow: str
    args: Sequence[Any]
    id: str
    task_queue: str
    execution_timeout: timedelta | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    id_reuse_policy: Any
    id_conflict_policy: Any
    memo: Mapping[str, Any] | None
    search_attributes: Any
    headers: Mapping[str, Any]
    ret_type: type | None
    # Other options of Client.start_workflow, passed on unchanged.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SignalWorkflowInput:
    id: str
    run_id: str | None
    signal: str
    args: Sequence[Any]
    headers: Mapping[str, Any]


@dataclass
class QueryWorkflowInput:
    id: str
    run_id: str | None
    query: str
    args: Sequence[Any]
    headers: Mapping[str, Any]
    ret_type: type | None
    rpc_timeout: timedelta | None = None


@dataclass
class CancelWorkflowInput:
    id: str
    run_id: str | None
    first_execution_run_id: str | None
    reason: str


@dataclass
class TerminateWorkflowInput:
    id: str
    run_id: str | None
    first_execution_run_id: str | None
    args: Sequence[Any]
    reason: str | None


@dataclass
class DescribeWorkflowInput:
    id: str
    run_id: str | None


@dataclass
class StartWorkflowUpdateInput:
    id: str
    run_id: str | None
    first_execution_run_id: str | None
    update_id: str | None
    update: str
    args: Sequence[Any]
    wait_for_stage: Any
    headers: Mapping[str, Any]
    ret_type: type | None


class OutboundInterceptor:
    """Wraps the client's calls; ``next`` ends at the engine's own."""

    def __init__(self, next: OutboundInterceptor) -> None:
        self.next = next

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle:
        return await self.next.start_workflow(input)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        await self.next.signal_workflow(input)

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        return await self.next.query_workflow(input)

    async def cancel_workflow(self, input: CancelWorkflowInput) -> None:
        await self.next.cancel_workflow(input)

    async def terminate_workflow(self, input: TerminateWorkflowInput) -> None:
        await self.next.terminate_workflow(input)

    async def describe_workflow(self, input: DescribeWorkflowInput) -> WorkflowExecutionDescription:
        return await self.next.describe_workflow(input)

    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> Any:
        return await self.next.start_workflow_update(input)


class Interceptor:
    """Give it to ``Client.connect(interceptors=[...])``."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return next


def chain(client: Client, interceptors: Sequence[Any]) -> Any:
    """The client's outbound chain, or None when no interceptor wraps the client."""
    wrapping = [i for i in interceptors if hasattr(i, "intercept_client")]
    if not wrapping:
        return None
    outbound: Any = _EngineOutbound(client)
    for interceptor in reversed(wrapping):
        outbound = interceptor.intercept_client(outbound)
    return outbound


def intercepting(client: Client) -> bool:
    """Whether a call on ``client`` should enter its chain (not when the chain's bottom runs it)."""
    return client._outbound is not None and _outgoing.get() is None


def outgoing_header() -> dict[str, Any]:
    """The ``header`` field for the event the current call writes."""
    return headers_to_json(_outgoing.get())


def outgoing_headers() -> dict[str, Any]:
    """The current call's headers as payloads (for a query answered in this process)."""
    return {k: _payload(v) for k, v in (_outgoing.get() or {}).items()}


def start_input(values: dict[str, Any], unset: Any) -> StartWorkflowInput:
    """The input of a start, from ``Client.start_workflow``'s arguments (its ``locals()``)."""
    from engine._sandbox.translation import workflow_definition

    values = {k: v for k, v in values.items() if k != "self"}
    workflow = values.pop("workflow")
    if isinstance(workflow, str):
        name, hinted = workflow, None
    else:
        defn = workflow_definition(workflow)
        name, hinted = defn.name, defn.result_type
    arg = values.pop("arg")
    args = ([arg] if arg is not unset else []) + list(values.pop("args"))
    known = {
        k: values.pop(k, None)
        for k in ("id", "task_queue", "execution_timeout", "run_timeout", "task_timeout", "id_reuse_policy",
                  "id_conflict_policy", "memo", "search_attributes", "result_type")
    }
    return StartWorkflowInput(
        workflow=name, args=args, id=known["id"], task_queue=known["task_queue"],
        execution_timeout=known["execution_timeout"], run_timeout=known["run_timeout"], task_timeout=known["task_timeout"],
        id_reuse_policy=known["id_reuse_policy"], id_conflict_policy=known["id_conflict_policy"], memo=known["memo"],
        search_attributes=known["search_attributes"], headers={}, ret_type=known["result_type"] or hinted, options=values,
    )


class _EngineOutbound:
    """The bottom of the chain: the client's own methods, run with the chain's headers."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle:
        token = _outgoing.set(dict(input.headers))
        try:
            options = {k: v for k, v in input.options.items() if v is not None}
            for key in ("id_reuse_policy", "id_conflict_policy"):
                if getattr(input, key) is not None:
                    options[key] = getattr(input, key)
            return await self._client.start_workflow(
                input.workflow, args=list(input.args), id=input.id, task_queue=input.task_queue, result_type=input.ret_type,
                execution_timeout=input.execution_timeout, run_timeout=input.run_timeout, task_timeout=input.task_timeout,
                memo=dict(input.memo) if input.memo else None, search_attributes=input.search_attributes, **options,
            )
        finally:
            _outgoing.reset(token)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        token = _outgoing.set(dict(input.headers))
        try:
            await self._client.get_workflow_handle(input.id, run_id=input.run_id).signal(input.signal, args=list(input.args))
        finally:
            _outgoing.reset(token)

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        token = _outgoing.set(dict(input.headers))
        try:
            handle = self._client.get_workflow_handle(input.id, run_id=input.run_id)
            return await handle.query(input.query, args=list(input.args), result_type=input.ret_type, rpc_timeout=input.rpc_timeout)
        finally:
            _outgoing.reset(token)

    async def cancel_workflow(self, input: CancelWorkflowInput) -> None:
        token = _outgoing.set({})
        try:
            await self._client.get_workflow_handle(input.id, run_id=input.run_id).cancel(reason=input.reason)
        finally:
            _outgoing.reset(token)

    async def terminate_workflow(self, input: TerminateWorkflowInput) -> None:
        token = _outgoing.set({})
        try:
            await self._client.get_workflow_handle(input.id, run_id=input.run_id).terminate(*input.args, reason=input.reason)
        finally:
            _outgoing.reset(token)

    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> Any:
        token = _outgoing.set(dict(input.headers))
        try:
            handle = self._client.get_workflow_handle(input.id, run_id=input.run_id)
            return await handle.start_update(
                input.update, args=list(input.args), id=input.update_id, wait_for_stage=input.wait_for_stage,
                result_type=input.ret_type,
            )
        finally:
            _outgoing.reset(token)

    async def describe_workflow(self, input: DescribeWorkflowInput) -> WorkflowExecutionDescription:
        token = _outgoing.set({})
        try:
            return await self._client.get_workflow_handle(input.id, run_id=input.run_id).describe()
        finally:
            _outgoing.reset(token)
