"""Reset: a new run of the same workflow id whose history is the old run's up to a workflow task,
so that the code running now (a bug fixed since) takes over from that point.

As Temporal's ``ResetWorkflowExecution`` (checked against a dev server; the differential suite's
README has the shapes): the point is the event that ended a workflow task
(``WorkflowTaskCompleted``, ``...Failed`` or ``...TimedOut``). The new run copies the old one's
events up to that task's ``WorkflowTaskStarted`` (same ids, times and attributes, the started
event included: the run keeps its ``originalExecutionRunId``), then records
``WorkflowTaskFailed`` with cause ``RESET_WORKFLOW`` (the reason as the failure's message,
``baseRunId`` and ``newRunId``), then the signals the old run received after the point
(re-applied, unless excluded), then a new workflow task. The workflow id's open run, if any,
is terminated with the reason (identity ``history-resetter``).

Activities and timers pending at the point are armed again in the new run (an activity task
on its queue, attempt 1; a timer due at its original start plus its duration). As Temporal's
server (``CheckResettable``), a point where the run waits for a child, or for a signal or
cancel it sends to another workflow, is refused; the error names the points that qualify.
Updates accepted after the point are not re-applied (Temporal re-applies them by default), and
a child run is reset only once its parent has closed (the parent waits for the run it started).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from engine._api.durations import from_duration
from engine._history import search_attributes
from engine._history.activities import task_info, unleased_due
from engine._history.closing import terminate
from engine._history.mutable_state import OPEN, Run, append, cache_run, new_run_id, ts
from engine._history.workflow_tasks import ensure_workflow_task, read_events
from engine._persistence.transactions import Tx, dumps
from engine.history import HistoryEvent

POINT_TYPES = ("WorkflowTaskCompleted", "WorkflowTaskFailed", "WorkflowTaskTimedOut")
RESET_IDENTITY = "history-service"  # the WorkflowTaskFailed's, as Temporal writes it
TERMINATE_IDENTITY = "history-resetter"

# What the run may wait for, by the event that starts and the events that end the wait.
_WAITS = {
    "ActivityTaskScheduled": "activity",
    "TimerStarted": "timer",
    "StartChildWorkflowExecutionInitiated": "child workflow",
    "SignalExternalWorkflowExecutionInitiated": "signal to another workflow",
    "RequestCancelExternalWorkflowExecutionInitiated": "cancel request to another workflow",
}
_ENDS = {
    "ActivityTaskCompleted": "scheduledEventId", "ActivityTaskFailed": "scheduledEventId",
    "ActivityTaskTimedOut": "scheduledEventId", "ActivityTaskCanceled": "scheduledEventId",
    "TimerFired": "startedEventId", "TimerCanceled": "startedEventId",
    "StartChildWorkflowExecutionFailed": "initiatedEventId", "ChildWorkflowExecutionCompleted": "initiatedEventId",
    "ChildWorkflowExecutionFailed": "initiatedEventId", "ChildWorkflowExecutionCanceled": "initiatedEventId",
    "ChildWorkflowExecutionTerminated": "initiatedEventId", "ChildWorkflowExecutionTimedOut": "initiatedEventId",
    "ExternalWorkflowExecutionSignaled": "initiatedEventId", "SignalExternalWorkflowExecutionFailed": "initiatedEventId",
    "ExternalWorkflowExecutionCancelRequested": "initiatedEventId",
    "RequestCancelExternalWorkflowExecutionFailed": "initiatedEventId",
}


class ResetError(ValueError):
    """The reset asked for cannot be made; the message says why and what can be."""


_REARMED = ("ActivityTaskScheduled", "TimerStarted")  # what a reset arms again in the new run


class _Waits:
    """What the run waits for as its events are read in order: the events that started it, by id."""

    def __init__(self) -> None:
        self.waiting: dict[int, HistoryEvent] = {}
        self._timers: dict[str, int] = {}

    def read(self, event: HistoryEvent) -> None:
        attrs = event.attributes or {}
        if event.event_type in _WAITS:
            self.waiting[event.event_id] = event
            if event.event_type == "TimerStarted":
                self._timers[str(attrs.get("timerId"))] = event.event_id
        elif event.event_type in _ENDS:
            timer = event.event_type.startswith("Timer")
            started = self._timers.get(str(attrs.get("timerId"))) if timer else int(attrs.get(_ENDS[event.event_type]) or 0)
            self.waiting.pop(started or 0, None)


def _pending_at(events: Sequence[HistoryEvent], cut: int) -> dict[int, HistoryEvent]:
    """What the run waits for after its events up to ``cut``."""
    waits = _Waits()
    for event in events:
        if event.event_id > cut:
            break
        waits.read(event)
    return waits.waiting


def _blocking(pending: dict[int, HistoryEvent]) -> list[str]:
    """The pending things a reset cannot re-create, described for a learner."""
    found = []
    for event in pending.values():
        if event.event_type in _REARMED:
            continue
        name = ((event.attributes or {}).get("workflowType") or {}).get("name") or ""
        found.append(f"{_WAITS[event.event_type]} {name!r} (event {event.event_id})".replace(" '' ", " "))
    return found


def resettable_points(events: Sequence[HistoryEvent]) -> list[HistoryEvent]:
    """The events a reset can go to: ends of workflow tasks where the run waits for no child and
    no signal or cancel it sends."""
    waits, blocked_after, points = _Waits(), {}, []
    for event in events:  # one pass: a point's cut (its task's started event) comes before it
        waits.read(event)
        if event.event_type == "WorkflowTaskStarted":
            blocked_after[event.event_id] = bool(_blocking(waits.waiting))
        elif event.event_type in POINT_TYPES:
            if not blocked_after.get(int((event.attributes or {}).get("startedEventId") or 0), True):
                points.append(event)
    return points


def _listed(points: Sequence[HistoryEvent]) -> str:
    return ", ".join(f"{e.event_id} ({e.event_type})" for e in points) or "none"


def point_for(events: Sequence[HistoryEvent], event_id: int | None, reset_type: str | None) -> int:
    """The event id to reset to: ``event_id`` as given, or the first or last workflow task's
    end (``reset_type`` ``FirstWorkflowTask``/``LastWorkflowTask``, as ``temporal workflow reset --type``)."""
    if (event_id is None) == (reset_type is None):
        raise ResetError("Give either an event id or a reset type (FirstWorkflowTask or LastWorkflowTask), not both or neither.")
    if event_id is not None:
        return event_id
    completed = [e for e in events if e.event_type == "WorkflowTaskCompleted"]
    if reset_type not in ("FirstWorkflowTask", "LastWorkflowTask"):
        raise ResetError(f"Unknown reset type {reset_type!r}: use FirstWorkflowTask or LastWorkflowTask (or give an event id).")
    if not completed:
        raise ResetError("The run has no completed workflow task to reset to.")
    return (completed[0] if reset_type == "FirstWorkflowTask" else completed[-1]).event_id


def reset_workflow(
    tx: Tx,
    base_run_id: str,
    event_id: int | None,
    reset_type: str | None,
    reason: str,
    now: datetime,
    reapply_signals: bool = True,
) -> tuple[str, int]:
    """Reset run ``base_run_id``; returns the new run's id and the event id reset to."""
    row = tx.conn.execute(
        "SELECT workflow_id, workflow_type, task_queue, task_timeout FROM executions WHERE run_id = ?", (base_run_id,)
    ).fetchone()
    if row is None:
        raise ResetError(f"No run {base_run_id!r} to reset.")
    workflow_id, workflow_type, task_queue, task_timeout = row
    tx.flush()
    events = read_events(tx.conn, base_run_id)
    target = point_for(events, event_id, reset_type)
    by_id = {e.event_id: e for e in events}
    point = by_id.get(target)
    if point is None or point.event_type not in POINT_TYPES:
        what = f"is {point.event_type}, not the end of a workflow task" if point else f"is not in the run (it has events 1 to {len(events)})"
        raise ResetError(f"Event {target} {what}. Events you can reset to: {_listed(resettable_points(events))}.")
    cut = int((point.attributes or {}).get("startedEventId") or 0)
    if cut not in by_id or by_id[cut].event_type != "WorkflowTaskStarted":
        raise ResetError(
            f"Event {target} ends a workflow task that never started. Events you can reset to: {_listed(resettable_points(events))}."
        )
    pending = _pending_at(events, cut)
    blocking = _blocking(pending)
    if blocking:
        raise ResetError(
            f"At event {target} the run waits for {', '.join(blocking)}, which a reset cannot start again (Temporal "
            f"refuses it too). Events you can reset to: {_listed(resettable_points(events))}."
        )
    parent = tx.conn.execute(
        "SELECT p.workflow_id FROM children c JOIN executions p ON p.run_id = c.parent_run_id "
        "WHERE c.child_run_id IN (SELECT run_id FROM executions WHERE workflow_id = ?) AND p.status = ?",
        (workflow_id, OPEN),
    ).fetchone()
    if parent is not None:
        # Its parent waits for it by run: a new run would leave the parent waiting for ever.
        raise ResetError(
            f"Workflow {workflow_id!r} is a child of the open workflow {parent[0]!r}; the engine resets a child only "
            "once its parent has closed. Reset the parent instead."
        )
    current = tx.conn.execute(
        "SELECT run_id FROM executions WHERE workflow_id = ? AND +status = ?", (workflow_id, OPEN)
    ).fetchone()
    if current is not None:
        terminate(tx, current[0], reason, None, TERMINATE_IDENTITY, now)
    run_id = new_run_id()
    run = Run(run_id, workflow_id, workflow_type, task_queue, OPEN, 1, "", None, None, 1, [], float(task_timeout))
    run.has_updates, run.is_child, run.has_children, run.is_cron = False, False, False, False
    run.key = tx.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM executions").fetchone()[0]
    kept = [e for e in events if e.event_id <= cut]
    for event in kept:
        append(tx, run, event.event_time or now, event.event_type, dict(event.attributes or {}))
    scheduled = next((e.event_id for e in reversed(kept) if e.event_type == "WorkflowTaskScheduled"), 0)
    append(tx, run, now, "WorkflowTaskFailed", {
        "scheduledEventId": str(scheduled),
        "startedEventId": str(cut),
        "cause": "WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW",
        "failure": {"message": reason, "resetWorkflowFailureInfo": {}},
        "identity": RESET_IDENTITY,
        "baseRunId": base_run_id,
        "newRunId": run_id,
    })
    if reapply_signals:
        for event in events[cut:]:
            if event.event_type == "WorkflowExecutionSignaled":
                append(tx, run, now, event.event_type, dict(event.attributes or {}))
    ensure_workflow_task(tx, run, now)
    for event in pending.values():
        _rearm(tx, run, event, now)
    started = dict(kept[0].attributes or {}) if kept else {}
    indexed = (started.get("searchAttributes") or {}).get("indexedFields")
    if indexed:
        search_attributes.index(tx, run_id, indexed, fresh=True, strict=False)
    memo = (started.get("memo") or {}).get("fields")
    if started.get("workflowExecutionExpirationTime"):
        from engine._api.durations import from_timestamp

        tx.conn.execute(
            "INSERT INTO timers (run_id, timer_key, kind, fire_at) VALUES (?, 'execution-timeout', 'execution_timeout', ?)",
            (run_id, ts(from_timestamp(str(started["workflowExecutionExpirationTime"])))),
        )
        tx.notify("timers", "")
    tx.conn.execute(
        "INSERT INTO executions (id, run_id, workflow_id, workflow_type, task_queue, status, start_time, next_event_id, "
        "wft_state, wft_scheduled_id, wft_started_id, wft_attempt, task_timeout, flags, search_attributes, memo) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run.key, run_id, workflow_id, workflow_type, task_queue, OPEN, ts(now), run.next_event_id,
         run.wft_state, run.wft_scheduled_id, run.wft_started_id, run.wft_attempt, float(task_timeout), run.flags(),
         dumps(indexed) if indexed else None, dumps(memo) if memo else None),
    )
    cache_run(tx, run)
    return run_id, target


