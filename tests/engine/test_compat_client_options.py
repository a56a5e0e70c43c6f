"""Client-side names temporalio-written apps use: converter.default(), the handle's
eagerly-started flag of request_eager_start, and temporalio's deprecated dictionary form of
search_attributes (accepted with a DeprecationWarning, as temporalio does)."""

from __future__ import annotations

import pytest

from engine import Worker, converter, workflow
from engine.testing import WorkflowEnvironment


def test_converter_default_is_the_default_data_converter() -> None:
    assert converter.default() is converter.DataConverter.default


@workflow.defn
class Hello:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"Hello {name}!"


async def test_request_eager_start_is_eager_when_a_worker_of_this_client_serves_the_run() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Hello]):
        eager = await env.client.start_workflow(Hello.run, "a", id="e1", task_queue="q", request_eager_start=True)
        plain = await env.client.start_workflow(Hello.run, "b", id="e2", task_queue="q")
        elsewhere = await env.client.start_workflow(Hello.run, "c", id="e3", task_queue="other", request_eager_start=True)
        assert getattr(eager, "__temporal_eagerly_started") is True
        assert getattr(plain, "__temporal_eagerly_started") is False
        # As temporalio: no worker of this client polls "other", so the start is a normal one.
        assert getattr(elsewhere, "__temporal_eagerly_started") is False
        assert await eager.result() == "Hello a!"
    await env.shutdown()
