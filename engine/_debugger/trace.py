"""Recording a replay trace: every history event applied and every line of workflow code run.

``record(replayer, history)`` replays ``history`` as ``Replayer.replay_workflow`` does, with
two observers attached for that one replay:

- the runtime's event hook (``WorkflowInstance._tracer``, a None check when nobody traces)
  sees each history event before it is applied;
- a ``sys.settrace`` function that answers only for frames of the workflow's own source
  files, so the engine, asyncio and libraries run untraced, sees each line before it runs.

Each observation becomes a ``TraceStep`` with the state of the code at that moment, turned
into bounded text at once (see ``engine._debugger.snapshot``). A non-determinism error ends the trace
with a ``divergence`` step naming the recorded event, the command the code produced and the
line that produced it; any other failure of workflow code ends it with an ``error`` step.
"""

from __future__ import annotations

import linecache
import sys
import types
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping

from engine._runtime.code_lines import CodeLine
from engine._runtime.commands import COMMAND_EVENTS, Command
from engine._runtime.instance import WorkflowInstance, WorkflowTaskError
from engine._debugger.snapshot import snapshot_mapping
from engine.errors import NondeterminismError
from engine.history import History, HistoryEvent

if TYPE_CHECKING:
    from engine.replay import Replayer

__all__ = ["TracedCommand", "Pending", "Divergence", "TraceStep", "ReplayTrace", "record"]


@dataclass(frozen=True)
class TracedCommand:
    """A command of workflow code: its kind, a short description, and the line that made it."""

    kind: str
    text: str
    line: CodeLine | None

    def __str__(self) -> str:
        return self.text if self.line is None else f"{self.text} ← line {self.line.lineno}"


@dataclass(frozen=True)
class Pending:
    """What the workflow waits for at a step: activities, timers, conditions, child runs."""

    activities: tuple[str, ...] = ()
    timers: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    children: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.activities or self.timers or self.conditions or self.children)


@dataclass(frozen=True)
class Divergence:
    """Where replayed code disagreed with the history (non-determinism)."""

    event_id: int | None
    recorded: str | None
    produced: str | None
    line: CodeLine | None
    message: str


@dataclass(frozen=True)
class TraceStep:
    """One step of a trace: a history event about to be applied (``kind == "event"``), a line
    of workflow code about to run (``"line"``), or the end of a failed replay
    (``"divergence"``, ``"error"``). ``locals`` and ``attributes`` are text snapshots taken
    at that moment; ``commands`` are those the code produced so far in the current workflow
    task, ``new_commands`` those it produced since the step before; ``matched`` is, on an
    event that records a command, the command the code produced for it."""

    index: int
    kind: str
    event: HistoryEvent | None
    line: CodeLine | None
    locals: Mapping[str, str]
    attributes: Mapping[str, str]
    commands: tuple[TracedCommand, ...]
    new_commands: tuple[TracedCommand, ...]
    time: datetime
    replaying: bool
    pending: Pending
    matched: TracedCommand | None = None
    error: str | None = None

    @property
    def event_id(self) -> int | None:
        return None if self.event is None else self.event.event_id

    @property
    def lineno(self) -> int | None:
        return None if self.line is None else self.line.lineno

    def summary(self) -> str:
        """Several lines: what happens, then locals, attributes, new commands, pending work."""
        out = [f"step {self.index}: {self.describe()}"]
        for title, values in (("locals", self.locals), ("attributes", self.attributes)):
            if values:
                out.append(f"  {title}: " + ", ".join(f"{k} = {v}" for k, v in values.items()))
        if self.new_commands:
            out.append("  new commands: " + "; ".join(map(str, self.new_commands)))
        for title, items in (
            ("pending activities", self.pending.activities),
            ("pending timers", self.pending.timers),
            ("waiting conditions", self.pending.conditions),
            ("pending child workflows", self.pending.children),
        ):
            if items:
                out.append(f"  {title}: " + "; ".join(items))
        return "\n".join(out)

    def describe(self) -> str:
        """One line: what happens at this step."""
        event = f"event {self.event.event_id} {self.event.event_type}" if self.event is not None else "no event yet"
        if self.kind == "event":
            return event + (f" (recorded for {self.matched})" if self.matched is not None else "")
        if self.kind == "line" and self.line is not None:
            return f"line {self.line.lineno} in {self.line.function}: {self.line.text}  [{event}]"
        if self.kind == "divergence":
            return f"divergence at {event}: {self.error}"
        return f"error: {self.error}"


@dataclass(frozen=True)
class ReplayTrace:
    """Every step of one replay of a history against workflow code (``Replayer.trace_workflow``)."""

    history: History
    workflow_type: str
    steps: tuple[TraceStep, ...]
    files: tuple[str, ...]
    divergence: Divergence | None = None
    failure: BaseException | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        """True when the code replayed the whole history without disagreeing or failing."""
        return self.failure is None

    def source_lines(self, filename: str | None = None) -> list[str]:
        """The lines of a traced source file (the workflow's own by default)."""
        name = filename or (self.files[0] if self.files else "")
        return linecache.getlines(name)

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        outcome = "replayed cleanly" if self.ok else ("diverged" if self.divergence else "failed")
        return f"<ReplayTrace {self.workflow_type} {self.history.workflow_id!r}: {len(self.steps)} steps, {len(self.history)} events, {outcome}>"


