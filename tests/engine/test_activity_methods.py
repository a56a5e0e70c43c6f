"""Activities as methods of a class instance, activity.logger (issue 11, items 2, 6, 12)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine import Worker, activity
from engine.testing import WorkflowEnvironment

from tests.engine.course_activities import FakeSession, TranslationActivities
from tests.engine.course_workflows import TranslationWorkflow


async def test_bound_method_activities_run_with_their_instance() -> None:
    session = FakeSession({("hello", "fr"): "bonjour"})
    acts = TranslationActivities(session)
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[TranslationWorkflow], activities=[acts.translate_term, acts.shout]):
        result = await env.client.execute_workflow(TranslationWorkflow.run, args=["Ana", "fr"], id="t", task_queue="q")
        history = await env.client.get_workflow_handle("t").fetch_history()
    await env.shutdown()
    assert result == "BONJOUR!, Ana"
    assert session.calls == [("hello", "fr")]
    types = [e.attributes["activityType"]["name"] for e in history.events if e.event_type == "ActivityTaskScheduled"]
    assert types == ["translate_term", "shout"]


async def test_unbound_method_given_to_the_worker_is_a_clear_error() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    with pytest.raises(Exception) as info:
        Worker(env.client, task_queue="q", activities=[TranslationActivities.translate_term])
    await env.shutdown()
    assert "instance" in str(info.value) and "TranslationActivities(" in str(info.value)


async def test_activity_logger_adds_the_activity_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    session = FakeSession({("hello", "de"): "hallo"})
    env = await WorkflowEnvironment.start_time_skipping()
    acts = TranslationActivities(session)
    async with Worker(env.client, task_queue="q", workflows=[TranslationWorkflow], activities=[acts.translate_term, acts.shout]):
        await env.client.execute_workflow(TranslationWorkflow.run, args=["Bo", "de"], id="log", task_queue="q")
    await env.shutdown()
    records = [r for r in caplog.records if r.name == "engine.activity"]
    assert [r.levelno for r in records] == [logging.INFO, logging.DEBUG]
    first = records[0]
    details = first.temporal_activity  # type: ignore[attr-defined]
    assert details["activity_type"] == "translate_term" and details["workflow_id"] == "log"
    assert details["attempt"] == 1 and details["namespace"] == "default" and details["task_queue"] == "q"
    assert first.getMessage().startswith("Translating 'hello' ({'activity_id': '1', ")


def test_activity_logger_outside_an_activity_logs_plainly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    activity.logger.info("plain")
    assert caplog.records[-1].getMessage() == "plain"
    assert not hasattr(caplog.records[-1], "temporal_activity")
    assert activity.logger.base_logger is logging.getLogger("engine.activity")


def test_dlab_finds_the_activity_methods_of_a_module_level_instance(tmp_path: Path) -> None:
    from engine.cli._loader import definitions

    app = tmp_path / "course_app.py"
    app.write_text(
        "from tests.engine.course_activities import FakeSession, TranslationActivities\n"
        "acts = TranslationActivities(FakeSession({}))\n"
    )
    found = definitions(None, str(app))
    assert sorted(found.activity_names()) == ["shout", "translate_term"]
    assert all(getattr(a, "__self__", None) is not None for a in found.activities)


def test_methods_decorated_by_the_real_temporalio_are_found_on_instances() -> None:
    pytest.importorskip("temporalio")
    from temporalio import activity as temporalio_activity

    from engine._sandbox.translation import activity_methods

    class Acts:
        @temporalio_activity.defn
        async def one(self, x: int) -> int:
            return x

        def plain(self) -> None:
            pass

    acts = Acts()
    assert activity_methods(acts) == [acts.one]
