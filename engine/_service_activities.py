"""Service side of activity tasks: claims, completions, failures and retries, heartbeats.

Like everything in ``_service``, each function runs inside one group-committed transaction.
An activity task leased by this connection (eagerly dispatched or claimed) is remembered in
``_store.Cache.tasks``, so that its completion need not read the task row back; the row count
of the DELETE that ends the lease still proves the lease was this owner's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from engine._service import (
    Run,
    claimable,
    deliver,
    from_ts,
    identity_of,
    load_run,
    request_id,
    save_run,
    ts,
    _unleased_due,
)
from engine._store import Tx, dumps
from engine.common import RetryPolicy
from engine.errors import RetryState


@dataclass
class ActivityTask:
    task_id: int
    run_id: str
    scheduled_event_id: int
    attempt: int
    info: dict[str, Any]
    started_at: float


class HeldActivity(NamedTuple):
    """An activity task leased by this connection (``_store.Cache.tasks``), so that its
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
        info = json.loads(info_text)
        expires = _lease_expiry(info, t, t)
        due = min(x for x in (expires, info.get("deadline")) if x)
        tx.conn.execute(
            "UPDATE tasks SET lease_owner = ?, lease_expires = ?, due_at = ?, started_at = ? WHERE id = ?",
            (owner, expires, due, t, task_id),
        )
        if receiver is not None:
            receiver.taken += 1
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
    tx.cache.tasks.pop(task_id, None)  # what follows may change the row
    row = tx.conn.execute(
        "SELECT run_id, scheduled_event_id, info, started_at FROM tasks WHERE id = ? AND kind = 'activity' "
        "AND lease_owner = ? AND attempt = ?",
        (task_id, owner, attempt),
    ).fetchone()
    if row is None:
        return None
    return row[0], row[1], json.loads(row[2]), row[3]


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
    _record_attempt(tx, run_id, scheduled, attempt, started_at, now, "completed", None, owner)
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
            ("ActivityTaskStarted", _started_attrs(scheduled, owner, attempt, info), from_ts(started_at) if started_at else None),
            (event_type, attrs),
        ],
        link_started=True,
    )


def _started_attrs(scheduled: int, owner: str, attempt: int, info: dict[str, Any]) -> dict[str, Any]:
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
        _record_attempt(tx, run_id, scheduled, attempt, started_at, now, "canceled", failure, owner)
        _deliver_attempt_end(
            tx, run, now, scheduled, owner, attempt, info, started_at,
            "ActivityTaskCanceled",
            {"scheduledEventId": str(scheduled), "latestCancelRequestedEventId": str(info["cancelRequested"]), "identity": identity_of(owner)},
        )
    else:
        _attempt_failed(tx, run, task_id, scheduled, attempt, info, started_at, failure, now, owner, "failed")
    save_run(tx, run)
    return True


NO_TIME_TO_RETRY = "Not enough time to schedule next retry before activity ScheduleToClose timeout, giving up retrying"


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
        if outcome == "timed out":  # as Temporal: a timed-out attempt that cannot be retried ends the schedule-to-close way
            failure = {"message": NO_TIME_TO_RETRY, "source": "Server", "timeoutFailureInfo": {"timeoutType": "TIMEOUT_TYPE_SCHEDULE_TO_CLOSE"}}
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
    _deliver_attempt_end(tx, run, now, scheduled, owner, attempt, info, started_at, final, closing)


def _record_attempt(
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
    expires = _lease_expiry(info, started_at, ts(now))
    due = min(x for x in (expires, info.get("deadline")) if x)
    tx.conn.execute(
        "UPDATE tasks SET lease_expires = ?, due_at = ?, info = ? WHERE id = ?", (expires, due, dumps(info), task_id)
    )
    tx.notify("timers", "")
    return bool(info.get("cancelRequested"))


