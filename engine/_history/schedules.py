"""Schedules in the store (issue 11, item 7): the state changes of ``client.create_schedule``
and its handle, and the firing of a schedule when the engine's clock reaches its next time.

A schedule's next time is a row of ``timers`` (run_id ``schedule:<id>``), so ``fire_due``
fires it like any timer and time skipping jumps to it. Firing starts the workflow in the
same transaction that counts the action and arms the next time: a crash never loses or
repeats an action. The started run's id is the action's id plus the scheduled time
(``my-wf-2026-12-07T12:00:00Z``), as Temporal names them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from engine._conversion.search_attributes import encode_value
from engine._history.closing import terminate
from engine._history.schedule_specs import jitter_delay, next_time
from engine._history.starts import StartRequest, start_workflow
from engine._persistence.event_rows import type_value, unpack
from engine._persistence.transactions import Tx, dumps
from engine.common import SearchAttributeKey
from engine.errors import WorkflowAlreadyStartedError, EngineError


UNSET = object()


_KEY = "schedule:"


_RECENT = 10


SKIP, BUFFER_ONE, BUFFER_ALL, CANCEL_OTHER, TERMINATE_OTHER, ALLOW_ALL = 1, 2, 3, 4, 5, 6


class ScheduleAlreadyRunningError(EngineError):
    """``create_schedule`` with the id of a schedule that exists."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"Schedule {schedule_id!r} already exists: pick another id, or change it with get_schedule_handle({schedule_id!r}).update(...).")
        self.schedule_id = schedule_id


class ScheduleNotFoundError(EngineError, LookupError):
    """No schedule has this id."""


@dataclass
class ScheduleRow:
    schedule_id: str
    spec: dict[str, Any]
    action: dict[str, Any]
    policy: dict[str, Any]
    state: dict[str, Any]
    info: dict[str, Any]
    created: float
    running: list[tuple[str, str]] = field(default_factory=list)


