"""Asynchronous activity completion (issue 11, item 8)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from engine import Worker
from engine.client import AsyncActivityCancelledError
from engine.errors import ApplicationError, EngineError
from engine.testing import WorkflowEnvironment

from tests.engine import async_completion_app as app

FIXTURE = Path(__file__).resolve().parents[1] / "histories" / "async_completion.json"


async def _token(label: str) -> bytes:
    while label not in app.TOKENS:
        await asyncio.sleep(0.01)
    return app.TOKENS.pop(label)


async def test_activities_completed_and_failed_through_handles() -> None:
    app.TOKENS.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    client = env.client
    async with Worker(client, task_queue="q", workflows=[app.AsyncCompletion], activities=[app.complete_later, app.complete_later_sync]):
        h = await client.start_workflow(app.AsyncCompletion.run, id="ac", task_queue="q")
        by_token = client.get_async_activity_handle(task_token=await _token("by-token"))
        await by_token.heartbeat("halfway")
        await by_token.complete("done by token")
        with pytest.raises(EngineError, match="no longer running"):
            await by_token.complete("twice")
        await _token("by-id")
        await client.get_async_activity_handle(workflow_id="ac", run_id=None, activity_id="by-id").complete("done by id")
        await client.get_async_activity_handle(task_token=await _token("sync")).complete("done sync")
        failed = client.get_async_activity_handle(task_token=await _token("failed"))
        await failed.fail(ApplicationError("the outside world said no", type="Refused"))
        result = await h.result()
        history = await h.fetch_history()
    await env.shutdown()
    assert result == ["done by token", "done by id", "done sync", "failed: the outside world said no"]
    types = [e.event_type for e in history.events]
    assert types.count("ActivityTaskCompleted") == 3 and types.count("ActivityTaskFailed") == 1
    started = [e for e in history.events if e.event_type == "ActivityTaskStarted"]
    assert [e.attributes["attempt"] for e in started] == [1, 1, 1, 1]


async def test_cancellation_reported_through_a_handle() -> None:
    app.TOKENS.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    client = env.client
    async with Worker(client, task_queue="q", workflows=[app.CancelledAsync], activities=[app.complete_later]):
        h = await client.start_workflow(app.CancelledAsync.run, id="cx", task_queue="q")
        handle = client.get_async_activity_handle(task_token=await _token("to-cancel"))
        with pytest.raises(EngineError, match="nobody requested"):
            await handle.report_cancellation()
        await h.signal(app.CancelledAsync.cancel_it)
        with pytest.raises(AsyncActivityCancelledError):
            for _ in range(200):
                await handle.heartbeat()
                await asyncio.sleep(0.01)
        await handle.report_cancellation()
        result = await h.result()
        history = await h.fetch_history()
    await env.shutdown()
    assert result == "cancelled: CancelledError"
    assert "ActivityTaskCanceled" in [e.event_type for e in history.events]


async def test_bad_handle_arguments_are_one_line_errors() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    with pytest.raises(ValueError, match="task token of this engine"):
        env.client.get_async_activity_handle(task_token=b"nope")
    with pytest.raises(ValueError, match="Name the activity"):
        env.client.get_async_activity_handle(activity_id="x")
    with pytest.raises(EngineError, match="no workflow with id 'missing'"):
        await env.client.get_async_activity_handle(workflow_id="missing", run_id=None, activity_id="1").complete(1)
    await env.shutdown()


@pytest.mark.skipif(not FIXTURE.exists(), reason="fixture not recorded")
async def test_history_shape_matches_real_temporal() -> None:
    app.TOKENS.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    client = env.client
    async with Worker(client, task_queue="q", workflows=[app.AsyncCompletion], activities=[app.complete_later, app.complete_later_sync]):
        h = await client.start_workflow(app.AsyncCompletion.run, id="ac", task_queue="q")
        t = await _token("by-token")
        await client.get_async_activity_handle(task_token=t).heartbeat("halfway")
        await client.get_async_activity_handle(task_token=t).complete("done by token")
        await _token("by-id")
        await client.get_async_activity_handle(workflow_id="ac", run_id=None, activity_id="by-id").complete("done by id")
        await client.get_async_activity_handle(task_token=await _token("sync")).complete("done sync")
        await client.get_async_activity_handle(task_token=await _token("failed")).fail(ApplicationError("no", type="Refused"))
        await h.result()
        ours = await h.fetch_history()
    await env.shutdown()
    theirs = json.loads(FIXTURE.read_text())["events"]

    def activity_events(types: list[str]) -> list[str]:
        return [t for t in types if t.startswith("ActivityTask")]

    their_types = [e["eventType"].removeprefix("EVENT_TYPE_").title().replace("_", "") for e in theirs]
    our_types = [e.event_type for e in ours.events]
    # Ours runs one more activity (the sync one): the same three events more.
    assert activity_events(our_types) == activity_events(their_types)[:6] + ["ActivityTaskScheduled", "ActivityTaskStarted", "ActivityTaskCompleted"] + activity_events(their_types)[6:]
    their_done = next(e for e in theirs if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_COMPLETED")["activityTaskCompletedEventAttributes"]
    our_done = next(e for e in ours.events if e.event_type == "ActivityTaskCompleted").attributes
    assert set(our_done) == set(their_done)
