"""The bottom of a run's outbound interceptor chain: what workflow code's calls do once
every interceptor has seen them (engine/_runtime/interceptors.py)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, NoReturn, Sequence

from engine._runtime import children as _children
from engine._runtime import local_activities as _local_activities
from engine._runtime.commands import ContinueAsNewError
from engine._runtime.interceptors import (
    ContinueAsNewInput,
    WorkflowInterceptorClassInput,
    EngineInbound,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
)

if TYPE_CHECKING:
    from engine._runtime.instance import WorkflowInstance


class EngineOutbound:
    def __init__(self, instance: WorkflowInstance) -> None:
        self._instance = instance

    def info(self) -> Any:
        return self._instance.info

    def start_activity(self, input: StartActivityInput) -> Any:
        return self._instance.schedule_activity(
            input.activity,
            list(input.args),
            task_queue=input.task_queue,
            schedule_to_close_timeout=input.schedule_to_close_timeout,
            schedule_to_start_timeout=input.schedule_to_start_timeout,
            start_to_close_timeout=input.start_to_close_timeout,
            heartbeat_timeout=input.heartbeat_timeout,
            retry_policy=input.retry_policy,
            activity_id=input.activity_id,
            result_type=input.ret_type,
            summary=input.summary,
            cancellation_type=input.cancellation_type,
            headers=input.headers,
        )

    def start_local_activity(self, input: StartLocalActivityInput) -> Any:
        return _local_activities.start(
            self._instance, input.activity, list(input.args), result_type=input.ret_type,
            schedule_to_close_timeout=input.schedule_to_close_timeout,
            schedule_to_start_timeout=input.schedule_to_start_timeout,
            start_to_close_timeout=input.start_to_close_timeout, retry_policy=input.retry_policy,
            local_retry_threshold=input.local_retry_threshold, activity_id=input.activity_id, headers=input.headers,
            cancellation_type=input.cancellation_type,
        )

    async def start_child_workflow(self, input: StartChildWorkflowInput) -> Any:
        instance = self._instance
        handle = _children.start_child(
            instance,
            input.workflow,
            list(input.args),
            workflow_id=input.id,
            task_queue=input.task_queue,
            result_type=input.ret_type,
            cancellation_type=input.cancellation_type,
            parent_close_policy=input.parent_close_policy,
            execution_timeout=input.execution_timeout,
            run_timeout=input.run_timeout,
            task_timeout=input.task_timeout,
            memo=input.memo,
            search_attributes=input.search_attributes,
            summary=input.static_summary,
            headers=input.headers,
            id_reuse_policy=input.id_reuse_policy,
        )
        try:
            await handle.started
        except asyncio.CancelledError:
            handle.cancel()
            raise
        return handle

    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        await _children.send_signal(
            self._instance, input.child_workflow_id, None, input.signal, input.args, child_only=True, headers=input.headers
        )

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        await _children.send_signal(
            self._instance, input.workflow_id, input.workflow_run_id, input.signal, input.args, child_only=False,
            headers=input.headers,
        )

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        raise ContinueAsNewError(
            input.args, workflow=input.workflow, task_queue=input.task_queue, run_timeout=input.run_timeout,
            task_timeout=input.task_timeout, memo=dict(input.memo) if input.memo else None,
            search_attributes=input.search_attributes, headers=input.headers,
        )


def workflow_chain(interceptors: Sequence[Any], instance: WorkflowInstance) -> Any:
    """The run's inbound chain (its ``init`` already called with the engine's outbound)."""
    chain: Any = EngineInbound(instance)
    for interceptor in reversed(interceptors):
        make = getattr(interceptor, "workflow_interceptor_class", None)
        cls = make(WorkflowInterceptorClassInput()) if make is not None else None
        if cls is not None:
            chain = cls(chain)
    chain.init(EngineOutbound(instance))
    return chain
