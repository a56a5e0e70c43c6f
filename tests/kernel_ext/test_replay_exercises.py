"""The checks of tutorial 08's exercises: each wrong answer gets the advice that fits it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine import Worker
from engine.history import History
from engine.replay import ReplayDebugger
from engine.testing import WorkflowEnvironment
from kernel_ext.replay_exercises import check_decision, check_delays
from tests.engine import debugger_workflows as w


async def _storm() -> History:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[w.Storm], activities=[w.flaky]):
        assert await env.client.execute_workflow(w.Storm.run, id="storm", task_queue="q") == -3
        history = await env.client.get_workflow_handle("storm").fetch_history()
    await env.shutdown()
    return history


@pytest.fixture(scope="module")
def storm_history() -> History:
    return asyncio.run(_storm())


def decision(d: object, answer: object) -> str:
    return str(check_decision(d, answer, line_text="break", expected_variable="gone", what="to give up"))


def test_the_decision_check_answers_each_mistake(storm_history: History) -> None:
    d = ReplayDebugger.from_history(storm_history, workflows=[w.Storm])
    assert decision("not a debugger", "gone").startswith("Not yet: what decided to give up\n  ✗ pass the debugger itself")
    wrong_place = decision(d, "gone")
    assert "✗ the debugger is at step 0" in wrong_place and f"debugger.goto(line={d.line_of('break')})" in wrong_place
    d.goto(line=d.line_of("break"))
    assert "set the answer to the name of the variable" in decision(d, None)
    assert "is not a local here; the locals are: attempt, delay, gone, err" in decision(d, "nope")
    assert "it is not what made the workflow decide" in decision(d, "attempt")
    passed = check_decision(d, "gone", line_text="break", expected_variable="gone", what="to give up")
    assert passed.passed and passed.right == [
        f"the debugger stands where the workflow decides to give up (step {d.position})",
        "the workflow decides to give up because gone = True",
    ]
    assert str(passed).startswith("Well done: what decided to give up") and "Hint" not in str(passed)
    # The if that decides counts too, at its last run (where gone is true).
    d.back()
    assert d.state.line is not None and d.state.line.text.startswith("if gone")
    both = ("if gone or attempt >= 10:", "break")
    assert check_decision(d, "gone", line_text=both, expected_variable="gone", what="to give up").passed
    d.goto(line=d.line_of("if gone"))  # its first run: the warehouse was only busy
    early = check_decision(d, "gone", line_text=both, expected_variable="gone", what="to give up")
    assert not early.passed and early.not_yet[0].startswith("right line, but at step") and "(gone = False)" in early.not_yet[0]
    assert early.shown_hint is not None and "run_to(line=...)" in early.shown_hint


def test_the_delay_check_compares_with_the_history_timers(storm_history: History) -> None:
    d = ReplayDebugger.from_history(storm_history, workflows=[w.Storm])
    assert "a list of numbers of seconds" in str(check_delays(d, "1, 1"))
    assert "slept 2 times, your list has 1" in str(check_delays(d, [1]))
    assert "'soon' is not a number of seconds" in str(check_delays(d, [1, "soon"]))
    assert "1 of 2 delays are right; delay 2 is not 2 s" in str(check_delays(d, [1, 2]))
    d.add_breakpoint(line=d.line_of("await workflow.sleep(delay)"))
    seen = []
    while d.run_to() and d.hit:
        seen.append(d.state.locals["delay"])
    assert seen == ["datetime.timedelta(seconds=1)"] * 2
    result = check_delays(d, seen)
    assert result.passed and "it never grows: that is the retry storm" in str(result)
    assert check_delays(d, [timedelta(seconds=1), 1.0]).passed


def test_the_checks_never_raise_for_what_a_learner_passes(storm_history: History) -> None:
    d = ReplayDebugger.from_history(storm_history, workflows=[w.Storm])
    for delays in (None, 3, [None], [[1]], {"a": 1}):
        verdict = check_delays(d, delays)
        assert not verdict.passed and verdict.shown_hint, delays
    assert not check_decision(None, None, line_text="break", expected_variable="gone", what="to give up").passed


def test_the_old_name_of_the_verdict_is_kept() -> None:
    from kernel_ext import replay_exercises
    from kernel_ext.exercises import Verdict

    assert replay_exercises.Check is Verdict
