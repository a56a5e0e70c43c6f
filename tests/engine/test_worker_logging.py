"""Logging as temporalio's: workflow.logger's records carry the run's details and are silent in
replay; the worker warns on each failed workflow task (first, then on change or once a minute)
and on each failed activity attempt, so a run that keeps failing is never silent."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import timedelta

import pytest

from engine import Worker, activity, workflow
from engine.worker._logs import WorkflowTaskFailures
from engine.common import RetryPolicy
from engine.testing import WorkflowEnvironment

BROKEN = "This error is an experiment to check the log level"


@workflow.defn
class Chatty:
    @workflow.run
    async def run(self) -> None:
        workflow.logger.info("hello from the workflow")
        await workflow.sleep(timedelta(seconds=1))
        workflow.logger.workflow_info_on_message = False
        try:
            workflow.logger.info("plain message", extra={"mine": 1})
        finally:
            workflow.logger.workflow_info_on_message = True


@workflow.defn
class Broken:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError(BROKEN)


@activity.defn
async def flaky(x: str) -> str:
    if activity.info().attempt < 3:
        raise ConnectionError(f"bank down for {x}")
    return x


@workflow.defn
class CallsFlaky:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            flaky, "ada", start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=1)),
        )


async def test_workflow_logger_records_carry_temporal_workflow_and_honour_info_on_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.workflow")
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Chatty], max_cached_workflows=0):
        await env.client.execute_workflow(Chatty.run, id="chatty", task_queue="q")
    await env.shutdown()
    records = [r for r in caplog.records if r.name == "engine.workflow"]
    assert [r.msg.split(" (")[0] for r in records] == ["hello from the workflow", "plain message"]  # none from replay
    first, second = records
    details = first.temporal_workflow  # type: ignore[attr-defined]
    assert details["workflow_id"] == "chatty" and details["workflow_type"] == "Chatty" and details["task_queue"] == "q"
    assert set(details) == {"attempt", "namespace", "run_id", "task_queue", "workflow_id", "workflow_type"}
    assert first.getMessage() == f"hello from the workflow ({details})"
    assert second.getMessage() == "plain message" and second.mine == 1  # type: ignore[attr-defined]
    assert second.temporal_workflow["run_id"] == details["run_id"]  # type: ignore[attr-defined]
    assert workflow.logger.base_logger is logging.getLogger("engine.workflow")


async def test_a_failing_workflow_task_is_logged_as_temporalio_does() -> None:
    # As the samples' hello_change_log_level test: a handler on the root logger sees it.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    records: list[logging.LogRecord] = []
    handler.addFilter(lambda r: records.append(r) or True)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        env = await WorkflowEnvironment.start_time_skipping()
        async with Worker(env.client, task_queue="q", workflows=[Broken]):
            handle = await env.client.start_workflow(Broken.run, id="broken", task_queue="q")
            for _ in range(200):
                if BROKEN in stream.getvalue():
                    break
                await asyncio.sleep(0.01)
            await handle.terminate()
        await env.shutdown()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert BROKEN in stream.getvalue()
    failed = [r for r in records if getattr(r, "__temporal_error_identifier", None) == "WorkflowTaskFailure"]
    assert failed and failed[0].levelno == logging.WARNING and failed[0].name == "engine.worker._workflow_instance"
    assert "broken" in failed[0].getMessage() and "attempt 1" in failed[0].getMessage()
    assert failed[0].temporal_workflow["workflow_id"] == "broken"  # type: ignore[attr-defined]


async def test_a_failing_activity_attempt_is_logged_with_its_attempt(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="engine.worker")
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[CallsFlaky], activities=[flaky]):
        assert await env.client.execute_workflow(CallsFlaky.run, id="flaky", task_queue="q") == "ada"
    await env.shutdown()
    failed = [r for r in caplog.records if getattr(r, "__temporal_error_identifier", None) == "ActivityFailure"]
    assert [r.temporal_activity["attempt"] for r in failed] == [1, 2]  # type: ignore[attr-defined]
    assert all(r.levelno == logging.WARNING and r.name == "engine.worker._activity" for r in failed)
    assert "'attempt': 1" in failed[0].getMessage() and "'activity_type': 'flaky'" in failed[0].getMessage()
    assert "bank down for ada" in caplog.text


def test_repeated_workflow_task_failures_are_rate_limited_and_reported_on_change(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    failures = WorkflowTaskFailures(repeat_interval=60, clock=lambda: now[0])
    details = {"run_id": "r1", "workflow_id": "w", "workflow_type": "T", "attempt": 1}
    caplog.set_level(logging.WARNING, logger="engine.worker")
    cause = "WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE"
    for t in (0, 1, 2, 30):  # the first is reported, three repeats within a minute are not
        now[0] = t
        failures.failed(details, RuntimeError("same"), cause)
    assert len(caplog.records) == 1
    now[0] = 61
    failures.failed(details, RuntimeError("same"), cause)  # a minute later: reported, with the count
    assert len(caplog.records) == 2 and "3 more identical failures" in caplog.records[-1].getMessage()
    now[0] = 62
    failures.failed(details, RuntimeError("changed"), cause)  # a new failure: at once
    assert len(caplog.records) == 3
    failures.completed("r1")
    failures.failed(details, RuntimeError("changed"), cause)  # after a success: news again
    assert len(caplog.records) == 4



@workflow.defn
class Noted:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update
    async def note(self, text: str) -> str:
        info = workflow.current_update_info()
        workflow.logger.info("noting %s", text)
        self.done = True
        return f"{info.name}:{info.id}" if info else "none"

    @note.validator
    def check(self, text: str) -> None:
        workflow.logger.info("checking %s", text)


async def test_logs_in_an_update_name_the_update(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.workflow")
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Noted]):
        handle = await env.client.start_workflow(Noted.run, id="noted", task_queue="q")
        assert await handle.execute_update(Noted.note, "x", id="u-1") == "note:u-1"
        await handle.result()
    await env.shutdown()
    records = [r for r in caplog.records if r.name == "engine.workflow"]
    assert [r.msg.split(" (")[0] for r in records] == ["checking %s", "noting %s"]
    for record in records:
        assert record.temporal_workflow["update_id"] == "u-1" and record.temporal_workflow["update_name"] == "note"  # type: ignore[attr-defined]
        assert "'update_name': 'note'" in record.getMessage()
