"""A query answered by a worker of another connection (another process's, through the
database's queries table) carries the headers the asking client's interceptors set, as one
answered in the same process does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import Client, Worker, client as engine_client, workflow
from engine.converter import PayloadConverter
from engine.worker import HandleQueryInput, Interceptor, WorkflowInboundInterceptor, WorkflowInterceptorClassInput

SEEN: list[Any] = []
KEY = "x-asker"


class AskerHeader(engine_client.Interceptor):
    def intercept_client(self, next: engine_client.OutboundInterceptor) -> engine_client.OutboundInterceptor:
        return _Out(next)


class _Out(engine_client.OutboundInterceptor):
    async def query_workflow(self, input: engine_client.QueryWorkflowInput) -> Any:
        input.headers = {**input.headers, KEY: PayloadConverter.default.to_payload("ada")}
        return await super().query_workflow(input)


class _In(WorkflowInboundInterceptor):
    async def handle_query(self, input: HandleQueryInput) -> Any:
        header = input.headers.get(KEY)
        SEEN.append(PayloadConverter.default.from_payload(header, str) if header is not None else None)
        return await super().handle_query(input)


class ReadsHeaders(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _In


@workflow.defn
class Waiting:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.query
    def state(self) -> str:
        return "waiting"


async def test_query_headers_reach_a_worker_of_another_connection(tmp_path: Path) -> None:
    SEEN.clear()
    db = str(tmp_path / "engine.db")
    serving = await Client.connect(db)
    asking = await Client.connect(db, interceptors=[AskerHeader()])
    try:
        async with Worker(serving, task_queue="q", workflows=[Waiting], interceptors=[ReadsHeaders()]):
            handle = await serving.start_workflow(Waiting.run, id="waits", task_queue="q")
            # The asking connection has no worker: its question goes through the database.
            assert await asking.get_workflow_handle("waits").query(Waiting.state) == "waiting"
            assert await handle.query(Waiting.state) == "waiting"  # the serving client's own: no header
            await handle.terminate()
    finally:
        await asking.close()
        await serving.close()
    assert SEEN == ["ada", None]
