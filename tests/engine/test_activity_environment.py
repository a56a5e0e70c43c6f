"""engine.testing.ActivityEnvironment, as a course's activity unit tests use it (issue 11, item 15)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from engine import activity
from engine.converter import DataConverter
from engine.testing import ActivityEnvironment

from tests.engine.course_activities import FakeSession, TranslationActivities, TranslationInput, TranslationOutput


async def test_translate_term_with_a_stubbed_session() -> None:
    session = FakeSession({("hello", "es"): "hola"})
    acts = TranslationActivities(session)
    env = ActivityEnvironment()
    result = await env.run(acts.translate_term, TranslationInput("hello", "es"))
    assert result == TranslationOutput("hola")
    assert session.calls == [("hello", "es")]


async def test_a_failing_translation_raises_as_in_the_worker() -> None:
    acts = TranslationActivities(FakeSession({}))
    with pytest.raises(ValueError, match="no translation of 'goodbye'"):
        await ActivityEnvironment().run(acts.translate_term, TranslationInput("goodbye", "xx"))


def test_a_plain_def_method_runs_at_once() -> None:
    session = FakeSession({})
    session.calls.append(("x", "y"))
    assert ActivityEnvironment().run(TranslationActivities(session).shout, "hi") == "HI!"


def test_info_heartbeats_and_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, activity_type="count", attempt=3)
    beats: list[tuple[object, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)

    def count(n: int) -> str:
        for i in range(n):
            activity.heartbeat(i, "step")
        activity.logger.info("counted")
        return f"{activity.info().activity_type} attempt {activity.info().attempt}"

    assert env.run(count, 2) == "count attempt 3"
    assert beats == [(0, "step"), (1, "step")]
    assert caplog.records[-1].temporal_activity["activity_type"] == "count"  # type: ignore[attr-defined]
    assert not activity.in_activity()


async def test_cancel_reaches_a_running_async_activity() -> None:
    env = ActivityEnvironment()
    started = asyncio.Event()

    async def wait_forever() -> str:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            assert activity.is_cancelled()
            return "cancelled"
        return "finished"

    job = asyncio.ensure_future(env.run(wait_forever))
    await started.wait()
    env.cancel()
    assert await job == "cancelled"


def test_cancel_before_a_sync_run_is_seen_by_is_cancelled() -> None:
    env = ActivityEnvironment()
    env.cancel()
    assert env.run(activity.is_cancelled) is True


async def test_worker_shutdown() -> None:
    env = ActivityEnvironment()

    async def wait_for_shutdown() -> bool:
        await activity.wait_for_worker_shutdown()
        return activity.is_worker_shutdown()

    job = asyncio.ensure_future(env.run(wait_for_shutdown))
    await asyncio.sleep(0)
    assert not job.done()
    env.worker_shutdown()
    assert await asyncio.wait_for(job, 5) is True


def test_payload_converter_is_the_environments() -> None:
    env = ActivityEnvironment()
    converter = DataConverter.default.payload_converter
    env.payload_converter = converter
    assert env.run(activity.payload_converter) is converter



async def test_a_worker_shutting_down_tells_its_running_activities() -> None:
    from datetime import timedelta

    from engine import Worker
    from engine.testing import WorkflowEnvironment
    from tests.engine import shutdown_app as app

    app.SEEN.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[app.Schedules], activities=[app.until_shutdown],
                      graceful_shutdown_timeout=timedelta(seconds=5)):
        await env.client.start_workflow(app.Schedules.run, id="s", task_queue="q")
        for _ in range(500):
            if app.SEEN:
                break
            await asyncio.sleep(0.01)
    await env.shutdown()
    assert app.SEEN == ["started", "shutdown seen"]
