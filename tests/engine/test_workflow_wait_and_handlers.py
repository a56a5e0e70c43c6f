"""temporalio's workflow.wait / as_completed (asyncio's, deterministic: lists, input order),
workflow.all_handlers_finished, and ApplicationError(category=...) recorded as Temporal does."""

from __future__ import annotations

import asyncio

import pytest

from engine import Worker, workflow
from engine.client import WorkflowFailureError
from engine.errors import ApplicationError, ApplicationErrorCategory
from engine.testing import WorkflowEnvironment


@workflow.defn
class Waiter:
    @workflow.run
    async def run(self) -> list[str]:
        slow = asyncio.ensure_future(workflow.sleep(30))
        fast = asyncio.ensure_future(workflow.sleep(1))
        done, pending = await workflow.wait([slow, fast], return_when=asyncio.FIRST_COMPLETED)
        out = [f"done={[f is fast for f in done]} pending={[f is slow for f in pending]}"]
        done, pending = await workflow.wait([slow, fast], timeout=5)
        out.append(f"timeout: done={len(done)} pending={len(pending)} {type(done).__name__}")
        order = []
        for next_one in workflow.as_completed([asyncio.ensure_future(self.after(3, "c")), asyncio.ensure_future(self.after(2, "b"))]):
            order.append(await next_one)
        out.append("".join(order))
        return out

    async def after(self, seconds: float, text: str) -> str:
        await workflow.sleep(seconds)
        return text


async def test_wait_and_as_completed_are_asyncios_with_lists() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Waiter], max_cached_workflows=0):
        result = await env.client.execute_workflow(Waiter.run, id="w", task_queue="q")
    await env.shutdown()
    assert result == ["done=[True] pending=[True]", "timeout: done=1 pending=1 list", "bc"]


@workflow.defn
class Handlers:
    def __init__(self) -> None:
        self.log: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: len(self.log) >= 1)
        self.log.append(f"finished={workflow.all_handlers_finished()}")
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.log.append(f"finished={workflow.all_handlers_finished()}")
        return self.log

    @workflow.update
    async def slow(self, seconds: int) -> str:
        self.log.append("update started")
        await workflow.sleep(seconds)
        self.log.append("update done")
        return "ok"

    @workflow.signal
    async def ping(self) -> None:
        await workflow.sleep(1)
        self.log.append("signal done")


async def test_all_handlers_finished_counts_running_update_and_signal_handlers() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Handlers], max_cached_workflows=0):
        handle = await env.client.start_workflow(Handlers.run, id="h", task_queue="q")
        await handle.signal(Handlers.ping)
        assert await handle.execute_update(Handlers.slow, 10) == "ok"
        result = await handle.result()
    await env.shutdown()
    assert result[0] in ("update started", "signal done")
    assert result[-1] == "finished=True" and "finished=False" in result
    assert result.index("update done") < result.index("finished=True")


@workflow.defn
class Benign:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("not ready yet", type="NotReady", category=ApplicationErrorCategory.BENIGN)


async def test_application_error_category_is_recorded_as_temporal_does() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Benign]):
        handle = await env.client.start_workflow(Benign.run, id="b", task_queue="q")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        history = await handle.fetch_history()
    await env.shutdown()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.category == ApplicationErrorCategory.BENIGN
    failed = [e for e in history.events if e.event_type == "WorkflowExecutionFailed"][0]
    app = failed.attributes["failure"]["applicationFailureInfo"]
    # Temporal's JSON: the enum's name, and no field at all for UNSPECIFIED (proto3 default).
    assert app["category"] == "APPLICATION_ERROR_CATEGORY_BENIGN"
    assert "category" not in _info_of(ApplicationError("x"))


async def test_the_failure_has_the_shape_a_dev_server_records() -> None:
    # tests/histories/benign_failure.json: the same raise on a real Temporal dev server.
    import json
    from pathlib import Path

    from engine.history import History

    def failure_of(history: History) -> dict[str, object]:
        document = json.loads(history.to_json())  # Temporal's JSON (proto3 defaults left out)
        [failed] = [e for e in document["events"] if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED"]
        failure = failed["workflowExecutionFailedEventAttributes"]["failure"]
        return {k: v for k, v in failure.items() if k not in ("stackTrace", "source")}

    recorded = Path(__file__).resolve().parents[1] / "histories" / "benign_failure.json"
    real = History.from_json("fixture-benign-failure", recorded.read_text())
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Benign]):
        handle = await env.client.start_workflow(Benign.run, id="b", task_queue="q")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        ours = await handle.fetch_history()
    await env.shutdown()
    assert failure_of(ours) == failure_of(real)


def _info_of(error: ApplicationError) -> dict[str, object]:
    from engine.converter import DataConverter

    failure = DataConverter.default.failure_converter.to_failure(error, DataConverter.default.payload_converter)
    return failure["applicationFailureInfo"]


def test_application_error_category_default_and_check() -> None:
    assert ApplicationError("x").category == ApplicationErrorCategory.UNSPECIFIED
    with pytest.raises(TypeError, match="category must be an ApplicationErrorCategory"):
        ApplicationError("x", category="BENIGN")  # type: ignore[arg-type]


def test_the_sandbox_maps_temporalios_names_onto_these() -> None:
    from engine import errors
    from engine._sandbox import temporalio_names as _temporalio_names

    modules = _temporalio_names.build_modules()
    theirs = modules["temporalio.workflow"]
    assert (theirs.wait, theirs.as_completed, theirs.all_handlers_finished) == (
        workflow.wait, workflow.as_completed, workflow.all_handlers_finished
    )
    assert modules["temporalio.exceptions"].ApplicationErrorCategory is errors.ApplicationErrorCategory
