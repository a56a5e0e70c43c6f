"""The replay debugger: moves forward and back, events, goto, breakpoints, the divergence."""

from __future__ import annotations

import pytest

from engine.history import History
from engine.replay import Breakpoint, ReplayDebugger, TraceStep
from tests.engine import debugger_workflows as w
from tests.engine.debugger_workflows import line_of
from tests.engine.test_replay_trace import histories  # noqa: F401 - the module's fixture

__all__ = ["histories"]


def counting(histories: dict[str, History]) -> ReplayDebugger:
    return ReplayDebugger.from_history(histories["counting"], workflows=[w.Counting])


def test_step_and_back_walk_the_same_steps(histories: dict[str, History]) -> None:
    d = counting(histories)
    assert d.position == 0 and d.state.kind == "event" and d.state.event_id == 1
    forward = [d.state] + [d.step() for _ in range(len(d.steps) - 1)]
    assert [s.index for s in forward] == list(range(len(d.steps)))
    assert d.step() is d.state and d.position == len(d.steps) - 1  # stays at the end
    backward = [d.state] + [d.back() for _ in range(len(d.steps) - 1)]
    assert backward == list(reversed(forward))
    assert d.back().index == 0
    assert d.step(5).index == 5 and d.back(3).index == 2
    assert d.last().index == len(d.steps) - 1 and d.first().index == 0


def test_next_and_previous_event(histories: dict[str, History]) -> None:
    d = counting(histories)
    ids = [d.state.event_id]
    while d.position < len(d.steps) - 1:
        ids.append(d.next_event().event_id)
    assert ids == [e.event_id for e in histories["counting"].events]
    back = [d.prev_event().event_id for _ in range(3)]
    assert back == ids[-2:-5:-1]
    d.first()
    assert d.prev_event().index == 0


def test_goto_an_event_a_line_and_a_step(histories: dict[str, History]) -> None:
    d = counting(histories)
    step = d.goto(event_id=7)
    assert step.kind == "event" and step.event is not None and step.event.event_type == "ActivityTaskCompleted"
    step = d.goto(line=line_of("CALL"))
    assert step.kind == "line" and step.locals["i"] == "0"
    assert d.goto(step=3).index == 3
    with pytest.raises(ValueError, match="never ran"):
        d.goto(line=1)
    with pytest.raises(ValueError, match="has no event 99"):
        d.goto(event_id=99)
    with pytest.raises(ValueError, match="exactly one"):
        d.goto(step=1, line=2)
    with pytest.raises(ValueError, match="steps 0 to"):
        d.goto(step=10_000)


def test_line_breakpoints_stop_at_every_pass_of_a_loop(histories: dict[str, History]) -> None:
    d = counting(histories)
    d.add_breakpoint(line=line_of("CALL"))
    seen = []
    while True:
        step = d.run_to()
        if d.hit is None:
            break
        seen.append(step.locals["i"])
    assert seen == ["0", "1", "2"]
    assert d.position == len(d.steps) - 1
    assert d.run_back().locals["i"] == "2" and d.hit == Breakpoint(line=line_of("CALL"))


def test_event_type_and_event_id_breakpoints(histories: dict[str, History]) -> None:
    d = counting(histories)
    d.add_breakpoint(event_type="ActivityTaskCompleted")
    assert [d.run_to().event_id for _ in range(3)] == [7, 13, 19]
    d.clear_breakpoints()
    d.first()
    point = d.add_breakpoint(event_id=11)
    assert d.run_to().event_id == 11 and d.hit == point
    assert str(point) == "event 11"
    d.remove_breakpoint(point)
    assert d.breakpoints == []
    with pytest.raises(ValueError, match="No breakpoints"):
        d.run_to()
    # A place given to run_to directly needs no breakpoint.
    d.first()
    assert d.run_to(event_type="WorkflowExecutionCompleted").event_id == 23
    with pytest.raises(ValueError, match="event types are"):
        d.add_breakpoint(event_type="TimerFired")
    with pytest.raises(ValueError, match="exactly one"):
        Breakpoint()


def test_listeners_see_every_move(histories: dict[str, History]) -> None:
    d = counting(histories)
    moves: list[TraceStep] = []
    d.observe(moves.append)
    returned = [d.step(), d.next_event(), d.back(), d.goto(event_id=5)]
    assert moves == returned
    assert [m.index for m in moves[:3]] == [1, returned[1].index, returned[1].index - 1]


def test_a_diverged_replay_opens_at_the_divergence(histories: dict[str, History]) -> None:
    d = ReplayDebugger.from_history(histories["counting"], workflows=[w.CountingChangedActivity])
    assert d.state.kind == "divergence" and d.state.line is not None
    assert d.state.line.lineno == line_of("CHANGED_ACTIVITY")
    d.first()
    assert d.to_divergence().kind == "divergence"
    # Stepping back from the divergence shows the line that produced the wrong command.
    assert d.back().kind == "event" and d.state.event_id == 11
    clean = counting(histories)
    with pytest.raises(ValueError, match="did not diverge"):
        clean.to_divergence()
    assert repr(clean).startswith("<ReplayDebugger step 0/")


def test_line_of_and_summary(histories: dict[str, History]) -> None:
    d = counting(histories)
    assert d.line_of("# CALL") == line_of("CALL")
    with pytest.raises(ValueError, match="No line"):
        d.line_of("no such text anywhere")
    step = d.goto(line=line_of("CALL"))
    text = step.summary()
    assert text.splitlines()[0] == f"step {step.index}: {step.describe()}"
    assert "  locals: rounds = 3, i = 0" in text and "  attributes: total = 0" in text
    after = d.step().summary()
    assert "new commands: ScheduleActivityTask(activity_type='add_one', activity_id='1') ← line" in after
    assert "pending activities: add_one (activity id 1, not recorded yet)" in after
