"""The SQL side of a run's snapshot (:mod:`engine._frontend.snapshots`): everything about a
run, read in one transaction.

``read_run`` runs on the store's reader connection (``Store.read``). It opens a read
transaction (``BEGIN``; WAL gives it a snapshot that writers do not disturb), so the events,
the activity attempts, the chain, the children and the fault log all describe the same
moment: a view never shows an attempt whose activity's events are not there yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from engine._persistence.event_rows import RUN_KEY, read_attributes, read_rows
from engine._persistence.fault_log import FaultFired, read_fault_log
from engine.errors import WorkflowNotFoundError
from engine.history import History, HistoryEvent

CHAIN_LIMIT = 200  # runs of a continue-as-new chain read around the run (each way)
CHILD_DEPTH = 3  # levels of child runs whose histories are read (for graphs drawn nested)
CHILD_HISTORIES = 50  # at most this many child histories (a fan-out of thousands stays cheap)


@dataclass(frozen=True)
class RawRun:
    """A run's rows as stored (payloads still encoded by the codec, if any)."""

    execution: tuple[Any, ...]  # workflow_id, run_id, type, task queue, status, start, close, next event id
    history: History
    attempts: list[tuple[Any, ...]]
    chain: list[tuple[Any, ...]]  # execution rows, first run to last
    children: list[tuple[Any, ...]]  # (initiated event id, workflow id, run id, type, status)
    child_histories: dict[str, History]
    faults: list[FaultFired]


_EXECUTION = (
    "SELECT workflow_id, run_id, workflow_type, task_queue, status, start_time, close_time, next_event_id "
    "FROM executions"
)


def _utc(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


def _events(conn: Any, run_id: str) -> list[HistoryEvent]:
    return [HistoryEvent(*row) for row in read_rows(conn, run_id)]


def _execution(conn: Any, run_id: str) -> tuple[Any, ...] | None:
    row = conn.execute(_EXECUTION + " WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else tuple(row)


def _start_link(conn: Any, run_id: str) -> str:
    """The run before ``run_id`` in its chain (the start event's ``continuedExecutionRunId``)."""
    event = read_attributes(conn, run_id, 1)
    link = event[1].get("continuedExecutionRunId") if event else None
    return link if isinstance(link, str) else ""


def _next_link(conn: Any, run_id: str, next_event_id: int) -> str:
    """The run after ``run_id`` in its chain (its ContinuedAsNew event's ``newExecutionRunId``)."""
    event = read_attributes(conn, run_id, next_event_id - 1)
    if event is None or event[0] != "WorkflowExecutionContinuedAsNew":
        return ""
    link = event[1].get("newExecutionRunId")
    return link if isinstance(link, str) else ""


def _chain(conn: Any, execution: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    runs = [execution]
    previous = _start_link(conn, execution[1])
    while previous and len(runs) < CHAIN_LIMIT:
        row = _execution(conn, previous)
        if row is None:
            break
        runs.insert(0, row)
        previous = _start_link(conn, previous)
    following = _next_link(conn, execution[1], execution[7])
    while following and len(runs) < 2 * CHAIN_LIMIT:
        row = _execution(conn, following)
        if row is None:
            break
        runs.append(row)
        following = _next_link(conn, following, row[7])
    return runs


def _int(value: Any) -> int | None:
    """An event id as Temporal's JSON writes it (int64 as a string) or as a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _children(conn: Any, history: History) -> list[tuple[Any, ...]]:
    """Every child the run initiated: from its history (a child that never started has no
    run), with the child run's status where this database has it."""
    found: dict[int, list[Any]] = {}
    for event in history.events:
        a = event.attributes
        if event.event_type == "StartChildWorkflowExecutionInitiated":
            wtype = (a.get("workflowType") or {}).get("name", "")
            found[event.event_id] = [event.event_id, a.get("workflowId", ""), "", wtype, None]
        elif event.event_type == "ChildWorkflowExecutionStarted":
            child = found.get(_int(a.get("initiatedEventId")) or 0)
            if child is not None:
                child[2] = (a.get("workflowExecution") or {}).get("runId", "") or ""
    for child in found.values():
        if child[2]:
            row = conn.execute("SELECT status FROM executions WHERE run_id = ?", (child[2],)).fetchone()
            child[4] = row[0] if row else None
    return [tuple(child) for child in found.values()]


def _child_histories(conn: Any, children: list[tuple[Any, ...]], depth: int, out: dict[str, History]) -> None:
    for _, workflow_id, run_id, _, status in children:
        if depth >= CHILD_DEPTH or len(out) >= CHILD_HISTORIES:
            return
        if not run_id or status is None or workflow_id in out:
            continue
        child = History(workflow_id, tuple(_events(conn, run_id)))
        out[workflow_id] = child
        _child_histories(conn, _children(conn, child), depth + 1, out)


def _resolve(conn: Any, workflow_id: str, run_id: str | None) -> tuple[Any, ...]:
    if run_id:
        row = _execution(conn, run_id)
        if row is None or row[0] != workflow_id:
            raise WorkflowNotFoundError(
                f"Workflow {workflow_id!r} has no run {run_id!r}. Check the run id, or omit it for the latest run."
            )
        return row
    row = conn.execute(
        _EXECUTION + " WHERE workflow_id = ? ORDER BY start_time DESC, rowid DESC LIMIT 1", (workflow_id,)
    ).fetchone()
    if row is None:
        raise WorkflowNotFoundError(
            f"No workflow with id {workflow_id!r}. Check the id (they are case-sensitive) or list runs with "
            "client.list_workflows()."
        )
    return tuple(row)


def read_run(conn: Any, workflow_id: str, run_id: str | None) -> RawRun:
    """Everything about one run (the latest of ``workflow_id`` without ``run_id``)."""
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")
    try:
        execution = _resolve(conn, workflow_id, run_id)
        run = execution[1]
        history = History(workflow_id, tuple(_events(conn, run)))
        attempts = [
            (s, a, _utc(st), _utc(en), o, orjson.loads(f) if f else None, i)
            for s, a, st, en, o, f, i in conn.execute(
                "SELECT scheduled_event_id, attempt, started_at, ended_at, outcome, failure, identity "
                "FROM activity_attempts WHERE run = " + RUN_KEY + " ORDER BY scheduled_event_id, attempt",
                (run,),
            )
        ]
        children = _children(conn, history)
        child_histories: dict[str, History] = {}
        _child_histories(conn, children, 0, child_histories)
        faults = read_fault_log(conn, run)
        return RawRun(execution, history, attempts, _chain(conn, execution), children, child_histories, faults)
    finally:
        if began:
            conn.execute("COMMIT")
