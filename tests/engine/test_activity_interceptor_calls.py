"""activity.info() and activity.heartbeat() go through the activity outbound interceptors, and
local activities through the workflow outbound (start_local_activity) and the activity inbound
interceptors, with the headers the workflow side put on them, as in temporalio."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from engine import activity, workflow
from engine.converter import PayloadConverter
from engine.testing import WorkflowEnvironment
from engine.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    StartLocalActivityInput,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

CALLS: list[str] = []


class Outbound(ActivityOutboundInterceptor):
    def info(self) -> Any:
        CALLS.append("info")
        # What the interceptor returns is what the activity sees.
        return dataclasses.replace(super().info(), activity_type=super().info().activity_type + "!")

    def heartbeat(self, *details: Any) -> None:
        CALLS.append(f"heartbeat {list(details)}")
        super().heartbeat(*details)


class Inbound(ActivityInboundInterceptor):
    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        super().init(Outbound(outbound))

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        header = input.headers.get("from-workflow")
        CALLS.append(f"execute {PayloadConverter.default.from_payload(header, str) if header else None}")
        return await super().execute_activity(input)


class WorkflowOut(WorkflowOutboundInterceptor):
    def start_local_activity(self, input: StartLocalActivityInput) -> Any:
        CALLS.append(f"start_local_activity {input.activity}")
        input.headers = {**input.headers, "from-workflow": PayloadConverter.default.to_payload(input.activity)}
        return super().start_local_activity(input)


class WorkflowIn(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(WorkflowOut(outbound))


class Both(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return Inbound(next)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return WorkflowIn


@activity.defn
async def who_am_i() -> str:
    activity.heartbeat("half way")
    return activity.info().activity_type


@activity.defn
def who_am_i_sync() -> str:
    activity.heartbeat(1, 2)
    return activity.info().activity_type


@workflow.defn
class Asks:
    @workflow.run
    async def run(self) -> list[str]:
        timeout = timedelta(seconds=10)
        return [
            await workflow.execute_activity(who_am_i, start_to_close_timeout=timeout),
            await workflow.execute_local_activity(who_am_i, start_to_close_timeout=timeout),
            await workflow.execute_local_activity(who_am_i_sync, start_to_close_timeout=timeout),
        ]


async def test_activity_calls_and_local_activities_go_through_the_interceptors() -> None:
    CALLS.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Asks], activities=[who_am_i, who_am_i_sync], interceptors=[Both()]):
        result = await env.client.execute_workflow(Asks.run, id="asks", task_queue="q")
    await env.shutdown()
    assert result == ["who_am_i!", "who_am_i!", "who_am_i_sync!"]
    assert CALLS == [
        "execute None", "heartbeat ['half way']", "info",
        "start_local_activity who_am_i", "execute who_am_i", "heartbeat ['half way']", "info",
        "start_local_activity who_am_i_sync", "execute who_am_i_sync", "heartbeat [1, 2]", "info",
    ]


async def test_without_interceptors_the_calls_are_the_attempts_own() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Asks], activities=[who_am_i, who_am_i_sync]):
        result = await env.client.execute_workflow(Asks.run, id="plain", task_queue="q")
    await env.shutdown()
    assert result == ["who_am_i", "who_am_i", "who_am_i_sync"]
