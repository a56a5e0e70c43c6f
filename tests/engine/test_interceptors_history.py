"""Our history of an intercepted workflow carries headers where a real Temporal's does.

``tests/histories/headers.json`` was recorded on a real dev server (record_fixtures.py
--only headers) from ``fixture_headers.py``: temporalio code whose interceptor adds one header
to the start, an update (in its accepted request's input), the signal, the activity, the
child's start and the signal to the child. The
same workflow and interceptor written against ``engine`` run here; the events that carry the
header, and the header itself, must be the same.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine import activity, client as engine_client, worker as engine_worker, workflow
from engine.client import Client
from engine.converter import DataConverter
from engine.history import History
from engine.testing import WorkflowEnvironment
from engine.worker import Worker

FIXTURE = Path(__file__).resolve().parents[1] / "histories" / "headers.json"
HEADER, USER = "x-user", "ada"


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


def _add(input: Any, converter: Any) -> None:
    input.headers = {**input.headers, HEADER: converter.to_payload(USER)}


class _ClientOut(engine_client.OutboundInterceptor):
    async def start_workflow(self, input: engine_client.StartWorkflowInput) -> Any:
        _add(input, DataConverter.default.payload_converter)
        return await super().start_workflow(input)

    async def signal_workflow(self, input: engine_client.SignalWorkflowInput) -> None:
        _add(input, DataConverter.default.payload_converter)
        await super().signal_workflow(input)

    async def start_workflow_update(self, input: engine_client.StartWorkflowUpdateInput) -> Any:
        _add(input, DataConverter.default.payload_converter)
        return await super().start_workflow_update(input)


class _WorkflowOut(engine_worker.WorkflowOutboundInterceptor):
    def start_activity(self, input: engine_worker.StartActivityInput) -> Any:
        _add(input, workflow.payload_converter())
        return super().start_activity(input)

    async def start_child_workflow(self, input: engine_worker.StartChildWorkflowInput) -> Any:
        _add(input, workflow.payload_converter())
        return await super().start_child_workflow(input)

    async def signal_child_workflow(self, input: engine_worker.SignalChildWorkflowInput) -> None:
        _add(input, workflow.payload_converter())
        await super().signal_child_workflow(input)


class _WorkflowIn(engine_worker.WorkflowInboundInterceptor):
    def init(self, outbound: engine_worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOut(outbound))


class HeaderInterceptor(engine_client.Interceptor, engine_worker.Interceptor):
    def intercept_client(self, next: engine_client.OutboundInterceptor) -> engine_client.OutboundInterceptor:
        return _ClientOut(next)

    def workflow_interceptor_class(self, input: engine_worker.WorkflowInterceptorClassInput) -> type[_WorkflowIn]:
        return _WorkflowIn


def _headers(history_json: str) -> list[tuple[str, Any]]:
    out = []
    for event in json.loads(history_json)["events"]:
        attrs = next((v for k, v in event.items() if k.endswith("Attributes")), {})
        header = attrs.get("header") or ((attrs.get("acceptedRequest") or {}).get("input") or {}).get("header")
        if header:
            out.append((event["eventType"], header))
    return out


async def test_headers_land_in_the_events_a_real_temporal_records_them_in() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    client = Client(env.client.store, clock=env.client.clock, owns_store=False, interceptors=[HeaderInterceptor()])
    async with Worker(client, task_queue="fixtures-headers", workflows=[HeadersWorkflow, HeadersChild], activities=[shout]):
        handle = await client.start_workflow(HeadersWorkflow.run, "hi", id="fixture-headers", task_queue="fixtures-headers")
        assert await handle.execute_update(HeadersWorkflow.note, "x") == "x!"
        await handle.signal(HeadersWorkflow.start)
        assert await handle.result() == "HI / child done"
        ours = (await handle.fetch_history()).to_json()
        child = await client.get_workflow_handle("fixture-headers-child").fetch_history()
    await env.shutdown()
    theirs = _headers(FIXTURE.read_text())
    assert [t for t, _ in theirs] == [
        "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED", "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED",
        "EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED", "EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED",
        "EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
    ]
    assert _headers(ours) == theirs
    # The child's own start and the signal it got carry the header too.
    assert [e.event_type for e in child.events if e.attributes.get("header")] == ["WorkflowExecutionStarted", "WorkflowExecutionSignaled"]
    assert History.from_json("fixture-headers", ours).events  # and it reads back
