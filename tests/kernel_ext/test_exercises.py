"""kernel_ext.exercises: checks that look at real runs and answer with a verdict, never a traceback."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine import activity, workflow
from engine.errors import ApplicationError, WorkflowUpdateFailedError
from kernel_ext._session import Session
from kernel_ext.exercises import Check, Exercise, NotYet, Verdict, exercise


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class Shout:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(shout, text, start_to_close_timeout=timedelta(seconds=5))


@workflow.defn
class Broken:
    @workflow.run
    async def run(self, text: str) -> str:
        return text.nickname  # type: ignore[attr-defined,no-any-return]  # a learner's bug: fails the task


@workflow.defn
class Refuses:
    @workflow.run
    async def run(self, text: str) -> str:
        raise ApplicationError("no shouting here", type="Refused")


@workflow.defn
class Waits:
    @workflow.run
    async def run(self, text: str) -> str:
        await workflow.wait_condition(lambda: False)
        return text


async def _session() -> Session:
    session = Session(":memory:", "skip")
    session.define([shout, Shout, Broken, Refuses, Waits])
    await session.start_worker("q")
    return session


def test_public_names() -> None:
    import kernel_ext.exercises as ex

    assert ex.__all__ == ["Check", "CheckedRun", "Exercise", "NotYet", "Verdict", "exercise", "exercises_in", "current_session", "judge"]


def test_a_verdict_shows_what_is_right_what_is_not_yet_and_one_hint() -> None:
    from kernel_ext.exercises import Finding

    verdict = Verdict("t", (Finding(True, "ran"), Finding(False, "no timer", "use workflow.sleep"), Finding(False, "x", "later")), "general")
    assert not verdict.passed and verdict.right == ["ran"] and verdict.not_yet == ["no timer", "x"]
    assert verdict.text() == "Not yet: t\n  ✓ ran\n  ✗ no timer\n  ✗ x\nHint: use workflow.sleep"
    bundle = verdict._repr_mimebundle_()
    assert "Not yet" in bundle["text/html"] and "use workflow.sleep" in bundle["text/html"]
    passed = Verdict("t", (Finding(True, "<b>ran</b>"),), "general")
    assert passed.passed and passed.text() == "Well done: t\n  ✓ <b>ran</b>" and passed.shown_hint is None
    assert "&lt;b&gt;ran" in passed._repr_mimebundle_()["text/html"]  # learner text is escaped
    # With no finding of its own, a "not yet" shows the exercise's hint.
    assert Verdict("t", (Finding(False, "x"),), "general").shown_hint == "general"


def test_an_exercise_must_be_an_async_function() -> None:
    with pytest.raises(TypeError, match="async def"):
        exercise("t", hint="h")(lambda c: None)  # type: ignore[arg-type, return-value]


async def test_whatever_a_check_raises_ends_as_not_yet_with_the_exercise_hint() -> None:
    @exercise("boom", hint="think about activities")
    async def boom(c: Check) -> None:
        c.ok("started")
        raise AttributeError("'NoneType' object has no attribute 'events'\nsecond line")

    verdict = await boom.check(session=object())
    assert isinstance(boom, Exercise) and boom.name == "boom"
    assert verdict.text() == (
        "Not yet: boom\n  ✓ started\n  ✗ the check could not go on: AttributeError: 'NoneType' object has no "
        "attribute 'events'\nHint: think about activities"
    )


async def test_require_stops_and_not_yet_carries_its_own_hint() -> None:
    seen: list[str] = []

    @exercise("stops", hint="general")
    async def stops(c: Check) -> None:
        c.require(False, "right", "first problem", "specific")
        seen.append("went on")

    @exercise("raises", hint="general")
    async def raises(c: Check) -> None:
        raise NotYet("nothing to see", "look here")

    verdict = await stops.check(session=object())
    assert seen == [] and verdict.not_yet == ["first problem"] and verdict.shown_hint == "specific"
    verdict = await raises.check(session=object())
    assert verdict.text() == "Not yet: raises\n  ✗ nothing to see\nHint: look here"


async def test_runs_report_how_they_ended_without_raising() -> None:
    session = await _session()
    results: dict[str, Any] = {}

    @exercise("runs", hint="h")
    async def runs(c: Check) -> None:
        results["ok"] = await c.run("Shout", "hi", task_queue="q", workflow_id="ok")
        results["broken"] = await c.run("Broken", "hi", task_queue="q", workflow_id="broken")
        results["refuses"] = await c.run("Refuses", "hi", task_queue="q", workflow_id="refuses")
        results["waits"] = await c.run("Waits", "hi", task_queue="q", workflow_id="waits", timeout=0.3)
        c.require_completed(results["ok"])

    try:
        verdict = await runs.check(session)
        assert verdict.passed, verdict.text()
        ok = results["ok"]
        assert ok.result == "HI" and ok.activity_types() == ["shout"] and len(ok.attempts_of("shout")) == 1
        assert ok.count("ActivityTaskScheduled") == 1 and ok.event_types()[-1] == "WorkflowExecutionCompleted"
        broken = results["broken"]
        assert broken.status == "TASK_FAILED" and "nickname" in (broken.problem or "")
        assert broken.event_types()[-1] == "WorkflowExecutionTerminated"  # the check leaves nothing running
        refuses = results["refuses"]
        assert refuses.status == "FAILED" and refuses.problem == "the run ended FAILED: ApplicationError: no shouting here"
        waits = results["waits"]
        assert waits.status == "UNFINISHED" and "did not finish within 0.3 s" in (waits.problem or "")
        assert waits.event_types()[-1] == "WorkflowExecutionTerminated"
    finally:
        await session.close()


async def test_no_worker_or_no_definition_is_a_not_yet_that_says_what_to_start() -> None:
    session = Session(":memory:", "skip")
    session.define([shout, Shout])

    @exercise("needs", hint="h")
    async def needs(c: Check) -> None:
        await c.run("Shout", "hi", task_queue="Q2")

    @exercise("unknown", hint="h")
    async def unknown(c: Check) -> None:
        await c.run("Whisper", "hi", task_queue="q")

    try:
        verdict = await needs.check(session)
        assert "no worker of this kernel polls task queue 'Q2'" in verdict.text()
        assert verdict.shown_hint == "Start one: %worker start --task-queue Q2 (task queue names are case-sensitive)."
        verdict = await unknown.check(session)
        assert verdict.not_yet == ["no workflow named Whisper is defined yet: run its %%workflow cell."]
    finally:
        await session.close()


def test_judge_checks_plain_values_at_once_and_never_raises() -> None:
    from kernel_ext.exercises import judge

    def looks(c: Check) -> None:
        c.ok("a list")
        c.require(False, "", "it is empty", "add the delays")
        c.ok("never reached")

    verdict = judge("plain", "general", looks)
    assert verdict.text() == "Not yet: plain\n  ✓ a list\n  ✗ it is empty\nHint: add the delays"
    assert judge("boom", "general", lambda c: [][1]).text() == (
        "Not yet: boom\n  ✗ the check could not go on: IndexError: list index out of range\nHint: general"
    )
    assert judge("empty", "general", lambda c: None).not_yet == ["the check found nothing to look at"]

    def update_refused(c: Check) -> None:
        raise WorkflowUpdateFailedError(cause=ApplicationError("no such guest", type="Unknown"))

    # str() of the error says only "Workflow update failed" (as temporalio's): the finding names the cause.
    assert judge("update", "general", update_refused).not_yet == [
        "the check could not go on: WorkflowUpdateFailedError: Workflow update failed: ApplicationError (Unknown): no such guest"
    ]
    assert judge("fine", "general", lambda c: c.ok("right")).passed


@workflow.defn
class Countdown:
    @workflow.run
    async def run(self, left: int, done: int = 0) -> int:
        if left > 0:
            workflow.continue_as_new(args=[left - 1, done + 1])
        return done


async def test_chain_gives_every_run_of_a_continue_as_new_chain() -> None:
    session = Session(":memory:", "skip")
    session.define([Countdown, Shout, shout])
    await session.start_worker("q")
    seen: dict[str, Any] = {}

    @exercise("chain", hint="h")
    async def chain(c: Check) -> None:
        run = await c.run("Countdown", 2, task_queue="q", workflow_id="countdown")
        seen["countdown"] = (run.result, [[e.event_type for e in h.events][-1] for h in await c.chain(run)])
        single = await c.run("Shout", "hi", task_queue="q", workflow_id="single")
        seen["single"] = len(await c.chain(single))
        c.ok("done")

    try:
        assert (await chain.check(session)).passed
        assert seen["countdown"] == (2, ["WorkflowExecutionContinuedAsNew"] * 2 + ["WorkflowExecutionCompleted"])
        assert seen["single"] == 1
    finally:
        await session.close()