_CLOSING = frozenset({"CompleteWorkflowExecution", "FailWorkflowExecution", "CancelWorkflowExecution", "ContinueAsNewWorkflowExecution"})


def _traced(command: Command) -> TracedCommand:
    return TracedCommand(command.kind, command.describe(), command.source)


class _Recorder:
    """The observers of one traced replay; builds the steps."""

    def __init__(self, instance: WorkflowInstance, files: frozenset[str]) -> None:
        self.instance = instance
        self.files = files
        self.steps: list[TraceStep] = []
        self._wanted: dict[types.CodeType, bool] = {}
        self._event: HistoryEvent | None = None
        self._seen: dict[int, TracedCommand] = {}
        self._held: list[Command] = []  # keeps the ids of _seen from being reused
        self._sent: list[TracedCommand] = []
        self._open_list: list[Command] | None = None
        self._last_frame: types.FrameType | None = None
        self.head: Command | None = None  # the command the current event is matched against
        self.last_line: CodeLine | None = None

    # ------------------------------------------------------------ hooks
    def on_event(self, instance: WorkflowInstance, event: HistoryEvent) -> None:
        self._event = event
        unmatched = instance._unmatched
        self.head = unmatched[0] if unmatched else None
        if event.event_type == "WorkflowTaskStarted":
            self._take_sent()
            self._sent = []
        matched = None
        if self.head is not None and COMMAND_EVENTS.get(event.event_type) == self.head.kind:
            matched = self._known(self.head)
        self._add("event", None, self._last_frame, matched=matched)

    def trace_call(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        wanted = self._wanted.get(code)
        if wanted is None:
            wanted = self._wanted[code] = code.co_filename in self.files
        return self.trace_line if wanted else None

    def trace_line(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            code = frame.f_code
            lineno = frame.f_lineno
            line = CodeLine(code.co_filename, lineno, code.co_name, linecache.getline(code.co_filename, lineno).strip())
            self._last_frame = frame
            self.last_line = line
            self._add("line", line, frame)
        return self.trace_line

    # ------------------------------------------------------------ steps
    def _known(self, command: Command) -> TracedCommand:
        traced = self._seen.get(id(command))
        if traced is None:
            traced = _traced(command)
            if traced.line is None and command.kind in _CLOSING:
                # The engine writes these after the run method returned or raised: the line
                # that ran last is the one that decided it.
                traced = TracedCommand(traced.kind, traced.text, self.last_line)
            self._seen[id(command)] = traced
            self._held.append(command)
        return traced

    def _take_sent(self, new: list[TracedCommand] | None = None) -> None:
        # The runtime swaps in a new list when it sends a task's commands: the old one was sent.
        current = self.instance._commands
        if self._open_list is not None and current is not self._open_list:
            for command in self._open_list:
                if new is not None and id(command) not in self._seen:
                    new.append(self._known(command))
                self._sent.append(self._known(command))
        self._open_list = current

    def _commands(self) -> tuple[tuple[TracedCommand, ...], tuple[TracedCommand, ...]]:
        new: list[TracedCommand] = []
        self._take_sent(new)
        current: list[TracedCommand] = []
        for command in self.instance._commands:
            fresh = id(command) not in self._seen
            traced = self._known(command)
            current.append(traced)
            if fresh:
                new.append(traced)
        return tuple(self._sent + current), tuple(new)

    def _add(
        self, kind: str, line: CodeLine | None, frame: types.FrameType | None, *, matched: TracedCommand | None = None, error: str | None = None
    ) -> None:
        instance = self.instance
        failure = instance._failure
        try:
            local_values = snapshot_mapping(frame.f_locals, skip=_is_self) if frame is not None else {}
            obj = instance._object
            attributes = snapshot_mapping(_attributes_of(obj)) if obj is not None else {}
        finally:
            # A user __repr__ that touched something the sandbox forbids must not fail the task.
            instance._failure = failure
        commands, new = self._commands()
        self.steps.append(
            TraceStep(
                index=len(self.steps),
                kind=kind,
                event=self._event,
                line=line,
                locals=local_values,
                attributes=attributes,
                commands=commands,
                new_commands=new,
                time=instance.now(),
                replaying=instance.is_replaying(),
                pending=_pending(instance),
                matched=matched,
                error=error,
            )
        )

    def finish(self, kind: str, line: CodeLine | None, error: str, event: HistoryEvent | None) -> None:
        if event is not None:
            self._event = event
        self._add(kind, line, self._last_frame, error=error)


def _is_self(name: str, value: Any) -> bool:
    return name == "self"


def _attributes_of(obj: Any) -> Mapping[str, Any]:
    try:
        values = vars(obj)
    except TypeError:  # __slots__
        values = {name: getattr(obj, name) for name in getattr(type(obj), "__slots__", ()) if hasattr(obj, name)}
    return values


def _pending(instance: WorkflowInstance) -> Pending:
    activities = [
        f"{h.activity_type} (activity id {h.activity_id}, scheduled at event {event_id})"
        for event_id, h in instance._activities.items()
        if not h.done()
    ]
    waiting = list(instance._commands) + list(instance._unmatched)
    activities += [
        f"{c.attributes['activityType']['name']} (activity id {c.attributes['activityId']}, not recorded yet)"
        for c in waiting
        if c.kind == "ScheduleActivityTask"
    ]
    timers = [
        f"timer {timer_id} fires at {datetime.fromtimestamp(timer.when(), instance.now().tzinfo).isoformat()}"
        for timer_id, timer in instance._timers.items()
        if not timer.cancelled() and not timer.fired
    ]
    conditions = [_condition_text(fn) for fn, fut in instance._conditions if not fut.done()]
    children = [f"{getattr(h, 'workflow_type', '?')} {getattr(h, 'id', '?')!r}" for h in instance._children.values() if not h.done()]
    return Pending(tuple(activities), tuple(timers), tuple(conditions), tuple(children))


def _condition_text(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return getattr(fn, "__qualname__", type(fn).__name__)
    text = linecache.getline(code.co_filename, code.co_firstlineno).strip()
    return f"line {code.co_firstlineno}: {text}" if text else f"{code.co_name} (line {code.co_firstlineno})"


def _workflow_files(instance: WorkflowInstance) -> frozenset[str]:
    defn = instance.defn
    functions: list[Any] = [defn.run_fn, *defn.signals.values(), *defn.queries.values()]
    functions.append(getattr(defn.cls, "__init__", None))
    files = {f.__code__.co_filename for f in functions if isinstance(getattr(f, "__code__", None), types.CodeType)}
    return frozenset(files - {"<string>"})


def _failure_line(error: BaseException, files: frozenset[str]) -> CodeLine | None:
    tb = error.__traceback__
    found: CodeLine | None = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename in files:
            found = CodeLine(code.co_filename, tb.tb_lineno, code.co_name, linecache.getline(code.co_filename, tb.tb_lineno).strip())
        tb = tb.tb_next
    return found


def record(replayer: Replayer, history: History) -> ReplayTrace:
    """Replay ``history`` with ``replayer``'s workflows, recording every step (see the module)."""
    instance = replayer.instance_for(history)
    files = _workflow_files(instance)
    recorder = _Recorder(instance, files)
    by_id = {e.event_id: e for e in history.events}
    divergence: Divergence | None = None
    failure: BaseException | None = None
    previous = sys.gettrace()
    instance._tracer = recorder
    sys.settrace(recorder.trace_call)
    try:
        instance.apply(list(history.events), live_tail=False)
    except NondeterminismError as e:
        failure = e
        divergence = _divergence(e, instance, recorder)
    except WorkflowTaskError as e:
        failure = e.error
    finally:
        sys.settrace(previous)
        instance._tracer = None
    if divergence is not None:
        event = by_id.get(divergence.event_id) if divergence.event_id is not None else None
        recorder.finish("divergence", divergence.line, divergence.message, event)
    elif failure is not None:
        recorder.finish("error", _failure_line(failure, files), f"{type(failure).__name__}: {failure}", None)
    instance.evict()
    return ReplayTrace(
        history=history,
        workflow_type=instance.info.workflow_type,
        steps=tuple(recorder.steps),
        files=tuple(sorted(files, key=lambda f: f != instance.defn.run_fn.__code__.co_filename)),
        divergence=divergence,
        failure=failure,
    )


def _waiting_line(instance: WorkflowInstance, recorder: _Recorder) -> CodeLine | None:
    """The line of workflow code where the main coroutine waits (followed through the
    coroutines it awaits), else the last line that ran."""
    found: CodeLine | None = None
    main = instance._main
    awaited: Any = main.get_coro() if main is not None and not main.done() else None
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None and frame.f_code.co_filename in recorder.files:
            code = frame.f_code
            found = CodeLine(code.co_filename, frame.f_lineno, code.co_name, linecache.getline(code.co_filename, frame.f_lineno).strip())
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    if found is None and recorder.last_line is not None:
        found = recorder.last_line
    return found


def _divergence(error: NondeterminismError, instance: WorkflowInstance, recorder: _Recorder) -> Divergence:
    line: CodeLine | None = None
    if error.produced is not None:
        candidates = [recorder.head, *(list(instance._unmatched)[:1])]
        for command in candidates:
            if command is not None and command.describe() == error.produced:
                line = command.source
                break
    else:
        line = _waiting_line(instance, recorder)
    return Divergence(error.event_id, error.recorded, error.produced, line, str(error))
