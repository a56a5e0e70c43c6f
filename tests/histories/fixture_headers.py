"""A workflow run through a header-propagating interceptor, for ``headers.json``.

Written with plain ``temporalio`` imports, recorded by ``record_fixtures.py --only headers``
on a real dev server: the history shows which events carry the interceptor's header and in
what form. tests/engine/test_interceptors_history.py runs the same workflow on our engine
with the same interceptor written against ``engine`` and compares.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import temporalio.client
import temporalio.converter
import temporalio.worker
from temporalio import activity, workflow

TASK_QUEUE = "fixtures-headers"
HEADER = "x-user"
USER = "ada"


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class HeadersChild:
    def __init__(self) -> None:
        self.poked = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.poked)
        return "child done"

    @workflow.signal
    def poke(self) -> None:
        self.poked = True


@workflow.defn
class HeadersWorkflow:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.wait_condition(lambda: self.go)
        loud = await workflow.execute_activity(shout, name, start_to_close_timeout=timedelta(seconds=10))
        child = await workflow.start_child_workflow(HeadersChild.run, id=f"{workflow.info().workflow_id}-child")
        await child.signal(HeadersChild.poke)
        return f"{loud} / {await child}"

    @workflow.signal
    def start(self) -> None:
        self.go = True

    @workflow.update
    def note(self, text: str) -> str:
        return text + "!"


WORKFLOWS = [HeadersWorkflow, HeadersChild]


def _add(input: Any, converter: Any) -> None:
    input.headers = {**input.headers, HEADER: converter.to_payload(USER)}


class _ClientOut(temporalio.client.OutboundInterceptor):
    async def start_workflow(self, input: temporalio.client.StartWorkflowInput) -> Any:
        _add(input, temporalio.converter.default().payload_converter)
        return await super().start_workflow(input)

    async def signal_workflow(self, input: temporalio.client.SignalWorkflowInput) -> None:
        _add(input, temporalio.converter.default().payload_converter)
        await super().signal_workflow(input)

    async def start_workflow_update(self, input: temporalio.client.StartWorkflowUpdateInput) -> Any:
        _add(input, temporalio.converter.default().payload_converter)
        return await super().start_workflow_update(input)


class _WorkflowOut(temporalio.worker.WorkflowOutboundInterceptor):
    def start_activity(self, input: temporalio.worker.StartActivityInput) -> Any:
        _add(input, workflow.payload_converter())
        return super().start_activity(input)

    async def start_child_workflow(self, input: temporalio.worker.StartChildWorkflowInput) -> Any:
        _add(input, workflow.payload_converter())
        return await super().start_child_workflow(input)

    async def signal_child_workflow(self, input: temporalio.worker.SignalChildWorkflowInput) -> None:
        _add(input, workflow.payload_converter())
        await super().signal_child_workflow(input)


class _WorkflowIn(temporalio.worker.WorkflowInboundInterceptor):
    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOut(outbound))


class HeaderInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    def intercept_client(self, next: temporalio.client.OutboundInterceptor) -> temporalio.client.OutboundInterceptor:
        return _ClientOut(next)

    def workflow_interceptor_class(self, input: temporalio.worker.WorkflowInterceptorClassInput) -> type[_WorkflowIn]:
        return _WorkflowIn
