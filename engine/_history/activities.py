"""Service side of activity tasks: scheduling, claims, completions, failures and retries, heartbeats, timeouts.

Like everything in ``engine._history``, each function runs inside one group-committed transaction.
An activity task leased by this connection (eagerly dispatched or claimed) is remembered in
``store.Cache.tasks``, so that its completion need not read the task row back; the row count
of the DELETE that ends the lease still proves the lease was this owner's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from engine._api.durations import from_duration
from engine._history.mutable_state import Run, append, from_ts, identity_of, load_run, request_id, save_run, ts
from engine._history.workflow_tasks import deliver
from engine._matching.dead_workers import ASYNC_MARK
from engine._matching.dispatch import pick
from engine._matching.task_queues import claimable
from engine._persistence.transactions import Tx, dumps, loads
from engine.common import RetryPolicy
from engine.errors import RetryState


# ---------------------------------------------------------------------------- commands
def cmd_schedule_activity(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    event_attrs = {**attrs, "workflowTaskCompletedEventId": str(completed)}
    scheduled = append(tx, run, now, "ActivityTaskScheduled", event_attrs)
    info = task_info(run, attrs, now)
    queue = attrs["taskQueue"]["name"]
    t = ts(now)
    receiver = pick(tx.receivers, "activity:" + queue)
    if receiver is not None:
        # Eager dispatch: leased at once to a worker of this process with a free slot.
        expires = lease_expiry(info, t, t)
        due = min(x for x in (expires, info["deadline"]) if x)
        task_id = tx.conn.execute(
            "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at, due_at, lease_owner, "
            "lease_expires, started_at, info) VALUES ('activity', ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
            (queue, run.run_id, scheduled, t, due, receiver.owner, expires, t, dumps(info)),
        ).lastrowid
        assert task_id is not None
        tx.cache.tasks[task_id] = HeldActivity(run.run_id, scheduled, info, t)
        tx.dispatch(receiver, ActivityTask(task_id, run.run_id, scheduled, 1, info, t))
    else:
        due = unleased_due(info, t)
        tx.conn.execute(
            "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at, due_at, info) "
            "VALUES ('activity', ?, ?, ?, 1, ?, ?, ?)",
            (queue, run.run_id, scheduled, t, due, dumps(info)),
        )
        tx.notify("queue", f"activity:{queue}")
    tx.note_due(due)
    return False


def task_info(run: Run, attrs: dict[str, Any], scheduled_at: datetime) -> dict[str, Any]:
    """What an activity task row keeps of its ActivityTaskScheduled command (``attrs``)."""
    s2c = from_duration(attrs.get("scheduleToCloseTimeout"))
    s2s = from_duration(attrs.get("scheduleToStartTimeout"))
    info = {
        "activityId": attrs["activityId"],
        "activityType": attrs["activityType"]["name"],
        "workflowId": run.workflow_id,
        "workflowType": run.workflow_type,
        "input": attrs.get("input"),
        "scheduledTime": ts(scheduled_at),
        "deadline": ts(scheduled_at + s2c) if s2c else None,
        "scheduleToStart": s2s.total_seconds() if s2s else None,
        "startToClose": (from_duration(attrs.get("startToCloseTimeout")) or s2c or timedelta(0)).total_seconds(),
        "heartbeat": (from_duration(attrs.get("heartbeatTimeout")) or timedelta(0)).total_seconds(),
        "retryPolicy": attrs.get("retryPolicy"),
    }
    if attrs.get("header"):
        info["header"] = attrs["header"]  # for the activity's interceptors
    return info


def unleased_due(info: dict[str, Any], visible_at: float) -> float | None:
    candidates = [info.get("deadline")]
    if info.get("scheduleToStart"):
        candidates.append(visible_at + info["scheduleToStart"])
    present = [c for c in candidates if c]
    return min(present) if present else None


def cmd_cancel_activity(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
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
    tx.cache.tasks.pop(task_id, None)
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


def activity_timeout(
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
    from engine._conversion.failure_converter import encode_failure
    from engine.errors import TimeoutError, TimeoutType

    t = ts(now)
    # Both due: Temporal times the attempt out first, then finds no time left to retry it.
    attempt_over = lease_owner is not None and lease_expires is not None and lease_expires <= t
    if info.get("deadline") and info["deadline"] <= t and not attempt_over:
        kind = TimeoutType.SCHEDULE_TO_CLOSE
    elif lease_owner is not None and lease_expires is not None and lease_expires <= t:
        hb_expired = info.get("heartbeat") and (started_at or 0) + (info.get("startToClose") or float("inf")) > t
        kind = TimeoutType.HEARTBEAT if hb_expired else TimeoutType.START_TO_CLOSE
    elif lease_owner is None and info.get("scheduleToStart"):
        kind = TimeoutType.SCHEDULE_TO_START
    else:
        tx.conn.execute("UPDATE tasks SET due_at = NULL WHERE id = ?", (task_id,))
        return
    # The server's own wording ("activity StartToClose timeout"), so messages match Temporal's.
    failure = encode_failure(TimeoutError(f"activity {''.join(p.capitalize() for p in kind.name.split('_'))} timeout", type=kind))
    failure["stackTrace"] = ""
    failure["source"] = "Server"
    if kind is TimeoutType.HEARTBEAT and info.get("heartbeatDetails"):  # as Temporal: the last details travel with it
        failure["timeoutFailureInfo"]["lastHeartbeatDetails"] = info["heartbeatDetails"]
    if kind in (TimeoutType.START_TO_CLOSE, TimeoutType.HEARTBEAT):
        attempt_failed(tx, run, task_id, scheduled, attempt, info, started_at, failure, now, lease_owner or "", "timed out")
        return
    tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
    record_attempt(tx, run.run_id, scheduled, attempt, started_at, now, "timed out", failure, lease_owner or "")
    items: list[tuple[Any, ...]] = []
    if lease_owner is not None:
        items.append(("ActivityTaskStarted", started_attrs(scheduled, lease_owner, attempt, info), from_ts(started_at) if started_at else None))
    items.append(
        ("ActivityTaskTimedOut", {"failure": failure, "scheduledEventId": str(scheduled), "startedEventId": "0", "retryState": "RETRY_STATE_TIMEOUT"})
    )
    deliver(tx, run, now, items, link_started=lease_owner is not None)


@dataclass
class ActivityTask:
    task_id: int
    run_id: str
    scheduled_event_id: int
    attempt: int
    info: dict[str, Any]
    started_at: float


class HeldActivity(NamedTuple):
    """An activity task leased by this connection (``transactions.Cache.tasks``), so that its
    completion need not read the task row back."""

    run_id: str
    scheduled_event_id: int
    info: dict[str, Any]
    started_at: float


def claim_activity_tasks(
    tx: Tx, task_queue: str, owner: str, now: datetime, limit: int, receiver: Any = None
) -> list[ActivityTask]:
    rows = claimable(tx, "activity", "id, run_id, scheduled_event_id, attempt, info", task_queue, now, limit, receiver)
    claimed = []
    t = ts(now)
    for task_id, run_id, scheduled, attempt, info_text in rows:
        info = loads(info_text)
        expires = lease_expiry(info, t, t)
        due = min(x for x in (expires, info.get("deadline")) if x)
        tx.conn.execute(
            "UPDATE tasks SET lease_owner = ?, lease_expires = ?, due_at = ?, started_at = ? WHERE id = ?",
            (owner, expires, due, t, task_id),
        )
        tx.note_due(due)
        if receiver is not None:
            receiver.taken += 1
        claimed.append(ActivityTask(task_id, run_id, scheduled, attempt, info, t))
    return claimed


def lease_expiry(info: dict[str, Any], started_at: float, last_beat: float) -> float:
    expiry = started_at + (info.get("startToClose") or 0) if info.get("startToClose") else float("inf")
    if info.get("heartbeat"):
        expiry = min(expiry, last_beat + info["heartbeat"])
    return expiry


def _held_activity(tx: Tx, task_id: int, owner: str, attempt: int) -> tuple[str, int, dict[str, Any], float] | None:
    tx.cache.tasks.pop(task_id, None)  # what follows may change the row
    row = tx.conn.execute(
        "SELECT run_id, scheduled_event_id, info, started_at FROM tasks WHERE id = ? AND kind = 'activity' "
        "AND lease_owner = ? AND attempt = ?",
        (task_id, owner, attempt),
    ).fetchone()
    if row is None:
        return None
    return row[0], row[1], loads(row[2]), row[3]


def complete_activity(tx: Tx, task_id: int, owner: str, attempt: int, result: dict[str, Any], now: datetime) -> bool:
    held = tx.cache.tasks.pop(task_id, None)
    if held is None:
        found = _held_activity(tx, task_id, owner, attempt)
        if found is None:
            return False
        held = HeldActivity(found[0], found[1], found[2], found[3])
    # The row count proves the lease is still ours (not timed out, retried or closed).
    if tx.conn.execute(
        "DELETE FROM tasks WHERE id = ? AND lease_owner = ? AND attempt = ?", (task_id, owner, attempt)
    ).rowcount != 1:
        return False
    run_id, scheduled, info, started_at = held
    run = load_run(tx, run_id)
    record_attempt(tx, run_id, scheduled, attempt, started_at, now, "completed", None, owner)
    _deliver_attempt_end(
        tx, run, now, scheduled, owner, attempt, info, started_at,
        "ActivityTaskCompleted", {"result": result, "scheduledEventId": str(scheduled), "identity": identity_of(owner)},
    )
    save_run(tx, run)
    return True


def _deliver_attempt_end(
    tx: Tx, run: Run, now: datetime, scheduled: int, owner: str, attempt: int, info: dict[str, Any],
    started_at: float | None, event_type: str, attrs: dict[str, Any],
) -> None:
    """The attempt's ActivityTaskStarted (only the last attempt is in history, with its real
    start time) and the event that ends the activity, linked to it."""
    deliver(
        tx,
        run,
        now,
        [
            ("ActivityTaskStarted", started_attrs(scheduled, owner, attempt, info), from_ts(started_at) if started_at else None),
            (event_type, attrs),
        ],
        link_started=True,
    )


def started_attrs(scheduled: int, owner: str, attempt: int, info: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "scheduledEventId": str(scheduled),
        "identity": identity_of(owner),
        "requestId": request_id(),
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
        record_attempt(tx, run_id, scheduled, attempt, started_at, now, "canceled", failure, owner)
        _deliver_attempt_end(
            tx, run, now, scheduled, owner, attempt, info, started_at,
            "ActivityTaskCanceled",
            {"scheduledEventId": str(scheduled), "latestCancelRequestedEventId": str(info["cancelRequested"]), "identity": identity_of(owner)},
        )
    else:
        attempt_failed(tx, run, task_id, scheduled, attempt, info, started_at, failure, now, owner, "failed")
    save_run(tx, run)
    return True


NO_TIME_TO_RETRY = "Not enough time to schedule next retry before activity ScheduleToClose timeout, giving up retrying"


def attempt_failed(
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
    record_attempt(tx, run.run_id, scheduled, attempt, started_at, now, outcome, failure, owner)
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
        if outcome == "timed out":  # as Temporal: a timed-out attempt that cannot be retried ends the schedule-to-close way
            failure = {"message": NO_TIME_TO_RETRY, "source": "Server", "timeoutFailureInfo": {"timeoutType": "TIMEOUT_TYPE_SCHEDULE_TO_CLOSE"}}
    if state is None:
        info["lastFailure"] = failure
        info.pop(ASYNC_MARK, None)  # the next attempt completes as it chooses
        visible = ts(now) + delay
        due = unleased_due(info, visible)
        tx.conn.execute(
            "UPDATE tasks SET attempt = ?, visible_at = ?, lease_owner = NULL, lease_expires = NULL, started_at = NULL, "
            "due_at = ?, info = ? WHERE id = ?",
            (next_attempt, visible, due, dumps(info), task_id),
        )
        tx.note_due(due)
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
    _deliver_attempt_end(tx, run, now, scheduled, owner, attempt, info, started_at, final, closing)


def record_attempt(
    tx: Tx, run_id: str, scheduled: int, attempt: int, started_at: float | None, now: datetime, outcome: str, failure: Any, owner: str
) -> None:
    tx.attempts.append((run_id, scheduled, attempt, started_at, ts(now), outcome, dumps(failure) if failure else None, owner))


def heartbeat_activity(tx: Tx, task_id: int, owner: str, attempt: int, details: dict[str, Any] | None, now: datetime) -> bool:
    """Record a heartbeat; returns True when cancellation of the activity was requested."""
    held = _held_activity(tx, task_id, owner, attempt)
    if held is None:
        return True
    _, _, info, started_at = held
    if details is not None:
        info["heartbeatDetails"] = details
    expires = lease_expiry(info, started_at, ts(now))
    due = min(x for x in (expires, info.get("deadline")) if x)
    tx.conn.execute(
        "UPDATE tasks SET lease_expires = ?, due_at = ?, info = ? WHERE id = ?", (expires, due, dumps(info), task_id)
    )
    tx.note_due(due)
    return bool(info.get("cancelRequested"))
