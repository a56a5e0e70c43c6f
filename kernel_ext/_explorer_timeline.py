"""The explorer's timeline: what ran when, as bars on a real time axis.

One lane per thing that takes time: the workflow tasks, each activity (one bar per attempt,
and a grey bar for each backoff gap between attempts), each timer, each child run; signals
and updates are instants. Saga compensations are marked, so compensations that ran in
parallel show as bars that overlap. Times are seconds since the run started, from the
history's event times and the engine's attempt table; a run still open ends at the moment
the snapshot was read.

A loop of thousands of activities would make thousands of lanes: past ``MAX_LANES`` the
activities share one lane per activity type (a loop's calls follow one another, so their
bars do not overlap), and past ``MAX_BARS`` the bars of the first part of the run are shown
with a note saying how many are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from kernel_ext._saga import saga_plan
from kernel_ext._steps import Row, format_seconds, seconds_between
from kernel_ext._steps._read import failure_summary, int_of, text_of

if TYPE_CHECKING:
    from engine.run_snapshot import RunSnapshot

MAX_LANES = 40
MAX_BARS = 2000
_OUTCOME_STATUS = {"completed": "ok", "canceled": "cancelled", "cancelled": "cancelled"}
_TASK_CLOSE = {"WorkflowTaskCompleted": "ok", "WorkflowTaskFailed": "failed", "WorkflowTaskTimedOut": "failed"}
_TIMER_CLOSE = {"TimerFired": "ok", "TimerCanceled": "cancelled"}
_CHILD_CLOSE = {
    "ChildWorkflowExecutionCompleted": "ok", "ChildWorkflowExecutionFailed": "failed",
    "ChildWorkflowExecutionCanceled": "cancelled", "ChildWorkflowExecutionTimedOut": "failed",
    "ChildWorkflowExecutionTerminated": "failed", "StartChildWorkflowExecutionFailed": "failed",
}


@dataclass(frozen=True)
class Bar:
    """One bar: ``start`` and ``end`` in seconds since the run started (equal for an
    instant); ``key`` is what a click on it opens (see ``ExplorerModel.details``)."""

    lane: str
    kind: str  # workflow_task, attempt, backoff, timer, signal, update, child, compensation
    label: str
    start: float
    end: float
    status: str
    key: str
    tip: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"lane": self.lane, "kind": self.kind, "label": self.label, "start": self.start, "end": self.end,
                "status": self.status, "key": self.key, "tip": self.tip}


@dataclass
class Timeline:
    bars: list[Bar] = field(default_factory=list)
    lanes: list[str] = field(default_factory=list)
    end: float = 0.0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"bars": [bar.as_dict() for bar in self.bars], "lanes": self.lanes, "end": self.end, "note": self.note}


class _Builder:
    def __init__(self, snapshot: RunSnapshot) -> None:
        events = snapshot.history.events
        self.origin: datetime | None = events[0].event_time if events else None
        self.now = self.at(snapshot.read_at) if not snapshot.closed else None
        self.bars: list[Bar] = []

    def at(self, moment: Any) -> float:
        offset = seconds_between(self.origin, moment)
        return round(offset, 6) if offset is not None else 0.0

    def add(self, lane: str, kind: str, label: str, start: float, end: float | None, status: str, key: str, tip: str = "") -> None:
        if end is None:  # still going: up to the moment the snapshot was read
            end, status = max(self.now if self.now is not None else start, start), "running"
        self.bars.append(Bar(lane, kind, label, start, max(end, start), status, key, tip))


def _workflow_tasks(b: _Builder, snapshot: RunSnapshot) -> None:
    started: dict[int, Any] = {}
    for event in snapshot.history.events:
        a = event.attributes
        if event.event_type == "WorkflowTaskStarted":
            started[int_of(a.get("scheduledEventId")) or 0] = event
        elif event.event_type in _TASK_CLOSE:
            begin = started.pop(int_of(a.get("scheduledEventId")) or 0, None)
            begin_at = b.at(begin.event_time) if begin is not None else b.at(event.event_time)
            status = _TASK_CLOSE[event.event_type]
            detail = failure_summary(a.get("failure")) if status == "failed" else ""
            b.add("workflow tasks", "workflow_task", "workflow task", begin_at, b.at(event.event_time), status,
                  f"event:{event.event_id}", f"workflow task {event.event_type.removeprefix('WorkflowTask').lower()}"
                  + (f": {detail}" if detail else ""))
    for begin in started.values():
        b.add("workflow tasks", "workflow_task", "workflow task", b.at(begin.event_time), None, "running",
              f"event:{begin.event_id}", "workflow task running")


def _activities(b: _Builder, snapshot: RunSnapshot, rows: Sequence[Row], compensations: set[int]) -> None:
    activities = [row for row in rows if row["kind"] == "activity" and row["event_ids"]]
    shared = len(activities) > MAX_LANES
    events = {e.event_id: e for e in snapshot.history.events}
    by_scheduled: dict[int, list[Any]] = {}
    for attempt in snapshot.attempts:
        by_scheduled.setdefault(attempt.scheduled_event_id, []).append(attempt)
    for row in activities:
        scheduled = row["event_ids"][0]
        compensation = scheduled in compensations
        kind = "compensation" if compensation else "attempt"
        name = row["title"]
        lane = f"{'undo ' if compensation else ''}{name}" + ("" if shared else f" (event {scheduled})")
        tries = sorted(by_scheduled.get(scheduled, []), key=lambda t: t.attempt)
        previous_end: float | None = None
        for t in tries:
            start = b.at(t.started_at if t.started_at is not None else t.ended_at)
            if previous_end is not None and start > previous_end:
                b.add(lane, "backoff", "backoff", previous_end, start, "info", f"event:{scheduled}",
                      f"{name}: waiting {format_seconds(round(start - previous_end, 3))} before attempt {t.attempt}")
            status = _OUTCOME_STATUS.get(t.outcome, "failed")
            failure = failure_summary(t.failure)
            b.add(lane, kind, f"{name} #{t.attempt}", start, b.at(t.ended_at), status, f"event:{scheduled}",
                  f"{name} attempt {t.attempt}: {t.outcome}" + (f": {failure}" if failure else ""))
            previous_end = b.at(t.ended_at)
        if row["status"] == "running":
            # Scheduled or running now: no attempt has ended since, the table has no row for it.
            opened = [events[i] for i in row["event_ids"] if i in events and events[i].event_type == "ActivityTaskStarted"]
            begin = previous_end if previous_end is not None else b.at((opened or [events[scheduled]])[-1].event_time)
            b.add(lane, kind, f"{name} #{len(tries) + 1}", begin, None, "running", f"event:{scheduled}",
                  f"{name}: attempt {len(tries) + 1} scheduled or running")
        elif not tries:
            # A history from elsewhere: the side table is empty, the events give the last attempt.
            ids = row["event_ids"]
            first = next((events[i] for i in ids if i in events and events[i].event_type == "ActivityTaskStarted"), events.get(ids[0]))
            last = events.get(ids[-1])
            if first is not None and last is not None:
                b.add(lane, kind, name, b.at(first.event_time), b.at(last.event_time), row["status"], f"event:{scheduled}",
                      f"{name}: {row['detail']}")


def _others(b: _Builder, snapshot: RunSnapshot) -> None:
    opened: dict[tuple[str, int], Any] = {}
    for event in snapshot.history.events:
        a: Mapping[str, Any] = event.attributes
        etype = event.event_type
        if etype == "TimerStarted":
            opened[("timer", event.event_id)] = event
        elif etype in _TIMER_CLOSE:
            begin = opened.pop(("timer", int_of(a.get("startedEventId")) or 0), None)
            if begin is not None:
                timer = text_of(begin.attributes, "timerId")
                b.add(f"timer {timer}", "timer", f"timer {timer}", b.at(begin.event_time), b.at(event.event_time),
                      _TIMER_CLOSE[etype], f"event:{begin.event_id}", f"timer {timer} {etype.removeprefix('Timer').lower()}")
        elif etype == "StartChildWorkflowExecutionInitiated":
            opened[("child", event.event_id)] = event
        elif etype in _CHILD_CLOSE:
            begin = opened.pop(("child", int_of(a.get("initiatedEventId")) or 0), None)
            if begin is not None:
                child = text_of(begin.attributes, "workflowId")
                b.add(f"child {child}", "child", f"child {child}", b.at(begin.event_time), b.at(event.event_time),
                      _CHILD_CLOSE[etype], f"event:{begin.event_id}", f"child workflow {child}: {etype}")
        elif etype == "WorkflowExecutionSignaled":
            name = text_of(a, "signalName")
            b.add("signals", "signal", f"signal {name}", b.at(event.event_time), b.at(event.event_time), "info",
                  f"event:{event.event_id}", f"signal {name}")
        elif etype in ("WorkflowExecutionUpdateAccepted", "WorkflowExecutionUpdateCompleted"):
            name = text_of(a, "acceptedRequest", "input", "name") or "update"
            b.add("updates", "update", name, b.at(event.event_time), b.at(event.event_time), "info",
                  f"event:{event.event_id}", etype)
    for (kind, _), begin in opened.items():
        label = f"timer {text_of(begin.attributes, 'timerId')}" if kind == "timer" else f"child {text_of(begin.attributes, 'workflowId')}"
        b.add(label, kind, label, b.at(begin.event_time), None, "running", f"event:{begin.event_id}", f"{label}: still open")


def timeline_of(snapshot: RunSnapshot, rows: Sequence[Row]) -> Timeline:
    """The bars of ``snapshot``'s timeline; ``rows`` are its steps
    (``history_timeline_rows``), which say which activities are saga compensations."""
    b = _Builder(snapshot)
    if not snapshot.history.events:
        return Timeline()
    plan = saga_plan(list(rows))
    compensations = {row["event_ids"][0] for row in plan.compensations if row["kind"] == "activity" and row["event_ids"]}
    _workflow_tasks(b, snapshot)
    _activities(b, snapshot, rows, compensations)
    _others(b, snapshot)
    bars = sorted(b.bars, key=lambda bar: (bar.start, bar.end))
    note = ""
    if len(bars) > MAX_BARS:
        note = f"the first {MAX_BARS} of {len(bars)} bars are drawn"
        bars = bars[:MAX_BARS]
    lanes: list[str] = []
    seen: set[str] = set()
    for bar in bars:
        if bar.lane not in seen:
            seen.add(bar.lane)
            lanes.append(bar.lane)
    last = b.at(snapshot.history.events[-1].event_time)
    end = max([last, b.now or 0.0] + [bar.end for bar in bars])
    return Timeline(bars, lanes, end, note)
