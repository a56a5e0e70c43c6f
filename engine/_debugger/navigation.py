"""Moving through a recorded replay trace: steps, events, lines, breakpoints, the divergence.

The trace is recorded once (``engine._debugger.trace``); the debugger is only a position in it, so
every move, backwards too, is instant. The widget of ``%replay`` drives one, tests drive one,
and exercises read ``debugger.state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from engine._debugger.trace import ReplayTrace, TraceStep
from engine.history import History

__all__ = ["Breakpoint", "TraceNavigator"]


@dataclass(frozen=True)
class Breakpoint:
    """Stop at a line of workflow code (``line``, optionally only in a file whose path ends
    with ``file``), at events of a type (``event_type``), or at one event (``event_id``)."""

    line: int | None = None
    event_type: str | None = None
    event_id: int | None = None
    file: str | None = None

    def __post_init__(self) -> None:
        given = [name for name in ("line", "event_type", "event_id") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "A breakpoint needs exactly one of line=, event_type= or event_id= "
                f"(got {', '.join(given) or 'none'}), e.g. Breakpoint(line=12) or Breakpoint(event_type='TimerFired')."
            )
        if self.file is not None and self.line is None:
            raise ValueError("file= narrows a line breakpoint: give line= with it, e.g. Breakpoint(line=12, file='workflows.py').")

    def matches(self, step: TraceStep) -> bool:
        if self.line is not None:
            return (
                step.kind == "line"
                and step.line is not None
                and step.line.lineno == self.line
                and (self.file is None or step.line.filename.endswith(self.file))
            )
        if step.kind == "line" or step.event is None:
            return False
        if self.event_id is not None:
            return step.event.event_id == self.event_id
        return step.event.event_type == self.event_type

    def __str__(self) -> str:
        if self.line is not None:
            return f"line {self.line}" + (f" of {self.file}" if self.file else "")
        if self.event_id is not None:
            return f"event {self.event_id}"
        return f"{self.event_type} events"


class TraceNavigator:
    """A position in a ``ReplayTrace``, with moves forward and back and breakpoints (the
    body of ``engine.replay.ReplayDebugger``, which adds ``from_history``).

    ``state`` is the current ``TraceStep`` (line, locals, attributes, event, commands, time,
    pending work). A replay that diverged opens at the divergence."""

    def __init__(self, trace: ReplayTrace, *, position: int | None = None) -> None:
        if not trace.steps:
            raise ValueError(f"The trace of {trace.history.workflow_id!r} has no steps: the history has no events to replay.")
        self.trace = trace
        self.breakpoints: list[Breakpoint] = []
        #: The breakpoint the last ``run_to``/``run_back`` stopped at (None: it ran to the end).
        self.hit: Breakpoint | None = None
        self._listeners: list[Callable[[TraceStep], None]] = []
        start = position if position is not None else (len(trace.steps) - 1 if trace.divergence is not None else 0)
        self._position = self._checked(start)

    # ------------------------------------------------------------ where we are
    @property
    def position(self) -> int:
        return self._position

    @property
    def state(self) -> TraceStep:
        """The current step: everything the trace knows at this point."""
        return self.trace.steps[self._position]

    @property
    def steps(self) -> tuple[TraceStep, ...]:
        return self.trace.steps

    def observe(self, listener: Callable[[TraceStep], None]) -> None:
        """Call ``listener(step)`` after every move (the widget redraws so)."""
        self._listeners.append(listener)

    def _checked(self, index: int) -> int:
        last = len(self.trace.steps) - 1
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"A step number is an int from 0 to {last}, not {type(index).__name__}.")
        if not 0 <= index <= last:
            raise ValueError(f"Step {index} does not exist: this trace has steps 0 to {last}.")
        return index

    def _move(self, index: int) -> TraceStep:
        self._position = index
        step = self.state
        for listener in self._listeners:
            listener(step)
        return step

    # ------------------------------------------------------------ moves
    def step(self, count: int = 1) -> TraceStep:
        """Forward ``count`` steps (stops at the last)."""
        return self._move(min(self._position + max(count, 0), len(self.trace.steps) - 1))

    def back(self, count: int = 1) -> TraceStep:
        """Back ``count`` steps (stops at the first)."""
        return self._move(max(self._position - max(count, 0), 0))

    def first(self) -> TraceStep:
        return self._move(0)

    def last(self) -> TraceStep:
        return self._move(len(self.trace.steps) - 1)

    def next_event(self) -> TraceStep:
        """Forward to the next history event applied (or the end of a failed replay)."""
        return self._move(self._find(lambda s: s.kind != "line", range(self._position + 1, len(self.trace.steps)), len(self.trace.steps) - 1))

    def prev_event(self) -> TraceStep:
        """Back to the previous history event applied."""
        return self._move(self._find(lambda s: s.kind != "line", range(self._position - 1, -1, -1), 0))

    def goto(self, *, event_id: int | None = None, line: int | None = None, step: int | None = None) -> TraceStep:
        """Jump to a step number, to the step that applies event ``event_id``, or to the first
        time line ``line`` ran. Exactly one of them."""
        given = [name for name, value in (("event_id", event_id), ("line", line), ("step", step)) if value is not None]
        if len(given) != 1:
            raise ValueError(f"goto takes exactly one of event_id=, line= or step= (got {', '.join(given) or 'none'}).")
        if step is not None:
            return self._move(self._checked(step))
        if event_id is not None:
            found = self._find(lambda s: s.kind == "event" and s.event_id == event_id, range(len(self.trace.steps)), None)
            if found is None:
                raise ValueError(self._no_event(event_id))
            return self._move(found)
        found = self._find(lambda s: s.kind == "line" and s.lineno == line, range(len(self.trace.steps)), None)
        if found is None:
            raise ValueError(f"Line {line} never ran in this replay; lines that ran: {self._lines_that_ran()}.")
        return self._move(found)

    def to_divergence(self) -> TraceStep:
        """Jump to where the code disagreed with the history (or failed)."""
        if self.trace.ok:
            raise ValueError(f"This replay of {self.trace.history.workflow_id!r} did not diverge: the code agrees with all {len(self.trace.history)} events.")
        return self.last()

    def line_of(self, text: str) -> int:
        """The number of the first line of the workflow's source that contains ``text``
        (``debugger.goto(line=debugger.line_of("await workflow.sleep"))``)."""
        for filename in self.trace.files:
            for number, line in enumerate(self.trace.source_lines(filename), start=1):
                if text in line:
                    return number
        raise ValueError(f"No line of the workflow's source contains {text!r}.")

    # ------------------------------------------------------------ breakpoints
    def add_breakpoint(
        self, *, line: int | None = None, event_type: str | None = None, event_id: int | None = None, file: str | None = None
    ) -> Breakpoint:
        """Add a breakpoint (see ``Breakpoint``); ``run_to()`` and ``run_back()`` stop there."""
        point = Breakpoint(line=line, event_type=event_type, event_id=event_id, file=file)
        self._check_breakpoint(point)
        if point not in self.breakpoints:
            self.breakpoints.append(point)
        return point

    def remove_breakpoint(self, point: Breakpoint) -> None:
        if point in self.breakpoints:
            self.breakpoints.remove(point)

    def clear_breakpoints(self) -> None:
        self.breakpoints.clear()

    def run_to(self, *, line: int | None = None, event_type: str | None = None, event_id: int | None = None) -> TraceStep:
        """Forward to the next step that matches the given place, or, with no arguments, any
        breakpoint; at the last step if none does (``hit`` says which one stopped it)."""
        return self._run(self._targets(line, event_type, event_id), range(self._position + 1, len(self.trace.steps)), len(self.trace.steps) - 1)

    def run_back(self, *, line: int | None = None, event_type: str | None = None, event_id: int | None = None) -> TraceStep:
        """Back to the previous step that matches (as ``run_to``); the first step if none does."""
        return self._run(self._targets(line, event_type, event_id), range(self._position - 1, -1, -1), 0)

    def _targets(self, line: int | None, event_type: str | None, event_id: int | None) -> list[Breakpoint]:
        targets = []
        if line is not None:
            targets.append(Breakpoint(line=line))
        if event_type is not None:
            targets.append(Breakpoint(event_type=event_type))
        if event_id is not None:
            targets.append(Breakpoint(event_id=event_id))
        for point in targets:
            self._check_breakpoint(point)
        if not targets and not self.breakpoints:
            raise ValueError("No breakpoints: add one (debugger.add_breakpoint(line=12)) or say where, e.g. run_to(event_type='TimerFired').")
        return targets or list(self.breakpoints)

    def _run(self, targets: list[Breakpoint], order: Iterable[int], end: int) -> TraceStep:
        self.hit = None
        for index in order:
            step = self.trace.steps[index]
            for point in targets:
                if point.matches(step):
                    self.hit = point
                    return self._move(index)
        return self._move(end)

    def _check_breakpoint(self, point: Breakpoint) -> None:
        if point.event_type is not None:
            known = sorted({e.event_type for e in self.trace.history.events})
            if point.event_type not in known:
                raise ValueError(
                    f"No {point.event_type!r} event in this history; its event types are: {', '.join(known)}. "
                    "Names are Temporal's, e.g. 'ActivityTaskCompleted', 'TimerFired'."
                )

    # ------------------------------------------------------------ helpers
    def _find(self, wanted: Callable[[TraceStep], bool], order: Iterable[int], default: Any) -> Any:
        for index in order:
            if wanted(self.trace.steps[index]):
                return index
        return default

    def _no_event(self, event_id: int) -> str:
        ids = [e.event_id for e in self.trace.history.events]
        if event_id not in ids:
            return f"The history has no event {event_id}: its events are {ids[0]} to {ids[-1]}." if ids else "The history is empty."
        reached = max((s.event_id or 0 for s in self.trace.steps if s.kind == "event"), default=0)
        return f"Event {event_id} was never applied: the replay stopped at event {reached} ({'divergence' if self.trace.divergence else 'failure'})."

    def _lines_that_ran(self) -> str:
        lines = sorted({s.lineno for s in self.trace.steps if s.kind == "line" and s.lineno is not None})
        return ", ".join(map(str, lines)) or "none"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} step {self._position}/{len(self.trace.steps) - 1}: {self.state.describe()}>"
