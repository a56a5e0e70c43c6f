"""Timers and the timer queue: user timers, and everything due at a time (workflow and
activity task timeouts, execution timeouts, a cron run's first task, schedules).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Sequence

from engine._api.durations import from_duration
from engine._history import schedules
from engine._history.activities import activity_timeout
from engine._history.closing import close_run
from engine._history.mutable_state import Run, append, load_run, save_run, ts
from engine._history.workflow_tasks import deliver, ensure_workflow_task, retry_workflow_task
from engine._persistence.transactions import Tx, dumps


def cmd_start_timer(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    started = append(tx, run, now, "TimerStarted", {**attrs, "workflowTaskCompletedEventId": str(completed)})
    fire = now + (from_duration(attrs.get("startToFireTimeout")) or timedelta(0))
    tx.conn.execute(
        "INSERT INTO timers (run_id, timer_key, kind, fire_at, info) VALUES (?, ?, 'timer', ?, ?)",
        (run.run_id, "timer:" + attrs["timerId"], ts(fire), dumps({"timerId": attrs["timerId"], "startedEventId": started})),
    )
    tx.note_due(ts(fire))
    return False


def cmd_cancel_timer(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
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


# ---------------------------------------------------------------------------- timers and timeouts
def fire_due(tx: Tx, now: datetime, limit: int = 500) -> int:
    t = ts(now)
    fired = 0
    for run_id, key, kind, info_text in tx.conn.execute(
        "SELECT run_id, timer_key, kind, info FROM timers WHERE fire_at <= ? ORDER BY fire_at LIMIT ?", (t, limit)
    ).fetchall():
        tx.conn.execute("DELETE FROM timers WHERE run_id = ? AND timer_key = ?", (run_id, key))
        if kind == "schedule":
            schedules.fire(tx, run_id, json.loads(info_text), now)
            fired += 1
            continue
        run = load_run(tx, run_id)
        if not run.open:
            continue
        info = json.loads(info_text)
        if kind == "timer":
            deliver(tx, run, now, [("TimerFired", {"timerId": info["timerId"], "startedEventId": str(info["startedEventId"])})])
        elif kind == "first_task_backoff":
            ensure_workflow_task(tx, run, now)
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
        tx.cache.tasks.pop(task_id, None)
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
                retry_workflow_task(tx, run, now, backoff=False)
            else:
                tx.conn.execute("UPDATE tasks SET due_at = NULL WHERE id = ?", (task_id,))
        else:
            activity_timeout(tx, run, task_id, scheduled, attempt, lease_owner, lease_expires, started_at, json.loads(info_text), now)
        save_run(tx, run)
        fired += 1
    return fired


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


def next_due(conn: Any) -> float | None:
    """When the next timer fires or the next task times out: all that the clock work needs
    to know in real time (idle_state's other answers serve time skipping). Two index look-ups."""
    return conn.execute(
        "SELECT min(x) FROM (SELECT min(fire_at) AS x FROM timers UNION ALL SELECT min(due_at) FROM tasks WHERE due_at IS NOT NULL)"
    ).fetchone()[0]
