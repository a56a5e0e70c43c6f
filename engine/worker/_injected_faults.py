"""Injected faults as the database keeps them (tables ``faults`` and ``fault_log``): what a
fault is, which ones are still active, when one fires, and the log of firings. Workers
read them (engine/worker/_faults.py); ``engine.faults`` writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from engine._persistence.fault_log import FaultFired, read_fault_log as _log  # noqa: F401 (engine.faults's names)
from engine._persistence.transactions import Tx, dumps
from engine._runtime.commands import COMMAND_EVENTS


ACTIVITY_KINDS = ("fail", "hang", "slow")


CRASH_PHASES = ("before_commit", "after_commit")


# The event types a worker writes itself, so the only ones a crash can follow: a workflow
# task's completion with the events of its commands, an activity's start and its outcome.
# (Starts, signals and timeouts are written by clients and the engine's timers.)
CRASH_EVENTS: tuple[str, ...] = (
    "WorkflowTaskCompleted",
    *COMMAND_EVENTS,
    "ActivityTaskStarted",
    "ActivityTaskCompleted",
    "ActivityTaskFailed",
    "ActivityTaskCanceled",
)


INJECTED_TYPE = "InjectedFault"


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``kind`` is fail, hang, slow or crash_worker; ``remaining`` how
    many more times it fires."""

    id: int
    kind: str
    target: str
    remaining: int
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        p = self.params
        if self.kind == "fail":
            how = f"fail with {p.get('error_type', INJECTED_TYPE)}" + (" (non-retryable)" if p.get("non_retryable") else "")
        elif self.kind == "hang":
            how = "hang past its start-to-close timeout"
        elif self.kind == "slow":
            how = f"run {p.get('delay', 0):g} s late"
        else:
            on = f"{p.get('after')}" + (f"({p['activity']})" if p.get("activity") else "")
            return f"crash the worker {p.get('when', 'after_commit').replace('_', ' ')} of {on}, {self.remaining} more time(s)"
        return f"activity {self.target!r}: {how}, {self.remaining} more attempt(s)"


@dataclass(frozen=True)
class ChangePoint:
    """A state change a worker is about to submit (or has just committed): what it is and the
    history events it writes, as ``(event type, activity or workflow type or "")`` pairs."""

    label: str
    run_id: str
    workflow_id: str
    events: tuple[tuple[str, str], ...]
    # For activity points: "run id:scheduled event id", one per scheduled activity.
    activity_key: str = ""
    scheduled_event_id: int | None = None
    attempt: int | None = None

    def describe(self) -> str:
        return " + ".join(f"{t}({n})" if n else t for t, n in self.events) or self.label


# ------------------------------------------------------------------------- store side
def _insert(tx: Tx, kind: str, target: str, times: int, params: dict[str, Any], now: float) -> int:
    cursor = tx.conn.execute(
        "INSERT INTO faults (kind, target, remaining, params, created) VALUES (?, ?, ?, ?, ?)", (kind, target, times, dumps(params), now)
    )
    tx.notify("faults", "")
    return int(cursor.lastrowid or 0)


def _active(conn: Any) -> list[Fault]:
    return [
        Fault(i, k, t, r, json.loads(p))
        for i, k, t, r, p in conn.execute("SELECT id, kind, target, remaining, params FROM faults WHERE remaining > 0 ORDER BY id")
    ]


def _delete(tx: Tx, fault_id: int | None) -> int:
    if fault_id is None:
        cursor = tx.conn.execute("DELETE FROM faults")
    else:
        cursor = tx.conn.execute("DELETE FROM faults WHERE id = ?", (fault_id,))
    return int(cursor.rowcount)


def consume(
    tx: Tx,
    fault_id: int,
    run_id: str,
    workflow_id: str,
    detail: str,
    identity: str,
    now: float,
    scheduled_event_id: int | None = None,
    attempt: int | None = None,
) -> Fault | None:
    """Fire a fault once if it still may (one worker wins when several race); log it."""
    row = tx.conn.execute("SELECT kind, target, remaining, params FROM faults WHERE id = ? AND remaining > 0", (fault_id,)).fetchone()
    if row is None:
        return None
    kind, target, remaining, params = row
    tx.conn.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (fault_id,))
    tx.conn.execute(
        "INSERT INTO fault_log (fault_id, kind, target, run_id, workflow_id, detail, identity, fired_at, scheduled_event_id, attempt) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (fault_id, kind, target, run_id, workflow_id, detail, identity, now, scheduled_event_id, attempt),
    )
    return Fault(fault_id, kind, target, remaining - 1, json.loads(params))


def _log_kill(tx: Tx, owner_prefix: str, who: str, now: float) -> int:
    rows = tx.conn.execute(
        "SELECT t.kind, t.run_id, t.scheduled_event_id, t.attempt, t.info, e.workflow_id, t.lease_owner "
        "FROM tasks t JOIN executions e ON e.run_id = t.run_id WHERE substr(t.lease_owner, 1, ?) = ?",
        (len(owner_prefix), owner_prefix),
    ).fetchall()
    for kind, run_id, scheduled, attempt, info, workflow_id, owner in rows:
        if kind == "activity":
            name = str(json.loads(info or "{}").get("activityType", "?"))
            detail, target, step = f"{who} killed while running attempt {attempt} of {name}", name, scheduled
        else:
            detail, target, step = f"{who} killed while running a workflow task", "", None
        tx.conn.execute(
            "INSERT INTO fault_log (fault_id, kind, target, run_id, workflow_id, detail, identity, fired_at, scheduled_event_id, attempt) "
            "VALUES (NULL, 'kill', ?, ?, ?, ?, ?, ?, ?, ?)",
            (target, run_id, workflow_id, detail, owner, now, step, attempt if kind == "activity" else None),
        )
    return len(rows)


def is_injected(failure: Mapping[str, Any] | None) -> bool:
    """True for the failure JSON of an attempt that an injected fault failed (viewers mark
    those apart from organic failures): its type or a detail says so, in it or a cause."""
    from engine._conversion.payload_converter import PayloadConverter, from_json_payload
    from engine.errors import PayloadError

    while failure:
        info = failure.get("applicationFailureInfo") or {}
        if info.get("type") == INJECTED_TYPE:
            return True
        for payload in (info.get("details") or {}).get("payloads") or []:
            try:
                value = from_json_payload(PayloadConverter.default, payload)
            except PayloadError:  # written by a codec: not the engine's marker
                continue
            if isinstance(value, dict) and "injected_fault" in value:
                return True
        failure = failure.get("cause")
    return False


def crash_matches(fault: Fault, point: ChangePoint, phase: str) -> bool:
    p = fault.params
    if fault.kind != "crash_worker" or p.get("when", "after_commit") != phase:
        return False
    return any(t == p.get("after") and (not p.get("activity") or n == p["activity"]) for t, n in point.events)


# Called by the explorer at every change point a worker reaches: True crashes the worker there.
CrashHook = Callable[[ChangePoint, str], bool]
