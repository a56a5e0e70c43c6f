"""Fault injection: make activities fail, hang or slow down, and workers crash, on purpose.

Faults live in the engine's database, so every worker of every process sharing the file
obeys them, and each firing is logged (``fault_log``) so that viewers can tell injected
failures from organic ones. ::

    await faults.fail_activity(client, deposit, times=2)              # next 2 attempts raise
    await faults.hang_activity(client, deposit)                        # runs past its timeout
    await faults.slow_activity(client, deposit, delay=3)               # 3 s late
    await faults.crash_worker(client, after="ActivityTaskCompleted", activity="withdraw")
    await faults.list_faults(client); await faults.clear_faults(client)

``crash_worker`` makes the worker that writes the chosen event die at once, as a process
would: its cache and in-flight work are lost, and nothing is reported. With
``when="before_commit"`` it dies just before its report reaches the database (the work was
done but is lost), with ``"after_commit"`` (the default) just after (the work is recorded
but the worker never hears so). ``explore`` runs a workflow once per crash point.
"""

from __future__ import annotations

import difflib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Mapping

from engine._runtime.instance import COMMAND_EVENTS
from engine._persistence.store import Tx, dumps

if TYPE_CHECKING:
    from engine.client import Client

__all__ = [
    "Fault",
    "FaultFired",
    "ChangePoint",
    "fail_activity",
    "hang_activity",
    "slow_activity",
    "crash_worker",
    "CRASH_EVENTS",
    "list_faults",
    "clear_faults",
    "fault_log",
    "kill_process",
    "record_kill",
    "is_injected",
    "explore",
    "Exploration",
    "CrashPointResult",
    "RunOutcome",
]

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
class FaultFired:
    """One firing of a fault, from the log. ``scheduled_event_id`` and ``attempt`` name the
    activity attempt it hit (activity faults, and crashes at an activity's outcome)."""

    fault_id: int | None
    kind: str
    target: str
    run_id: str | None
    workflow_id: str | None
    detail: str
    identity: str
    fired_at: datetime
    scheduled_event_id: int | None = None
    attempt: int | None = None


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


# ------------------------------------------------------------------------- public API
def _name(activity: Any) -> str:
    if isinstance(activity, str):
        return activity
    from engine._runtime.definitions import activity_definition

    return activity_definition(activity).name


async def _add(client: Client, kind: str, target: str, times: int, params: dict[str, Any]) -> Fault:
    if times < 1:
        raise ValueError(f"times must be at least 1 (got {times}).")
    fault_id = await client.store.run(_insert, kind, target, times, params, time.time())
    client._faults_epoch += 1
    return Fault(fault_id, kind, target, times, params)


async def fail_activity(
    client: Client,
    activity: Any,
    *,
    times: int = 1,
    error_type: str = INJECTED_TYPE,
    non_retryable: bool = False,
    message: str | None = None,
) -> Fault:
    """Make the next ``times`` attempts of ``activity`` raise ``ApplicationError(type=error_type)``
    instead of running (retried by the activity's policy unless ``non_retryable``)."""
    name = _name(activity)
    return await _add(
        client, "fail", name, times, {"error_type": error_type, "non_retryable": non_retryable, "message": message or f"injected fault: {name} failed on purpose"}
    )


async def hang_activity(client: Client, activity: Any, *, times: int = 1) -> Fault:
    """Make the next ``times`` attempts of ``activity`` never return: the engine's
    start-to-close (or heartbeat) timeout ends each one, and the retry policy decides."""
    return await _add(client, "hang", _name(activity), times, {})


async def slow_activity(client: Client, activity: Any, delay: float | timedelta, *, times: int = 1) -> Fault:
    """Delay the next ``times`` attempts of ``activity`` by ``delay`` before they run."""
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if seconds < 0:
        raise ValueError(f"delay must not be negative (got {seconds}).")
    return await _add(client, "slow", _name(activity), times, {"delay": seconds})


async def crash_worker(
    client: Client, *, after: str, activity: Any = None, when: str = "after_commit", times: int = 1
) -> Fault:
    """Crash the worker that writes event type ``after`` (optionally only for ``activity``,
    an activity's or child workflow's type), ``when`` before or after that write commits."""
    if when not in CRASH_PHASES:
        raise ValueError(f"when must be one of {', '.join(CRASH_PHASES)} (got {when!r}).")
    if after not in CRASH_EVENTS:
        close = difflib.get_close_matches(after, CRASH_EVENTS, n=1)
        hint = f"Did you mean {close[0]}? " if close else ""
        raise ValueError(
            f"A crash cannot follow {after!r}: a worker crashes when it writes an event, and workers write only "
            f"{', '.join(CRASH_EVENTS)}. {hint}".rstrip()
        )
    name = _name(activity) if activity is not None else ""
    return await _add(client, "crash_worker", name, times, {"after": after, "activity": name, "when": when})


async def list_faults(client: Client) -> list[Fault]:
    """The faults that will still fire."""
    return await client.store.read(_active)


async def clear_faults(client: Client, fault_id: int | None = None) -> int:
    """Remove one fault (by id) or all; returns how many were removed."""
    removed = await client.store.run(_delete, fault_id)
    client._faults_epoch += 1
    return removed


async def fault_log(client: Client, *, run_id: str | None = None) -> list[FaultFired]:
    """Every firing of an injected fault (of one run, if ``run_id``), oldest first."""
    return await client.store.read(_log, run_id)


def kill_process(pid: int) -> None:
    """SIGKILL a worker process: no cleanup runs, exactly as a machine losing power."""
    os.kill(pid, signal.SIGKILL)


async def explore(*args: Any, **kwargs: Any) -> Any:
    """Run a workflow once for every crash point and check that it recovers.

    ``explore(Workflow.run, arg, activities=[...], setup=..., check=..., signals=...)``
    returns an ``Exploration`` (``.ok``, ``.violations``, ``.table()``); see ``engine._testing.explore``."""
    from engine._testing import explore as _explore

    return await _explore.explore(*args, **kwargs)


def __getattr__(name: str) -> Any:
    # The result types live with the explorer, which imports this module.
    if name in ("Exploration", "CrashPointResult", "RunOutcome"):
        from engine._testing import explore as _explore

        return getattr(_explore, name)
    raise AttributeError(f"module 'engine.faults' has no attribute {name!r}")


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


def _log(conn: Any, run_id: str | None) -> list[FaultFired]:
    query = (
        "SELECT fault_id, kind, target, run_id, workflow_id, detail, identity, fired_at, scheduled_event_id, attempt FROM fault_log"
    )
    rows = conn.execute(query + (" WHERE run_id = ? ORDER BY id" if run_id else " ORDER BY id"), (run_id,) if run_id else ()).fetchall()
    return [
        FaultFired(fid, kind, target, run, wid, detail, ident, datetime.fromtimestamp(at, timezone.utc), sched, attempt)
        for fid, kind, target, run, wid, detail, ident, at, sched, attempt in rows
    ]


async def record_kill(client: Client, owner_prefix: str, who: str) -> int:
    """Log that a worker was killed on purpose (SIGKILL, ``%worker kill``): one entry per
    task it held, so viewers mark the steps it left behind. ``owner_prefix`` matches the
    killed worker's lease owner (``"<pid>@<host>#"`` for a process). Returns the entries."""
    return await client.store.run(_log_kill, owner_prefix, who, time.time())


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


CrashHook = Callable[[ChangePoint, str], bool]