def _rearm(tx: Tx, run: Run, event: HistoryEvent, now: datetime) -> None:
    """An activity or timer pending at the reset point, armed again for the new run: the
    activity's task waits on its queue (attempt 1; its timeouts count from when it was
    scheduled), the timer fires when it would have (at once if that time has passed)."""
    attrs = dict(event.attributes or {})
    started_at = event.event_time or now
    if event.event_type == "ActivityTaskScheduled":
        info = task_info(run, attrs, started_at)
        queue = attrs["taskQueue"]["name"]
        due = unleased_due(info, ts(now))
        tx.conn.execute(
            "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at, due_at, info) "
            "VALUES ('activity', ?, ?, ?, 1, ?, ?, ?)",
            (queue, run.run_id, event.event_id, ts(now), due, dumps(info)),
        )
        tx.note_due(due)
        tx.notify("queue", f"activity:{queue}")
    elif event.event_type == "TimerStarted":
        fire = ts(started_at + (from_duration(attrs.get("startToFireTimeout")) or timedelta(0)))
        tx.conn.execute(
            "INSERT INTO timers (run_id, timer_key, kind, fire_at, info) VALUES (?, ?, 'timer', ?, ?)",
            (run.run_id, "timer:" + str(attrs["timerId"]), fire, dumps({"timerId": attrs["timerId"], "startedEventId": event.event_id})),
        )
        tx.note_due(fire)
