"""The history service's side of start options (issue 11, item 7): workflow id reuse and
conflict policies, and cron schedules.

A cron run chains as Temporal's do (checked against a dev server's history,
tests/histories/cron_*.json): every run of the chain starts with ``cronSchedule``, initiator
``CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE`` and a ``firstWorkflowTaskBackoff`` up to the next
schedule time; its first ``WorkflowTaskScheduled`` is written when that backoff ends. When a
run completes or fails, its closing event names the next run (``newExecutionRunId``), which
starts at once with the same input, ``continuedExecutionRunId`` and the last completion
result; terminate and cancel end the chain. The engine's clock drives the backoff (a timer),
so time skipping skips it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine._history.cron import cron_backoff, parse_cron
from engine.errors import WorkflowAlreadyStartedError

if TYPE_CHECKING:
    from engine._history.service import Run, StartRequest, Tx

OPEN = "Running"
# temporalio's enum values (engine.common.WorkflowIDReusePolicy / WorkflowIDConflictPolicy).
ALLOW_DUPLICATE, ALLOW_DUPLICATE_FAILED_ONLY, REJECT_DUPLICATE, TERMINATE_IF_RUNNING = 1, 2, 3, 4
CONFLICT_FAIL, USE_EXISTING, TERMINATE_EXISTING = 1, 2, 3
_SUCCEEDED = ("Completed", "ContinuedAsNew")


def existing_run(tx: Tx, req: StartRequest, now: datetime) -> str | None:
    """Apply the request's policies to runs of its workflow id: the open run's id when the
    start should use it (USE_EXISTING), None to start a new run; raise
    ``WorkflowAlreadyStartedError`` when the policies refuse the start."""
    from engine._history import service as _service

    row = tx.conn.execute(
        "SELECT run_id FROM executions WHERE workflow_id = ? AND +status = ?", (req.workflow_id, OPEN)
    ).fetchone()
    conflict = req.id_conflict_policy or CONFLICT_FAIL
    if row is not None:
        if conflict == USE_EXISTING and req.id_reuse_policy != TERMINATE_IF_RUNNING:
            return str(row[0])
        if conflict == TERMINATE_EXISTING or req.id_reuse_policy == TERMINATE_IF_RUNNING:
            reason = "terminated by a start with id conflict policy TERMINATE_EXISTING"
            _service.terminate(tx, row[0], reason, None, req.identity, now)
        else:
            raise WorkflowAlreadyStartedError(req.workflow_id, req.workflow_type, run_id=row[0])
    if req.id_reuse_policy in (ALLOW_DUPLICATE_FAILED_ONLY, REJECT_DUPLICATE):
        last = tx.conn.execute(
            "SELECT run_id, status FROM executions WHERE workflow_id = ? AND +status != ? "
            "ORDER BY start_time DESC, rowid DESC LIMIT 1",
            (req.workflow_id, OPEN),
        ).fetchone()
        if last is not None and (req.id_reuse_policy == REJECT_DUPLICATE or last[1] in _SUCCEEDED):
            raise WorkflowAlreadyStartedError(req.workflow_id, req.workflow_type, run_id=last[0])
    return None


def add_update(tx: Tx, run: Run, update: tuple[str, str, dict[str, Any]], identity: str) -> None:
    """Update-with-start: the new run's update request, written before its first workflow
    task is handed out so that task carries it (as on Temporal's server)."""
    from engine._persistence.store import dumps

    update_id, name, payloads = update
    run.has_updates = True
    tx.conn.execute(
        "INSERT INTO updates (run_id, update_id, name, input, identity, state) VALUES (?, ?, ?, ?, ?, 'requested')",
        (run.run_id, update_id, name, dumps(payloads), identity),
    )


def first_task_backoff(req: StartRequest, now: datetime) -> timedelta:
    """The wait before the first workflow task: given (a later cron run), or up to the
    schedule's next time (the chain's first run)."""
    if req.first_task_backoff is not None:
        return req.first_task_backoff
    if req.cron_schedule:
        return cron_backoff(parse_cron(req.cron_schedule), now, now)
    return timedelta(0)


def remember(tx: Tx, run_id: str, req: StartRequest, execution_time: datetime) -> None:
    """Note that a run belongs to a cron chain (read when it closes)."""
    from engine._history.service import ts

    if req.cron_schedule:
        tx.conn.execute(
            "INSERT INTO crons (run_id, schedule, execution_time) VALUES (?, ?, ?)",
            (run_id, req.cron_schedule, ts(execution_time)),
        )


def next_cron_run(tx: Tx, run: Run, now: datetime, outcome: dict[str, Any]) -> StartRequest | None:
    """If ``run`` is a cron run, the start of the chain's next run (its ``run_id`` goes in the
    closing event's ``newExecutionRunId``); else None. ``outcome`` is the closing command's
    attributes."""
    from engine._history.service import StartRequest, from_ts, new_run_id

    if run.is_cron is False:  # known from its flags: no look-up
        return None
    row = tx.conn.execute("SELECT schedule, execution_time FROM crons WHERE run_id = ?", (run.run_id,)).fetchone()
    if row is None:
        return None
    schedule, execution_time = row
    tx.flush()
    first = tx.conn.execute("SELECT attributes FROM events WHERE run_id = ? AND event_id = 1", (run.run_id,)).fetchone()
    started = json.loads(first[0]) if first else {}
    next_run_id = new_run_id()
    backoff = cron_backoff(parse_cron(schedule), from_ts(execution_time), now)
    last_result = outcome.get("result") or (started.get("lastCompletionResult") if "failure" in outcome else None)
    return StartRequest(
        workflow_id=run.workflow_id,
        workflow_type=run.workflow_type,
        task_queue=run.task_queue,
        input=started.get("input") or {"payloads": []},
        identity="",
        task_timeout=timedelta(seconds=run.task_timeout),
        run_id=next_run_id,
        memo=(started.get("memo") or {}).get("fields"),
        search_attributes=(started.get("searchAttributes") or {}).get("indexedFields"),
        continued_from=run.run_id,
        first_run_id=str(started.get("firstExecutionRunId") or run.run_id),
        cron_schedule=schedule,
        first_task_backoff=backoff,
        last_completion_result=last_result,
    )