def _to_utc(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


def next_times(spec: dict[str, Any], state: dict[str, Any], after: float, count: int) -> list[float]:
    if state.get("paused"):
        return []
    times: list[float] = []
    while len(times) < count:
        nxt = next_time(spec, after)
        if nxt is None:
            break
        times.append(nxt)
        after = nxt
    return times


def _load(tx_or_conn: Any, schedule_id: str) -> ScheduleRow:
    conn = tx_or_conn.conn if isinstance(tx_or_conn, Tx) else tx_or_conn
    row = conn.execute(
        "SELECT schedule_id, spec, action, policy, state, info, created FROM schedules WHERE schedule_id = ?", (schedule_id,)
    ).fetchone()
    if row is None:
        raise ScheduleNotFoundError(f"No schedule {schedule_id!r}: check the id, or list them with client.list_schedules().")
    return _row(conn, row)


def _row(conn: Any, row: Any) -> ScheduleRow:
    spec, action, policy, state, info = (json.loads(x) for x in row[1:6])
    schedule = ScheduleRow(row[0], spec, action, policy, state, info, row[6])
    running = schedule.info.get("running", [])
    if running:
        marks = ",".join("?" * len(running))
        open_runs = {r[0] for r in conn.execute(f"SELECT run_id FROM executions WHERE status = 'Running' AND run_id IN ({marks})", [r for _, r in running])}
        schedule.running = [(w, r) for w, r in running if r in open_runs]
    return schedule


def _save(tx: Tx, row: ScheduleRow) -> None:
    row.info["running"] = [list(x) for x in row.running]
    tx.conn.execute(
        "UPDATE schedules SET spec = ?, action = ?, policy = ?, state = ?, info = ? WHERE schedule_id = ?",
        (dumps(row.spec), dumps(row.action), dumps(row.policy), dumps(row.state), dumps(row.info), row.schedule_id),
    )


def _arm(tx: Tx, row: ScheduleRow, after: float) -> None:
    """Set (or clear) the timer of the schedule's next action."""
    key = _KEY + row.schedule_id
    tx.conn.execute("DELETE FROM timers WHERE run_id = ? AND timer_key = 'schedule'", (key,))
    state = row.state
    if state.get("paused") or (state.get("limited_actions") and state.get("remaining_actions", 0) <= 0):
        return
    nxt = next_time(row.spec, after)
    if nxt is None:
        return
    # The timer fires after the jitter; "at" keeps the nominal time the run is named after.
    fire_at = nxt + jitter_delay(row.schedule_id, nxt, row.spec.get("jitter"))
    tx.conn.execute(
        "INSERT INTO timers (run_id, timer_key, kind, fire_at, info) VALUES (?, 'schedule', 'schedule', ?, ?)",
        (key, fire_at, dumps({"at": nxt})),
    )
    tx.notify("timers", "")


def _take_action(tx: Tx, row: ScheduleRow, scheduled_at: float, now: datetime, overlap: int | None = None) -> None:

    policy = overlap or row.policy.get("overlap", SKIP)
    info = row.info
    if policy == SKIP and row.running:
        info["skipped"] = info.get("skipped", 0) + 1
        return
    if policy == TERMINATE_OTHER:
        # As Temporal's scheduler: the runs still open are terminated, and the new one starts at once.
        for _, open_run in row.running:
            terminate(tx, open_run, "terminated by its schedule's overlap policy TERMINATE_OTHER", None, "temporal-scheduler", now)
        row.running = []
    action = row.action
    stamp = _to_utc(scheduled_at).strftime("%Y-%m-%dT%H:%M:%SZ")
    workflow_id = f"{action['id']}-{stamp}"
    namespace = "default"

    def seconds(value: float | None) -> timedelta | None:
        return timedelta(seconds=value) if value is not None else None

    try:
        run_id = start_workflow(
            tx,
            StartRequest(
                workflow_id=workflow_id,
                workflow_type=action["workflow"],
                task_queue=action["task_queue"],
                input=action["args"],
                # As Temporal's scheduler starts it: its identity, the two search attributes
                # that say which schedule started the run and for when, and the result of the
                # schedule's last completed run (workflow code reads it as a cron run's).
                identity=f"temporal-scheduler-{namespace}-{row.schedule_id}",
                execution_timeout=seconds(action.get("execution_timeout")),
                run_timeout=seconds(action.get("run_timeout")),
                task_timeout=seconds(action.get("task_timeout")),
                memo=action.get("memo"),
                search_attributes=scheduled_by(row.schedule_id, stamp),
                last_completion_result=_last_completion_result(tx, row),
            ),
            now,
        )
    except WorkflowAlreadyStartedError:
        info["skipped"] = info.get("skipped", 0) + 1
        return
    info["num_actions"] = info.get("num_actions", 0) + 1
    recent = info.setdefault("recent", [])
    recent.append({"scheduled_at": scheduled_at, "started_at": now.timestamp(), "workflow_id": workflow_id, "run_id": run_id})
    del recent[:-_RECENT]
    row.running.append((workflow_id, run_id))
    if row.state.get("limited_actions"):
        row.state["remaining_actions"] = max(0, row.state.get("remaining_actions", 0) - 1)


def scheduled_by(schedule_id: str, stamp: str) -> dict[str, Any]:
    """The ``indexedFields`` Temporal's scheduler gives a run it starts: ``TemporalScheduledById``
    (Keyword) and ``TemporalScheduledStartTime`` (Datetime, the nominal time to the second)."""
    by = encode_value(SearchAttributeKey.for_keyword("TemporalScheduledById"), schedule_id)
    when = encode_value(SearchAttributeKey.for_datetime("TemporalScheduledStartTime"), datetime.fromisoformat(stamp.replace("Z", "+00:00")))
    when["data"] = base64.b64encode(json.dumps(stamp).encode()).decode("ascii")  # RFC 3339 with "Z", as Temporal writes it
    return {"TemporalScheduledById": by, "TemporalScheduledStartTime": when}


def _last_completion_result(tx: Tx, row: ScheduleRow) -> dict[str, Any] | None:
    """The result of the schedule's most recent run that completed, if any."""
    for recent in reversed(row.info.get("recent", [])):
        found = tx.conn.execute(
            "SELECT e.event_type, e.attributes FROM executions x JOIN events e ON e.run = x.id "
            "WHERE x.run_id = ? AND x.status = 'Completed' AND e.event_type = ?",
            (recent["run_id"], type_value("WorkflowExecutionCompleted")),
        ).fetchone()
        if found is not None:
            result = unpack(found[0], found[1]).get("result")
            return dict(result) if result else None
    return None


def create(tx: Tx, schedule_id: str, encoded: dict[str, Any], trigger_immediately: bool, now: datetime) -> None:
    exists = tx.conn.execute("SELECT 1 FROM schedules WHERE schedule_id = ?", (schedule_id,)).fetchone()
    if exists:
        raise ScheduleAlreadyRunningError(schedule_id)
    info: dict[str, Any] = {"num_actions": 0, "skipped": 0, "recent": [], "running": []}
    tx.conn.execute(
        "INSERT INTO schedules (schedule_id, spec, action, state, policy, info, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (schedule_id, dumps(encoded["spec"]), dumps(encoded["action"]), dumps(encoded["state"]), dumps(encoded["policy"]), dumps(info), now.timestamp()),
    )
    row = _load(tx, schedule_id)
    if trigger_immediately:
        _take_action(tx, row, now.timestamp(), now)
        _save(tx, row)
    _arm(tx, row, now.timestamp())


def fire(tx: Tx, key: str, timer_info: dict[str, Any], now: datetime) -> None:
    """The schedule's time came (called by ``fire_due``, which removed the timer)."""
    try:
        row = _load(tx, key[len(_KEY):])
    except ScheduleNotFoundError:
        return  # deleted meanwhile
    scheduled_at = float(timer_info["at"])
    _take_action(tx, row, scheduled_at, now)
    _save(tx, row)
    _arm(tx, row, scheduled_at)


def backfill(tx: Tx, schedule_id: str, ranges: list[tuple[float, float, int | None]], now: datetime) -> None:
    """Take the actions of the schedule's times from ``start`` to ``end`` (both included), as
    if they had come (also when paused), each range with its overlap policy."""
    row = _load(tx, schedule_id)
    for start, end, overlap in ranges:
        moment = next_time(row.spec, start - 1e-6)
        while moment is not None and moment <= end:
            _take_action(tx, row, moment, now, overlap)
            moment = next_time(row.spec, moment)
    row.info["updated"] = now.timestamp()
    _save(tx, row)


def set_paused(tx: Tx, schedule_id: str, paused: bool, note: str, now: datetime) -> None:
    row = _load(tx, schedule_id)
    row.state["paused"] = paused
    row.state["note"] = note
    row.info["updated"] = now.timestamp()
    _save(tx, row)
    _arm(tx, row, now.timestamp())


def trigger(tx: Tx, schedule_id: str, overlap: int | None, now: datetime) -> None:
    row = _load(tx, schedule_id)
    _take_action(tx, row, now.timestamp(), now, overlap)
    _save(tx, row)


def replace(tx: Tx, schedule_id: str, encoded: dict[str, Any], now: datetime) -> None:
    row = _load(tx, schedule_id)
    row.spec, row.action, row.policy, row.state = encoded["spec"], encoded["action"], encoded["policy"], encoded["state"]
    row.info["updated"] = now.timestamp()
    _save(tx, row)
    _arm(tx, row, now.timestamp())


def delete(tx: Tx, schedule_id: str) -> None:
    _load(tx, schedule_id)
    tx.conn.execute("DELETE FROM schedules WHERE schedule_id = ?", (schedule_id,))
    tx.conn.execute("DELETE FROM timers WHERE run_id = ? AND timer_key = 'schedule'", (_KEY + schedule_id,))


def read_one(conn: Any, schedule_id: str) -> ScheduleRow:
    return _load(conn, schedule_id)


def read_all(conn: Any) -> list[ScheduleRow]:
    rows = conn.execute("SELECT schedule_id, spec, action, policy, state, info, created FROM schedules ORDER BY schedule_id").fetchall()
    return [_row(conn, row) for row in rows]


def is_schedule_timer(run_id: str) -> bool:
    return run_id.startswith(_KEY)
