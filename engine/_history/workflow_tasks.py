"""Workflow tasks: scheduled when a run has something to react to, leased to a worker with
the events it has not seen yet, failed and retried.

Events that arrive while a workflow task is in flight are buffered and appended after that
task completes, as Temporal does, so each workflow task sees a stable prefix of history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from engine._api.durations import from_timestamp, to_timestamp
from engine._history import updates
from engine._history.mutable_state import Run, StaleTaskError, _wft_scheduled, append, from_ts, identity_of, load_run, request_id, save_run, schedule_transient_task, ts, wft_scheduled_attrs
from engine._matching.dispatch import pick_sticky, pick_waiting, queued
from engine._matching.task_queues import claimable
from engine._persistence.event_rows import decode_rows as _decode, stored_rows
from engine._persistence.transactions import Tx, dumps, loads
from engine.history import HistoryEvent


def deliver(tx: Tx, run: Run, now: datetime, items: list[tuple[Any, ...]], *, link_started: bool = False) -> None:
    """Append events that the workflow must react to, or buffer them behind a running task.

    With ``link_started`` the second event's ``startedEventId`` is the first event's id (an
    activity's Started + Completed pair), resolved when the ids are assigned.
    """
    # An item may carry its own time: an activity's Started event is written at completion
    # (only the last attempt is recorded) but keeps the attempt's real start time.
    if run.wft_state == "started":
        run.buffered.append(
            {
                "time": to_timestamp(now),
                "items": [[i[0], i[1], to_timestamp(i[2]) if len(i) > 2 and i[2] else None] for i in items],
                "link": link_started,
            }
        )
        return
    first_id = None
    for index, item in enumerate(items):
        attrs = item[1]
        if link_started and index == 1 and first_id is not None:
            attrs = {**attrs, "startedEventId": str(first_id)}
        event_id = append(tx, run, item[2] if len(item) > 2 and item[2] else now, item[0], attrs)
        if first_id is None:
            first_id = event_id
    ensure_workflow_task(tx, run, now)


def append_group(tx: Tx, run: Run, group: dict[str, Any]) -> None:
    first_id = None
    for index, (etype, attrs, at) in enumerate(group["items"]):
        if group["link"] and index == 1 and first_id is not None:
            attrs = {**attrs, "startedEventId": str(first_id)}
        stamp = at or group["time"]
        event_id = append(tx, run, from_timestamp(stamp), etype, attrs, stamp)
        if first_id is None:
            first_id = event_id


def ensure_workflow_task(tx: Tx, run: Run, now: datetime, *, delay: float = 0.0) -> None:
    if not run.open or run.wft_state:
        return
    if run.wft_attempt > 1:
        # A retry of a failed or timed-out workflow task is transient, as in Temporal: its
        # events are written only if it completes, so a bug that fails every attempt does
        # not grow the history while it is being fixed.
        schedule_transient_task(tx, run, ts(now) + delay)
        return
    attrs, text = _wft_scheduled(run.task_queue, run.task_timeout, run.wft_attempt)
    scheduled = append(tx, run, now, "WorkflowTaskScheduled", attrs, text=text)
    run.wft_state = "scheduled"
    run.wft_scheduled_id = scheduled
    run.wft_started_id = None
    key = "workflow:" + run.task_queue
    receiver = None if delay else pick_sticky(tx.receivers, key, run.run_id) or pick_waiting(tx.receivers, key)
    if receiver is not None:
        tx.dispatch(receiver, start_workflow_task(tx, run, now, receiver.owner, None, {}, receiver.known))
        return
    tx.conn.execute(
        "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at) VALUES ('workflow', ?, ?, ?, ?, ?)",
        (run.task_queue, run.run_id, scheduled, run.wft_attempt, ts(now) + delay),
    )
    queued(tx.receivers, key)
    tx.notify("queue", key)


# ---------------------------------------------------------------------------- workflow tasks
@dataclass
class WorkflowTask:
    """What a worker gets. The events it has not seen yet are ``stored`` rows (read in the
    write batch that hands the task over) followed by ``later`` events already in memory;
    ``events`` decodes the rows when the worker first asks, just before its replay, so the
    batch holds the write lock a shorter time and the objects of a history are made next to
    the replay that uses them rather than kept alive, all of a batch's at once, until then."""

    task_id: int
    run_id: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    started_event_id: int
    history_complete: bool
    updates: list[dict[str, Any]] = field(default_factory=list)
    stored: list[tuple[Any, ...]] = field(default_factory=list, repr=False)
    later: list[HistoryEvent] = field(default_factory=list, repr=False)
    _events: list[HistoryEvent] | None = field(default=None, repr=False)

    @property
    def events(self) -> list[HistoryEvent]:
        if self._events is None:
            self._events = decode_rows(self.stored) + self.later if self.stored else self.later
            self.stored = []
        return self._events


def claim_workflow_tasks(
    tx: Tx,
    task_queue: str,
    owner: str,
    now: datetime,
    limit: int,
    known: Callable[[str], int],
    receiver: Any = None,
) -> list[WorkflowTask]:
    """Claim up to ``limit`` workflow tasks; ``known(run_id)`` is the last event id the
    worker already holds for a run (0 for none), so only newer events are read. With a
    ``receiver`` (see ``engine._matching.dispatch``) each claimed task takes one of its slots."""
    rows = claimable(tx, "workflow", "id, run_id, info", task_queue, now, limit, receiver)
    claimed = []
    for task_id, run_id, info_text in rows:
        run = load_run(tx, run_id)
        if not run.open or run.wft_state != "scheduled":
            tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            continue
        if receiver is not None:
            receiver.taken += 1
        claimed.append(start_workflow_task(tx, run, now, owner, task_id, loads(info_text), known))
        save_run(tx, run)
    return claimed


def start_workflow_task(
    tx: Tx, run: Run, now: datetime, owner: str, task_id: int | None, info: dict[str, Any], known: Callable[[str], int]
) -> WorkflowTask:
    """Lease the run's scheduled workflow task to ``owner`` (inserting the task row when
    ``task_id`` is None: eager dispatch) and build what the worker gets."""
    started_attrs = {"identity": identity_of(owner), "requestId": request_id()}
    synthetic: list[HistoryEvent] = []
    if run.wft_scheduled_id is None:
        # Transient retry: hand the worker the two events without writing them yet.
        scheduled_id, started = run.next_event_id, run.next_event_id + 1
        sched_time = from_ts(info.get("scheduledTime", ts(now)))
        started_attrs["scheduledEventId"] = str(scheduled_id)
        synthetic = [
            HistoryEvent(scheduled_id, "WorkflowTaskScheduled", sched_time, wft_scheduled_attrs(run)),
            HistoryEvent(started, "WorkflowTaskStarted", now, started_attrs),
        ]
        info["transient"] = [ts(sched_time), ts(now), started_attrs]
        run.wft_scheduled_id = scheduled_id
    else:
        started_attrs["scheduledEventId"] = str(run.wft_scheduled_id)
        started = append(tx, run, now, "WorkflowTaskStarted", started_attrs)
    run.wft_state = "started"
    run.wft_started_id = started
    t = ts(now)
    expires = t + run.task_timeout
    if task_id is None:
        task_id = tx.conn.execute(
            "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at, lease_owner, "
            "lease_expires, due_at, started_at) VALUES ('workflow', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run.task_queue, run.run_id, run.wft_scheduled_id, run.wft_attempt, t, owner, expires, expires, t),
        ).lastrowid
    else:
        tx.conn.execute(
            "UPDATE tasks SET lease_owner = ?, lease_expires = ?, due_at = ?, started_at = ?, info = ? WHERE id = ?",
            (owner, expires, expires, t, dumps(info), task_id),
        )
    assert task_id is not None
    tx.note_due(expires)
    run.wft_task = (task_id, owner, info)
    after = known(run.run_id)
    stored, in_memory = _events_after(tx, run, after)
    return WorkflowTask(
        task_id,
        run.run_id,
        run.workflow_id,
        run.workflow_type,
        run.task_queue,
        started,
        after == 0,
        updates.claim(tx, run.run_id) if run.has_updates is not False else [],
        stored=stored,
        later=in_memory + synthetic if synthetic else in_memory,
    )


def _events_after(tx: Tx, run: Run, after: int) -> tuple[list[tuple[Any, ...]], list[HistoryEvent]]:
    """The run's events after ``after``: from memory when this connection appended them all
    (the second list), else as stored rows (the first)."""
    if after + 1 >= run.tail_from:
        rows: list[tuple[Any, ...]] = []
        events = [e for e in run.tail if e.event_id > after]
    else:
        tx.flush()
        rows, events = stored_rows(tx.conn, run.run_id, after), []
    # The worker will hold everything up to now: later tasks need only what follows.
    run.tail = []
    run.tail_from = run.next_event_id
    return rows, events


def decode_rows(rows: list[tuple[Any, ...]]) -> list[HistoryEvent]:
    """The events of rows ``stored_rows`` read."""
    return [HistoryEvent(*row) for row in _decode(rows)]



def read_events(conn: Any, run_id: str, after: int = 0) -> list[HistoryEvent]:
    return decode_rows(stored_rows(conn, run_id, after))


def take_workflow_task(tx: Tx, task_id: int, owner: str, run: Run, started_event_id: int) -> dict[str, Any]:
    """Check that ``owner`` still holds the task and delete it; return the task's info."""
    stale = StaleTaskError(f"workflow task {started_event_id} of run {run.run_id} is no longer held by {owner}")
    if run.wft_started_id != started_event_id or not run.open:
        raise stale
    held = run.wft_task
    if held is not None and held[0] == task_id and held[1] == owner:
        info = held[2]
    else:
        row = tx.conn.execute("SELECT info FROM tasks WHERE id = ?", (task_id,)).fetchone()
        info = loads(row[0]) if row is not None else {}
    # The row count proves the lease: another owner (or none) means the task was reassigned.
    if tx.conn.execute("DELETE FROM tasks WHERE id = ? AND lease_owner = ?", (task_id, owner)).rowcount != 1:
        raise stale
    run.wft_task = None
    return info


def write_transient(tx: Tx, run: Run, info: dict[str, Any]) -> None:
    """A transient workflow task completed: its Scheduled and Started events become real."""
    sched_time, started_time, started_attrs = info["transient"]
    append(tx, run, from_ts(sched_time), "WorkflowTaskScheduled", wft_scheduled_attrs(run))
    append(tx, run, from_ts(started_time), "WorkflowTaskStarted", started_attrs)


def updates_waiting(tx: Tx, run: Run) -> bool:
    return run.has_updates is not False and updates.waiting(tx, run.run_id)


def fail_workflow_task(
    tx: Tx,
    task_id: int,
    owner: str,
    run_id: str,
    started_event_id: int,
    failure: dict[str, Any],
    cause: str,
    now: datetime,
) -> None:
    run = load_run(tx, run_id)
    info = take_workflow_task(tx, task_id, owner, run, started_event_id)
    if "transient" not in info:
        append(
            tx,
            run,
            now,
            "WorkflowTaskFailed",
            {
                "scheduledEventId": str(run.wft_scheduled_id),
                "startedEventId": str(started_event_id),
                "cause": cause,
                "failure": failure,
                "identity": identity_of(owner),
            },
        )
    else:
        # Not in history, but kept where viewers can show why the run is stuck.
        tx.conn.execute(
            "UPDATE executions SET last_task_failure = ? WHERE run_id = ?",
            (dumps({"attempt": run.wft_attempt, "cause": cause, "failure": failure}), run_id),
        )
    retry_workflow_task(tx, run, now)
    save_run(tx, run)


def retry_workflow_task(tx: Tx, run: Run, now: datetime, *, backoff: bool = True) -> None:
    run.wft_state = ""
    run.wft_task = None
    for group in run.buffered:
        append_group(tx, run, group)
    run.buffered = []
    run.wft_attempt += 1
    # A failing workflow task is retried with backoff (1 s, 2 s, ... at most 1 min) so a bug
    # does not spin; restarting the worker with fixed code lets the next attempt succeed.
    # A timed-out task (its worker died or stalled) is offered again at once.
    delay = min(60.0, 2.0 ** min(run.wft_attempt - 2, 6)) if backoff else 0.0
    ensure_workflow_task(tx, run, now, delay=delay)
    if delay:
        tx.notify("timers", "")
