"""The server side: every state change of a run, as a function of one transaction.

Each public function here takes a ``Tx`` (see ``_store``) and is run by ``Store.run``: the
events it appends and the tasks and timers it creates or removes commit together or not at
all. Events that arrive while a workflow task is in flight are buffered and appended after
that task completes, as Temporal does, so each workflow task sees a stable prefix of history.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

from engine._durations import from_duration, to_duration, to_timestamp
from engine._store import Tx, dumps
from engine.common import RetryPolicy
from engine.errors import (
    RetryState,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
)
from engine.history import HistoryEvent

OPEN = "Running"
_QUEUE_KIND = "TASK_QUEUE_KIND_NORMAL"
# Flag 1 of Temporal's SDK core: the replayer checks activity ids and types. We record the
# same so that exported histories are checked just as strictly by Temporal's own replayer.
SDK_FLAGS = [1]


class StaleTaskError(Exception):
    """The task was timed out, completed or reassigned meanwhile: its result is dropped."""


def identity_of(owner: str) -> str:
    """The worker identity recorded in history; the lease token adds a per-worker suffix."""
    return owner.split("#", 1)[0]


def ts(when: datetime) -> float:
    return when.timestamp()


def from_ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, timezone.utc)


@dataclass
class Run:
    run_id: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    status: str
    next_event_id: int
    wft_state: str
    wft_scheduled_id: int | None
    wft_started_id: int | None
    wft_attempt: int
    buffered: list[dict[str, Any]]
    task_timeout: float

    @property
    def open(self) -> bool:
        return self.status == OPEN


_RUN_COLUMNS = (
    "run_id, workflow_id, workflow_type, task_queue, status, next_event_id, wft_state, "
    "wft_scheduled_id, wft_started_id, wft_attempt, buffered, task_timeout"
)


def load_run(tx: Tx, run_id: str) -> Run:
    row = tx.conn.execute(f"SELECT {_RUN_COLUMNS} FROM executions WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise WorkflowNotFoundError(f"No workflow run with run id {run_id!r}.")
    return Run(*row[:10], json.loads(row[10]) if row[10] else [], row[11])  # type: ignore[call-arg]


def save_run(tx: Tx, run: Run) -> None:
    tx.conn.execute(
        "UPDATE executions SET status = ?, next_event_id = ?, wft_state = ?, wft_scheduled_id = ?, "
        "wft_started_id = ?, wft_attempt = ?, buffered = ? WHERE run_id = ?",
        (
            run.status,
            run.next_event_id,
            run.wft_state,
            run.wft_scheduled_id,
            run.wft_started_id,
            run.wft_attempt,
            dumps(run.buffered) if run.buffered else None,
            run.run_id,
        ),
    )


def append(tx: Tx, run: Run, now: datetime, event_type: str, attrs: dict[str, Any]) -> int:
    event_id = run.next_event_id
    run.next_event_id += 1
    tx.conn.execute(
        "INSERT INTO events (run_id, event_id, event_type, event_time, attributes) VALUES (?, ?, ?, ?, ?)",
        (run.run_id, event_id, event_type, to_timestamp(now), dumps(attrs)),
    )
    tx.notify("history", run.run_id)
    return event_id


def deliver(tx: Tx, run: Run, now: datetime, items: list[tuple[Any, ...]], *, link_started: bool = False) -> None:
    """Append events that the workflow must react to, or buffer them behind a running task.

    With ``link_started`` the second event's ``startedEventId`` is the first event's id (an
    activity's Started + Completed pair), resolved when the ids are assigned.
    """
    # An item may carry its own time: an activity's Started event is written at completion
    # (only the last attempt is recorded) but keeps the attempt's real start time.
    group = {
        "time": to_timestamp(now),
        "items": [[i[0], i[1], to_timestamp(i[2]) if len(i) > 2 and i[2] else None] for i in items],
        "link": link_started,
    }
    if run.wft_state == "started":
        run.buffered.append(group)
        return
    _append_group(tx, run, group)
    ensure_workflow_task(tx, run, now)


def _append_group(tx: Tx, run: Run, group: dict[str, Any]) -> None:
    first_id = None
    for index, (etype, attrs, at) in enumerate(group["items"]):
        if group["link"] and index == 1 and first_id is not None:
            attrs = {**attrs, "startedEventId": str(first_id)}
        event_id = run.next_event_id
        run.next_event_id += 1
        tx.conn.execute(
            "INSERT INTO events (run_id, event_id, event_type, event_time, attributes) VALUES (?, ?, ?, ?, ?)",
            (run.run_id, event_id, etype, at or group["time"], dumps(attrs)),
        )
        if first_id is None:
            first_id = event_id
    tx.notify("history", run.run_id)


def _wft_scheduled_attrs(run: Run) -> dict[str, Any]:
    return {
        "taskQueue": {"name": run.task_queue, "kind": _QUEUE_KIND},
        "startToCloseTimeout": to_duration(timedelta(seconds=run.task_timeout)),
        "attempt": run.wft_attempt,
    }


def ensure_workflow_task(tx: Tx, run: Run, now: datetime, *, delay: float = 0.0) -> None:
    if not run.open or run.wft_state:
        return
    if run.wft_attempt > 1:
        # A retry of a failed or timed-out workflow task is transient, as in Temporal: its
        # events are written only if it completes, so a bug that fails every attempt does
        # not grow the history while it is being fixed.
        run.wft_state = "scheduled"
        run.wft_scheduled_id = None
        run.wft_started_id = None
        tx.conn.execute(
            "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at, info) "
            "VALUES ('workflow', ?, ?, 0, ?, ?, ?)",
            (run.task_queue, run.run_id, run.wft_attempt, ts(now) + delay, dumps({"scheduledTime": ts(now) + delay})),
        )
        tx.notify("queue", f"workflow:{run.task_queue}")
        return
    scheduled = append(
        tx,
        run,
        now,
        "WorkflowTaskScheduled",
        _wft_scheduled_attrs(run),
    )
    run.wft_state = "scheduled"
    run.wft_scheduled_id = scheduled
    run.wft_started_id = None
    tx.conn.execute(
        "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at) VALUES ('workflow', ?, ?, ?, ?, ?)",
        (run.task_queue, run.run_id, scheduled, run.wft_attempt, ts(now) + delay),
    )
    tx.notify("queue", f"workflow:{run.task_queue}")


def close_run(tx: Tx, run: Run, now: datetime, status: str, outcome: dict[str, Any] | None = None) -> None:
    """Close a run; ``outcome`` is its closing event's attributes (told to a parent)."""
    run.status = status
    run.wft_state = ""
    run.buffered = []
    tx.conn.execute("UPDATE executions SET close_time = ? WHERE run_id = ?", (ts(now), run.run_id))
    tx.conn.execute("DELETE FROM tasks WHERE run_id = ?", (run.run_id,))
    tx.conn.execute("DELETE FROM timers WHERE run_id = ?", (run.run_id,))
    tx.notify("closed", run.run_id)
    tx.notify("closed", run.workflow_id)
    # Saved now: the parent and children touched below read this run's status.
    save_run(tx, run)
    _service_updates.run_closed(tx, run)
    if status != "ContinuedAsNew":
        _service_children.tell_parent(tx, run, now, status, outcome or {})
    _service_children.apply_close_policy(tx, run, now)


# ---------------------------------------------------------------------------- start
@dataclass(frozen=True)
class StartRequest:
    workflow_id: str
    workflow_type: str
    task_queue: str
    input: dict[str, Any]
    identity: str
    execution_timeout: timedelta | None = None
    run_timeout: timedelta | None = None
    task_timeout: timedelta | None = None
    run_id: str | None = None
    memo: dict[str, Any] | None = None
    continued_from: str | None = None
    first_run_id: str | None = None
    # For a child run: the parent* / root* attributes of its WorkflowExecutionStarted event.
    parent: dict[str, Any] | None = None


def start_workflow(tx: Tx, req: StartRequest, now: datetime) -> str:
    row = tx.conn.execute(
        "SELECT run_id FROM executions WHERE workflow_id = ? AND status = ?", (req.workflow_id, OPEN)
    ).fetchone()
    if row is not None:
        raise WorkflowAlreadyStartedError(req.workflow_id, req.workflow_type, run_id=row[0])
    run_id = req.run_id or str(uuid.uuid4())
    task_timeout = (req.task_timeout or timedelta(seconds=10)).total_seconds()
    tx.conn.execute(
        "INSERT INTO executions (run_id, workflow_id, workflow_type, task_queue, status, start_time, next_event_id, task_timeout) "
        "VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
        (run_id, req.workflow_id, req.workflow_type, req.task_queue, OPEN, ts(now), task_timeout),
    )
    run = load_run(tx, run_id)
    attrs: dict[str, Any] = {
        "workflowType": {"name": req.workflow_type},
        "taskQueue": {"name": req.task_queue, "kind": _QUEUE_KIND},
        "input": req.input,
        "workflowTaskTimeout": to_duration(timedelta(seconds=task_timeout)),
        "originalExecutionRunId": run_id,
        "identity": req.identity,
        "firstExecutionRunId": req.first_run_id or run_id,
        "attempt": 1,
        "firstWorkflowTaskBackoff": "0s",
        "header": {},
        "workflowId": req.workflow_id,
    }
    if req.execution_timeout:
        attrs["workflowExecutionTimeout"] = to_duration(req.execution_timeout)
        attrs["workflowExecutionExpirationTime"] = to_timestamp(now + req.execution_timeout)
    if req.run_timeout:
        attrs["workflowRunTimeout"] = to_duration(req.run_timeout)
    if req.memo:
        attrs["memo"] = {"fields": req.memo}
    if req.parent:
        attrs.update(req.parent)
        del attrs["identity"]  # as Temporal: a child's start carries its parent, not a client
    if req.continued_from:
        attrs["continuedExecutionRunId"] = req.continued_from
        attrs["initiator"] = "CONTINUE_AS_NEW_INITIATOR_WORKFLOW"
    append(tx, run, now, "WorkflowExecutionStarted", attrs)
    limit = min(t for t in (req.execution_timeout, req.run_timeout, timedelta.max) if t)
    if limit != timedelta.max:
        tx.conn.execute(
            "INSERT INTO timers (run_id, timer_key, kind, fire_at) VALUES (?, 'execution-timeout', 'execution_timeout', ?)",
            (run_id, ts(now + limit)),
        )
        tx.notify("timers", "")
    ensure_workflow_task(tx, run, now)
    save_run(tx, run)
    return run_id


# ---------------------------------------------------------------------------- workflow tasks
@dataclass
class WorkflowTask:
    task_id: int
    run_id: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    started_event_id: int
    events: list[HistoryEvent]
    history_complete: bool
    updates: list[dict[str, Any]] = field(default_factory=list)


def claim_workflow_tasks(
    tx: Tx, task_queue: str, owner: str, now: datetime, limit: int, known: Callable[[str], int]
) -> list[WorkflowTask]:
    """Claim up to ``limit`` workflow tasks; ``known(run_id)`` is the last event id the
    worker already holds for a run (0 for none), so only newer events are read."""
    rows = tx.conn.execute(
        "SELECT id, run_id, info FROM tasks WHERE kind = 'workflow' AND task_queue = ? AND lease_owner IS NULL "
        "AND visible_at <= ? ORDER BY visible_at, id LIMIT ?",
        (task_queue, ts(now), limit),
    ).fetchall()
    claimed = []
    for task_id, run_id, info_text in rows:
        run = load_run(tx, run_id)
        if not run.open or run.wft_state != "scheduled":
            tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            continue
        info = json.loads(info_text)
        started_attrs = {"identity": identity_of(owner), "requestId": str(uuid.uuid4())}
        synthetic: list[HistoryEvent] = []
        if run.wft_scheduled_id is None:
            # Transient retry: hand the worker the two events without writing them yet.
            scheduled_id, started = run.next_event_id, run.next_event_id + 1
            sched_time = from_ts(info.get("scheduledTime", ts(now)))
            started_attrs["scheduledEventId"] = str(scheduled_id)
            synthetic = [
                HistoryEvent(scheduled_id, "WorkflowTaskScheduled", sched_time, _wft_scheduled_attrs(run)),
                HistoryEvent(started, "WorkflowTaskStarted", now, started_attrs),
            ]
            info["transient"] = [ts(sched_time), ts(now), started_attrs]
            run.wft_scheduled_id = scheduled_id
        else:
            started_attrs["scheduledEventId"] = str(run.wft_scheduled_id)
            started = append(tx, run, now, "WorkflowTaskStarted", started_attrs)
        run.wft_state = "started"
        run.wft_started_id = started
        save_run(tx, run)
        expires = ts(now) + run.task_timeout
        tx.conn.execute(
            "UPDATE tasks SET lease_owner = ?, lease_expires = ?, due_at = ?, started_at = ?, info = ? WHERE id = ?",
            (owner, expires, expires, ts(now), dumps(info), task_id),
        )
        after = known(run_id)
        claimed.append(
            WorkflowTask(
                task_id,
                run_id,
                run.workflow_id,
                run.workflow_type,
                run.task_queue,
                started,
                read_events(tx.conn, run_id, after) + synthetic,
                after == 0,
                _service_updates.claim(tx, run_id),
            )
        )
    if claimed:
        tx.notify("timers", "")
    return claimed


def read_events(conn: Any, run_id: str, after: int = 0) -> list[HistoryEvent]:
    from engine._durations import from_timestamp

    return [
        HistoryEvent(eid, etype, from_timestamp(etime), json.loads(attrs))
        for eid, etype, etime, attrs in conn.execute(
            "SELECT event_id, event_type, event_time, attributes FROM events WHERE run_id = ? AND event_id > ? ORDER BY event_id",
            (run_id, after),
        )
    ]


def _held_workflow_task(tx: Tx, task_id: int, owner: str, run: Run, started_event_id: int) -> dict[str, Any]:
    row = tx.conn.execute("SELECT lease_owner, info FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if row is None or row[0] != owner or run.wft_started_id != started_event_id or not run.open:
        raise StaleTaskError(
            f"workflow task {started_event_id} of run {run.run_id} is no longer held by {owner}"
        )
    info: dict[str, Any] = json.loads(row[1])
    return info


def _write_transient(tx: Tx, run: Run, info: dict[str, Any]) -> None:
    """A transient workflow task completed: its Scheduled and Started events become real."""
    sched_time, started_time, started_attrs = info["transient"]
    append(tx, run, from_ts(sched_time), "WorkflowTaskScheduled", _wft_scheduled_attrs(run))
    append(tx, run, from_ts(started_time), "WorkflowTaskStarted", started_attrs)


def complete_workflow_task(
    tx: Tx,
    task_id: int,
    owner: str,
    run_id: str,
    started_event_id: int,
    commands: Sequence[tuple[str, dict[str, Any]]],
    now: datetime,
    first_task: bool,
) -> bool:
    """Record a workflow task's completion; False if it left no trace (a speculative task
    that only rejected updates), so the worker's cached state is ahead of the history."""
    run = load_run(tx, run_id)
    info = _held_workflow_task(tx, task_id, owner, run, started_event_id)
    if _service_updates.droppable(info, run, commands):
        for kind, cattrs in commands:
            _COMMANDS[kind](tx, run, now, 0, cattrs)
        tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        run.wft_state = ""
        for group in run.buffered:
            _append_group(tx, run, group)
        if run.buffered or _service_updates.waiting(tx, run.run_id):
            ensure_workflow_task(tx, run, now)
        run.buffered = []
        save_run(tx, run)
        return False
    if "transient" in info:
        _write_transient(tx, run, info)
    attrs: dict[str, Any] = {
        "scheduledEventId": str(run.wft_scheduled_id),
        "startedEventId": str(started_event_id),
        "identity": identity_of(owner),
    }
    if first_task:
        attrs["sdkMetadata"] = {"coreUsedFlags": SDK_FLAGS}
    closing = any(kind in _CLOSE_COMMANDS for kind, _ in commands)
    if closing and any(item[0] == "WorkflowExecutionSignaled" for group in run.buffered for item in group["items"]):
        # A signal arrived while the code decided to finish: as in Temporal, the completion is
        # refused and a new workflow task lets the code see the signal. Signals are never lost.
        append(
            tx,
            run,
            now,
            "WorkflowTaskFailed",
            {**{k: v for k, v in attrs.items() if k != "sdkMetadata"}, "cause": "WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND", "failure": {"message": "new signals arrived while the workflow was completing", "source": "Server"}},
        )
        tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        run.wft_state = ""
        for group in run.buffered:
            _append_group(tx, run, group)
        run.buffered = []
        ensure_workflow_task(tx, run, now)
        save_run(tx, run)
        return True
    completed = append(tx, run, now, "WorkflowTaskCompleted", attrs)
    tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
    run.wft_state = ""
    run.wft_attempt = 1
    new_task_needed = False
    for kind, cattrs in commands:
        if not run.open:
            break
        new_task_needed |= _COMMANDS[kind](tx, run, now, completed, cattrs)
    if run.open:
        buffered, run.buffered = run.buffered, []
        for group in buffered:
            _append_group(tx, run, group)
        if buffered or new_task_needed or _service_updates.waiting(tx, run.run_id):
            ensure_workflow_task(tx, run, now)
    save_run(tx, run)
    return True


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
    info = _held_workflow_task(tx, task_id, owner, run, started_event_id)
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
    tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
    _retry_workflow_task(tx, run, now)
    save_run(tx, run)


def _retry_workflow_task(tx: Tx, run: Run, now: datetime, *, backoff: bool = True) -> None:
    run.wft_state = ""
    for group in run.buffered:
        _append_group(tx, run, group)
    run.buffered = []
    run.wft_attempt += 1
    # A failing workflow task is retried with backoff (1 s, 2 s, ... at most 1 min) so a bug
    # does not spin; restarting the worker with fixed code lets the next attempt succeed.
    # A timed-out task (its worker died or stalled) is offered again at once.
    delay = min(60.0, 2.0 ** min(run.wft_attempt - 2, 6)) if backoff else 0.0
    ensure_workflow_task(tx, run, now, delay=delay)
    if delay:
        tx.notify("timers", "")


# ---------------------------------------------------------------------------- commands
def _cmd_schedule_activity(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    event_attrs = {**attrs, "workflowTaskCompletedEventId": str(completed)}
    scheduled = append(tx, run, now, "ActivityTaskScheduled", event_attrs)
    s2c = from_duration(attrs.get("scheduleToCloseTimeout"))
    s2s = from_duration(attrs.get("scheduleToStartTimeout"))
    info = {
        "activityId": attrs["activityId"],
        "activityType": attrs["activityType"]["name"],
        "workflowId": run.workflow_id,
        "workflowType": run.workflow_type,
        "input": attrs.get("input"),
        "scheduledTime": ts(now),
        "deadline": ts(now + s2c) if s2c else None,
        "scheduleToStart": s2s.total_seconds() if s2s else None,
        "startToClose": (from_duration(attrs.get("startToCloseTimeout")) or s2c or timedelta(0)).total_seconds(),
        "heartbeat": (from_duration(attrs.get("heartbeatTimeout")) or timedelta(0)).total_seconds(),
        "retryPolicy": attrs.get("retryPolicy"),
    }
    queue = attrs["taskQueue"]["name"]
    tx.conn.execute(
        "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at, due_at, info) "
        "VALUES ('activity', ?, ?, ?, 1, ?, ?, ?)",
        (queue, run.run_id, scheduled, ts(now), _unleased_due(info, ts(now)), dumps(info)),
    )
    tx.notify("queue", f"activity:{queue}")
    tx.notify("timers", "")
    return False


def _unleased_due(info: dict[str, Any], visible_at: float) -> float | None:
    candidates = [info.get("deadline")]
    if info.get("scheduleToStart"):
        candidates.append(visible_at + info["scheduleToStart"])
    present = [c for c in candidates if c]
    return min(present) if present else None


def _cmd_start_timer(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    started = append(tx, run, now, "TimerStarted", {**attrs, "workflowTaskCompletedEventId": str(completed)})
    fire = now + (from_duration(attrs.get("startToFireTimeout")) or timedelta(0))
    tx.conn.execute(
        "INSERT INTO timers (run_id, timer_key, kind, fire_at, info) VALUES (?, ?, 'timer', ?, ?)",
        (run.run_id, "timer:" + attrs["timerId"], ts(fire), dumps({"timerId": attrs["timerId"], "startedEventId": started})),
    )
    tx.notify("timers", "")
    return False


def _cmd_cancel_timer(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    row = tx.conn.execute(
        "SELECT info FROM timers WHERE run_id = ? AND timer_key = ?", (run.run_id, "timer:" + attrs["timerId"])
    ).fetchone()
    started = json.loads(row[0])["startedEventId"] if row else 0
    tx.conn.execute("DELETE FROM timers WHERE run_id = ? AND timer_key = ?", (run.run_id, "timer:" + attrs["timerId"]))
    append(
        tx,
        run,
        now,
        "TimerCanceled",
        {"timerId": attrs["timerId"], "startedEventId": str(started), "workflowTaskCompletedEventId": str(completed), "identity": ""},
    )
    return False


def _cmd_cancel_activity(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    scheduled = int(attrs["scheduledEventId"])
    requested = append(
        tx,
        run,
        now,
        "ActivityTaskCancelRequested",
        {"scheduledEventId": str(scheduled), "workflowTaskCompletedEventId": str(completed)},
    )
    row = tx.conn.execute(
        "SELECT id, lease_owner, info FROM tasks WHERE run_id = ? AND kind = 'activity' AND scheduled_event_id = ?",
        (run.run_id, scheduled),
    ).fetchone()
    if row is None:
        return False
    task_id, lease_owner, info = row
    if lease_owner is None:
        tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        append(
            tx,
            run,
            now,
            "ActivityTaskCanceled",
            {"scheduledEventId": str(scheduled), "startedEventId": "0", "latestCancelRequestedEventId": str(requested), "identity": ""},
        )
        return True
    data = json.loads(info)
    data["cancelRequested"] = requested
    tx.conn.execute("UPDATE tasks SET info = ? WHERE id = ?", (dumps(data), task_id))
    return False


def _close_command(status: str, event_type: str):  # type: ignore[no-untyped-def]
    def handler(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
        extra: dict[str, Any] = {"workflowTaskCompletedEventId": str(completed)}
        if event_type == "WorkflowExecutionFailed":
            extra["retryState"] = "RETRY_STATE_RETRY_POLICY_NOT_SET"
        append(tx, run, now, event_type, {**attrs, **extra})
        close_run(tx, run, now, status, attrs)
        return False

    return handler


def _cmd_continue_as_new(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    new_run_id = str(uuid.uuid4())
    append(
        tx,
        run,
        now,
        "WorkflowExecutionContinuedAsNew",
        {"newExecutionRunId": new_run_id, **attrs, "workflowTaskCompletedEventId": str(completed), "initiator": "CONTINUE_AS_NEW_INITIATOR_WORKFLOW"},
    )
    close_run(tx, run, now, "ContinuedAsNew")
    save_run(tx, run)
    first = tx.conn.execute(
        "SELECT attributes FROM events WHERE run_id = ? AND event_id = 1", (run.run_id,)
    ).fetchone()
    started = json.loads(first[0]) if first else {}
    start_workflow(
        tx,
        StartRequest(
            workflow_id=run.workflow_id,
            workflow_type=attrs["workflowType"]["name"],
            task_queue=attrs["taskQueue"]["name"],
            input=attrs.get("input") or {"payloads": []},
            identity=str(started.get("identity", "")),
            run_timeout=from_duration(attrs.get("workflowRunTimeout")),
            task_timeout=from_duration(attrs.get("workflowTaskTimeout")),
            run_id=new_run_id,
            continued_from=run.run_id,
            first_run_id=str(started.get("firstExecutionRunId") or run.run_id),
            parent={k: v for k, v in started.items() if k.startswith(("parent", "root"))} or None,
        ),
        now,
    )
    tx.conn.execute("UPDATE children SET child_run_id = ? WHERE child_run_id = ?", (new_run_id, run.run_id))
    tx.notify("continued", run.run_id)
    return False


def _cmd_record_marker(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    append(tx, run, now, "MarkerRecorded", {**attrs, "workflowTaskCompletedEventId": str(completed)})
    return False


_CLOSE_COMMANDS = frozenset(
    {"CompleteWorkflowExecution", "FailWorkflowExecution", "CancelWorkflowExecution", "ContinueAsNewWorkflowExecution"}
)

_COMMANDS = {
    "StartChildWorkflowExecution": lambda *a: _service_children.cmd_start_child(*a),
    "SignalExternalWorkflowExecution": lambda *a: _service_children.cmd_signal_external(*a),
    "RequestCancelExternalWorkflowExecution": lambda *a: _service_children.cmd_cancel_external(*a),
    "ScheduleActivityTask": _cmd_schedule_activity,
    "StartTimer": _cmd_start_timer,
    "CancelTimer": _cmd_cancel_timer,
    "RequestCancelActivityTask": _cmd_cancel_activity,
    "RecordMarker": _cmd_record_marker,
    "AcceptUpdate": lambda *a: _service_updates.cmd_accept(*a),
    "CompleteUpdate": lambda *a: _service_updates.cmd_complete(*a),
    "RejectUpdate": lambda *a: _service_updates.cmd_reject(*a),
    "CompleteWorkflowExecution": _close_command("Completed", "WorkflowExecutionCompleted"),
    "FailWorkflowExecution": _close_command("Failed", "WorkflowExecutionFailed"),
    "CancelWorkflowExecution": _close_command("Canceled", "WorkflowExecutionCanceled"),
    "ContinueAsNewWorkflowExecution": _cmd_continue_as_new,
}


# ---------------------------------------------------------------------------- activity tasks
@dataclass
class ActivityTask:
    task_id: int
    run_id: str
    scheduled_event_id: int
    attempt: int
    info: dict[str, Any]
    started_at: float


def claim_activity_tasks(tx: Tx, task_queue: str, owner: str, now: datetime, limit: int) -> list[ActivityTask]:
    rows = tx.conn.execute(
        "SELECT id, run_id, scheduled_event_id, attempt, info FROM tasks WHERE kind = 'activity' AND task_queue = ? "
        "AND lease_owner IS NULL AND visible_at <= ? ORDER BY visible_at, id LIMIT ?",
        (task_queue, ts(now), limit),
    ).fetchall()
    claimed = []
    t = ts(now)
    for task_id, run_id, scheduled, attempt, info_text in rows:
        info = json.loads(info_text)
        expires = _lease_expiry(info, t, t)
        due = min(x for x in (expires, info.get("deadline")) if x)
        tx.conn.execute(
            "UPDATE tasks SET lease_owner = ?, lease_expires = ?, due_at = ?, started_at = ? WHERE id = ?",
            (owner, expires, due, t, task_id),
        )
        claimed.append(ActivityTask(task_id, run_id, scheduled, attempt, info, t))
    if claimed:
        tx.notify("timers", "")
    return claimed


def _lease_expiry(info: dict[str, Any], started_at: float, last_beat: float) -> float:
    expiry = started_at + (info.get("startToClose") or 0) if info.get("startToClose") else float("inf")
    if info.get("heartbeat"):
        expiry = min(expiry, last_beat + info["heartbeat"])
    return expiry


def _held_activity(tx: Tx, task_id: int, owner: str, attempt: int) -> tuple[str, int, dict[str, Any], float] | None:
    row = tx.conn.execute(
        "SELECT run_id, scheduled_event_id, info, started_at FROM tasks WHERE id = ? AND kind = 'activity' "
        "AND lease_owner = ? AND attempt = ?",
        (task_id, owner, attempt),
    ).fetchone()
    if row is None:
        return None
    return row[0], row[1], json.loads(row[2]), row[3]


def complete_activity(tx: Tx, task_id: int, owner: str, attempt: int, result: dict[str, Any], now: datetime) -> bool:
    held = _held_activity(tx, task_id, owner, attempt)
    if held is None:
        return False
    run_id, scheduled, info, started_at = held
    run = load_run(tx, run_id)
    tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
    _record_attempt(tx, run_id, scheduled, attempt, started_at, now, "completed", None, owner)
    deliver(
        tx,
        run,
        now,
        [
            ("ActivityTaskStarted", _started_attrs(scheduled, owner, attempt, info), from_ts(started_at)),
            ("ActivityTaskCompleted", {"result": result, "scheduledEventId": str(scheduled), "identity": identity_of(owner)}),
        ],
        link_started=True,
    )
    save_run(tx, run)
    return True


def _started_attrs(scheduled: int, owner: str, attempt: int, info: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "scheduledEventId": str(scheduled),
        "identity": identity_of(owner),
        "requestId": str(uuid.uuid4()),
        "attempt": attempt,
    }
    if info.get("lastFailure"):
        attrs["lastFailure"] = info["lastFailure"]
    return attrs


def fail_activity(
    tx: Tx, task_id: int, owner: str, attempt: int, failure: dict[str, Any], now: datetime, cancelled: bool = False
) -> bool:
    held = _held_activity(tx, task_id, owner, attempt)
    if held is None:
        return False
    run_id, scheduled, info, started_at = held
    run = load_run(tx, run_id)
    if cancelled and info.get("cancelRequested"):
        tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        _record_attempt(tx, run_id, scheduled, attempt, started_at, now, "canceled", failure, owner)
        deliver(
            tx,
            run,
            now,
            [
                ("ActivityTaskStarted", _started_attrs(scheduled, owner, attempt, info), from_ts(started_at)),
                (
                    "ActivityTaskCanceled",
                    {"scheduledEventId": str(scheduled), "latestCancelRequestedEventId": str(info["cancelRequested"]), "identity": identity_of(owner)},
                ),
            ],
            link_started=True,
        )
    else:
        _attempt_failed(tx, run, task_id, scheduled, attempt, info, started_at, failure, now, owner, "failed")
    save_run(tx, run)
    return True


def _attempt_failed(
    tx: Tx,
    run: Run,
    task_id: int,
    scheduled: int,
    attempt: int,
    info: dict[str, Any],
    started_at: float | None,
    failure: dict[str, Any],
    now: datetime,
    owner: str,
    outcome: str,
) -> None:
    _record_attempt(tx, run.run_id, scheduled, attempt, started_at, now, outcome, failure, owner)
    policy = RetryPolicy.from_json(info.get("retryPolicy"))
    app = failure.get("applicationFailureInfo") or {}
    next_attempt = attempt + 1
    delay = policy.delay_before_attempt(next_attempt).total_seconds()
    state = None
    if app.get("nonRetryable") or not policy.is_retryable(app.get("type")):
        state = RetryState.NON_RETRYABLE_FAILURE
    elif not policy.allows_attempt(next_attempt):
        state = RetryState.MAXIMUM_ATTEMPTS_REACHED
    elif info.get("deadline") and ts(now) + delay >= info["deadline"]:
        state = RetryState.TIMEOUT
    if state is None:
        info["lastFailure"] = failure
        visible = ts(now) + delay
        tx.conn.execute(
            "UPDATE tasks SET attempt = ?, visible_at = ?, lease_owner = NULL, lease_expires = NULL, started_at = NULL, "
            "due_at = ?, info = ? WHERE id = ?",
            (next_attempt, visible, _unleased_due(info, visible), dumps(info), task_id),
        )
        tx.notify("timers", "")
        return
    tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
    final = "ActivityTaskTimedOut" if outcome == "timed out" else "ActivityTaskFailed"
    closing: dict[str, Any] = {
        "failure": failure,
        "scheduledEventId": str(scheduled),
        "retryState": f"RETRY_STATE_{state.name}",
    }
    if final == "ActivityTaskFailed":
        closing["identity"] = identity_of(owner)
    deliver(
        tx,
        run,
        now,
        [
            ("ActivityTaskStarted", _started_attrs(scheduled, owner, attempt, info), from_ts(started_at) if started_at else None),
            (final, closing),
        ],
        link_started=True,
    )


def _record_attempt(
    tx: Tx, run_id: str, scheduled: int, attempt: int, started_at: float | None, now: datetime, outcome: str, failure: Any, owner: str
) -> None:
    tx.conn.execute(
        "INSERT OR REPLACE INTO activity_attempts (run_id, scheduled_event_id, attempt, started_at, ended_at, outcome, failure, identity) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, scheduled, attempt, started_at, ts(now), outcome, dumps(failure) if failure else None, owner),
    )


def heartbeat_activity(tx: Tx, task_id: int, owner: str, attempt: int, details: dict[str, Any] | None, now: datetime) -> bool:
    """Record a heartbeat; returns True when cancellation of the activity was requested."""
    held = _held_activity(tx, task_id, owner, attempt)
    if held is None:
        return True
    _, _, info, started_at = held
    if details is not None:
        info["heartbeatDetails"] = details
    expires = _lease_expiry(info, started_at, ts(now))
    due = min(x for x in (expires, info.get("deadline")) if x)
    tx.conn.execute(
        "UPDATE tasks SET lease_expires = ?, due_at = ?, info = ? WHERE id = ?", (expires, due, dumps(info), task_id)
    )
    tx.notify("timers", "")
    return bool(info.get("cancelRequested"))


# ---------------------------------------------------------------------------- timers and timeouts
def fire_due(tx: Tx, now: datetime, limit: int = 500) -> int:
    t = ts(now)
    fired = 0
    for run_id, key, kind, info_text in tx.conn.execute(
        "SELECT run_id, timer_key, kind, info FROM timers WHERE fire_at <= ? ORDER BY fire_at LIMIT ?", (t, limit)
    ).fetchall():
        tx.conn.execute("DELETE FROM timers WHERE run_id = ? AND timer_key = ?", (run_id, key))
        run = load_run(tx, run_id)
        if not run.open:
            continue
        info = json.loads(info_text)
        if kind == "timer":
            deliver(tx, run, now, [("TimerFired", {"timerId": info["timerId"], "startedEventId": str(info["startedEventId"])})])
        elif kind == "execution_timeout":
            append(tx, run, now, "WorkflowExecutionTimedOut", {"retryState": "RETRY_STATE_TIMEOUT"})
            close_run(tx, run, now, "TimedOut", {"retryState": "RETRY_STATE_TIMEOUT"})
        save_run(tx, run)
        fired += 1
    for task_id, kind, run_id, scheduled, attempt, lease_owner, lease_expires, started_at, info_text in tx.conn.execute(
        "SELECT id, kind, run_id, scheduled_event_id, attempt, lease_owner, lease_expires, started_at, info FROM tasks "
        "WHERE due_at <= ? ORDER BY due_at LIMIT ?",
        (t, limit),
    ).fetchall():
        run = load_run(tx, run_id)
        if kind == "workflow":
            if run.open and run.wft_state == "started":
                if "transient" not in json.loads(info_text):
                    append(
                        tx,
                        run,
                        now,
                        "WorkflowTaskTimedOut",
                        {"scheduledEventId": str(run.wft_scheduled_id), "startedEventId": str(run.wft_started_id), "timeoutType": "TIMEOUT_TYPE_START_TO_CLOSE"},
                    )
                tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
                _retry_workflow_task(tx, run, now, backoff=False)
            else:
                tx.conn.execute("UPDATE tasks SET due_at = NULL WHERE id = ?", (task_id,))
        else:
            _activity_timeout(tx, run, task_id, scheduled, attempt, lease_owner, lease_expires, started_at, json.loads(info_text), now)
        save_run(tx, run)
        fired += 1
    return fired


def _activity_timeout(
    tx: Tx,
    run: Run,
    task_id: int,
    scheduled: int,
    attempt: int,
    lease_owner: str | None,
    lease_expires: float | None,
    started_at: float | None,
    info: dict[str, Any],
    now: datetime,
) -> None:
    from engine._failure_converter import encode_failure
    from engine.errors import TimeoutError, TimeoutType

    t = ts(now)
    if info.get("deadline") and info["deadline"] <= t:
        kind = TimeoutType.SCHEDULE_TO_CLOSE
    elif lease_owner is not None and lease_expires is not None and lease_expires <= t:
        hb_expired = info.get("heartbeat") and (started_at or 0) + (info.get("startToClose") or float("inf")) > t
        kind = TimeoutType.HEARTBEAT if hb_expired else TimeoutType.START_TO_CLOSE
    elif lease_owner is None and info.get("scheduleToStart"):
        kind = TimeoutType.SCHEDULE_TO_START
    else:
        tx.conn.execute("UPDATE tasks SET due_at = NULL WHERE id = ?", (task_id,))
        return
    failure = encode_failure(TimeoutError(f"activity {kind.name.lower().replace('_', '-')} timeout", type=kind))
    failure["stackTrace"] = ""
    failure["source"] = "Server"
    if kind in (TimeoutType.START_TO_CLOSE, TimeoutType.HEARTBEAT):
        _attempt_failed(tx, run, task_id, scheduled, attempt, info, started_at, failure, now, lease_owner or "", "timed out")
        return
    tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
    _record_attempt(tx, run.run_id, scheduled, attempt, started_at, now, "timed out", failure, lease_owner or "")
    items: list[tuple[Any, ...]] = []
    if lease_owner is not None:
        items.append(("ActivityTaskStarted", _started_attrs(scheduled, lease_owner, attempt, info), from_ts(started_at) if started_at else None))
    items.append(
        ("ActivityTaskTimedOut", {"failure": failure, "scheduledEventId": str(scheduled), "startedEventId": "0", "retryState": "RETRY_STATE_TIMEOUT"})
    )
    deliver(tx, run, now, items, link_started=lease_owner is not None)


def idle_state(conn: Any, now: float, served: Sequence[str], owners: Sequence[str] = ()) -> tuple[bool, float | None, bool]:
    """(nothing runnable or due now, the next moment something becomes due, something is due).

    Runnable means visible on a queue that one of this process's workers serves (``served``
    holds ``"workflow:Q"`` / ``"activity:Q"``): a task nobody polls must not stop time, or its
    schedule-to-start timeout could never fire. Likewise only leases held by this process's
    live workers (``owners``) are work in progress: a crashed worker's lease must time out.
    """
    marks = ",".join("?" * len(served)) or "NULL"
    owner_marks = ",".join("?" * len(owners)) or "NULL"
    busy = conn.execute(
        f"SELECT EXISTS(SELECT 1 FROM tasks WHERE (lease_owner IS NULL AND visible_at <= ? AND kind || ':' || task_queue IN ({marks})) "
        f"OR lease_owner IN ({owner_marks}) OR due_at <= ?) OR EXISTS(SELECT 1 FROM timers WHERE fire_at <= ?)",
        (now, *served, *owners, now, now),
    ).fetchone()[0]
    row = conn.execute(
        "SELECT min(x) FROM (SELECT min(fire_at) AS x FROM timers UNION ALL SELECT min(due_at) FROM tasks "
        f"UNION ALL SELECT min(visible_at) FROM tasks WHERE visible_at > ? AND kind || ':' || task_queue IN ({marks}))",
        (now, *served),
    ).fetchone()
    due = conn.execute(
        "SELECT EXISTS(SELECT 1 FROM timers WHERE fire_at <= ?) OR EXISTS(SELECT 1 FROM tasks WHERE due_at <= ?)", (now, now)
    ).fetchone()[0]
    return (not busy), (row[0] if row else None), bool(due)


def has_tasks(conn: Any, kind: str, task_queue: str, now: float) -> bool:
    return conn.execute(
        "SELECT EXISTS(SELECT 1 FROM tasks WHERE kind = ? AND task_queue = ? AND lease_owner IS NULL AND visible_at <= ?)",
        (kind, task_queue, now),
    ).fetchone()[0] == 1


# ---------------------------------------------------------------------------- client requests
def request_cancel(
    tx: Tx, run_id: str, reason: str, identity: str, now: datetime, external: dict[str, Any] | None = None
) -> None:
    """``external``: the ``externalInitiatedEventId``/``externalWorkflowExecution`` of a
    cancel sent by another workflow."""
    run = load_run(tx, run_id)
    if not run.open:
        raise WorkflowNotFoundError(f"Workflow run {run_id} is already closed ({run.status}); nothing to cancel.")
    attrs = {"cause": reason, "identity": identity, **(external or {})}
    if not reason:
        del attrs["cause"]
    deliver(tx, run, now, [("WorkflowExecutionCancelRequested", attrs)])
    save_run(tx, run)


def signal_workflow(
    tx: Tx, run_id: str, name: str, payloads: dict[str, Any], identity: str, now: datetime, external: dict[str, Any] | None = None
) -> None:
    run = load_run(tx, run_id)
    if not run.open:
        raise WorkflowNotFoundError(f"Workflow run {run_id} is already closed ({run.status}); it cannot receive signal {name!r}.")
    attrs = {"signalName": name, "input": payloads, "identity": identity, "header": {}, **(external or {})}
    deliver(tx, run, now, [("WorkflowExecutionSignaled", attrs)])
    save_run(tx, run)


def terminate(tx: Tx, run_id: str, reason: str, details: dict[str, Any] | None, identity: str, now: datetime) -> None:
    run = load_run(tx, run_id)
    if not run.open:
        raise WorkflowNotFoundError(f"Workflow run {run_id} is already closed ({run.status}); nothing to terminate.")
    if run.wft_state == "started":
        # The in-flight task's outcome is dropped (StaleTaskError); record that it ended.
        append(
            tx,
            run,
            now,
            "WorkflowTaskFailed",
            {
                "scheduledEventId": str(run.wft_scheduled_id),
                "startedEventId": str(run.wft_started_id),
                "cause": "WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND",
                "identity": identity,
            },
        )
    for group in run.buffered:
        _append_group(tx, run, group)
    run.buffered = []
    append(tx, run, now, "WorkflowExecutionTerminated", {"reason": reason, "details": details, "identity": identity})
    close_run(tx, run, now, "Terminated", {"reason": reason})
    save_run(tx, run)


# At the end: it uses this module's functions (and this module calls it only at run time).
from engine import _service_children, _service_updates  # noqa: E402
