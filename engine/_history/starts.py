"""Starting a run: its first event, its timeouts and first workflow task, and the start options
(issue 11, item 7): workflow id reuse and conflict policies, and cron schedules.

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

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine._api.durations import to_duration, to_timestamp
from engine._history import reset_points, search_attributes
from engine._history.closing import terminate
from engine._history.cron import cron_backoff, parse_cron
from engine._history.mutable_state import OPEN, QUEUE_KIND, Run, append, cache_run, from_ts, new_run_id, ts
from engine._history.workflow_tasks import ensure_workflow_task
from engine._persistence.event_rows import read_attributes
from engine._persistence.transactions import Tx, dumps
from engine.errors import WorkflowAlreadyStartedError


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
    # indexedFields of searchAttributes (payloads, JSON form).
    search_attributes: dict[str, Any] | None = None
    continued_from: str | None = None
    first_run_id: str | None = None
    # For a child run: the parent* / root* attributes of its WorkflowExecutionStarted event.
    parent: dict[str, Any] | None = None
    # The start's header fields (interceptors' headers; {} when none), as Temporal records them.
    header: dict[str, Any] | None = None
    # Start options (engine._history.starts): temporalio's policy enum values (0: default).
    id_reuse_policy: int = 0
    id_conflict_policy: int = 0
    cron_schedule: str | None = None
    first_task_backoff: timedelta | None = None  # None: up to the cron schedule's next time
    last_completion_result: dict[str, Any] | None = None
    # Continue-as-new: the previous run's auto-reset points (engine._history.reset_points).
    reset_points: list[dict[str, Any]] | None = None
    # Update-with-start: (update id, name, payloads) the first workflow task carries.
    update: tuple[str, str, dict[str, Any]] | None = None


def start_workflow(tx: Tx, req: StartRequest, now: datetime) -> str:
    # Policies decide about runs of the same id ("+status" in their look-up: without it SQLite
    # picks the status index and walks every open run; no flush needed, close_run writes
    # status at once). USE_EXISTING answers with the open run.
    existing = existing_run(tx, req, now)
    if existing is not None:
        return existing
    backoff = first_task_backoff(req, now)
    run_id = req.run_id or new_run_id()
    task_timeout = (req.task_timeout or timedelta(seconds=10)).total_seconds()
    # As Temporal's frontend: the run timeout defaults to (and is capped by) the execution
    # timeout, and the workflow-task timeout by the run timeout.
    run_limit = min((t for t in (req.run_timeout, req.execution_timeout) if t), default=None)
    task_timeout = min(task_timeout, run_limit.total_seconds()) if run_limit else task_timeout
    run = Run(run_id, req.workflow_id, req.workflow_type, req.task_queue, OPEN, 1, "", None, None, 1, [], task_timeout)
    run.has_updates, run.is_child, run.has_children = False, bool(req.parent), False
    run.is_cron = bool(req.cron_schedule)
    # The run's key is chosen now (its row is written last, after its first events).
    run.key = tx.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM executions").fetchone()[0]
    attrs: dict[str, Any] = {
        "workflowType": {"name": req.workflow_type},
        "taskQueue": {"name": req.task_queue, "kind": QUEUE_KIND},
        "input": req.input,
        "workflowTaskTimeout": to_duration(timedelta(seconds=task_timeout)),
        "originalExecutionRunId": run_id,
        "identity": req.identity,
        "firstExecutionRunId": req.first_run_id or run_id,
        "attempt": 1,
        "firstWorkflowTaskBackoff": to_duration(backoff) if backoff else "0s",
        "header": req.header or {},
        "workflowId": req.workflow_id,
    }
    if req.execution_timeout:
        attrs["workflowExecutionTimeout"] = to_duration(req.execution_timeout)
        attrs["workflowExecutionExpirationTime"] = to_timestamp(now + req.execution_timeout)
    if run_limit:
        attrs["workflowRunTimeout"] = to_duration(run_limit)
    if req.memo:
        attrs["memo"] = {"fields": req.memo}
    if req.search_attributes:
        attrs["searchAttributes"] = {"indexedFields": req.search_attributes}
        search_attributes.index(tx, run_id, req.search_attributes, fresh=True, strict=not (req.continued_from or req.parent))
    if req.parent:
        attrs.update(req.parent)
        del attrs["identity"]  # as Temporal: a child's start carries its parent, not a client
    if req.continued_from:
        attrs["continuedExecutionRunId"] = req.continued_from
        attrs["initiator"] = "CONTINUE_AS_NEW_INITIATOR_WORKFLOW"
    if req.cron_schedule:
        attrs["cronSchedule"] = req.cron_schedule
        attrs["initiator"] = "CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE"
        attrs.pop("identity", None) if req.continued_from else None
    if req.last_completion_result:
        attrs["lastCompletionResult"] = req.last_completion_result
    if req.reset_points:
        attrs["prevAutoResetPoints"] = {"points": req.reset_points}
    append(tx, run, now, "WorkflowExecutionStarted", attrs)
    limit = min(t for t in (req.execution_timeout, req.run_timeout, timedelta.max) if t)
    if limit != timedelta.max:
        tx.conn.execute(
            "INSERT INTO timers (run_id, timer_key, kind, fire_at) VALUES (?, 'execution-timeout', 'execution_timeout', ?)",
            (run_id, ts(now + limit)),
        )
        tx.notify("timers", "")
    if req.update is not None:
        add_update(tx, run, req.update, req.identity)
    if backoff:
        # The first workflow task waits (a cron run's next time); it is scheduled when the
        # timer fires, as Temporal writes it then.
        tx.conn.execute(
            "INSERT INTO timers (run_id, timer_key, kind, fire_at) VALUES (?, 'first-task-backoff', 'first_task_backoff', ?)",
            (run_id, ts(now + backoff)),
        )
        tx.notify("timers", "")
    else:
        ensure_workflow_task(tx, run, now)
    remember(tx, run_id, req, now + backoff)
    tx.conn.execute(
        "INSERT INTO executions (id, run_id, workflow_id, workflow_type, task_queue, status, start_time, next_event_id, "
        "wft_state, wft_scheduled_id, wft_started_id, wft_attempt, task_timeout, flags, search_attributes, memo) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run.key, run_id, req.workflow_id, req.workflow_type, req.task_queue, OPEN, ts(now), run.next_event_id,
         run.wft_state, run.wft_scheduled_id, run.wft_started_id, run.wft_attempt, task_timeout, run.flags(),
         dumps(req.search_attributes) if req.search_attributes else None, dumps(req.memo) if req.memo else None),
    )
    cache_run(tx, run)
    return run_id


# temporalio's enum values (engine.common.WorkflowIDReusePolicy / WorkflowIDConflictPolicy).
ALLOW_DUPLICATE, ALLOW_DUPLICATE_FAILED_ONLY, REJECT_DUPLICATE, TERMINATE_IF_RUNNING = 1, 2, 3, 4


CONFLICT_FAIL, USE_EXISTING, TERMINATE_EXISTING = 1, 2, 3


_SUCCEEDED = ("Completed", "ContinuedAsNew")


def existing_run(tx: Tx, req: StartRequest, now: datetime) -> str | None:
    """Apply the request's policies to runs of its workflow id: the open run's id when the
    start should use it (USE_EXISTING), None to start a new run; raise
    ``WorkflowAlreadyStartedError`` when the policies refuse the start."""

    row = tx.conn.execute(
        "SELECT run_id FROM executions WHERE workflow_id = ? AND +status = ?", (req.workflow_id, OPEN)
    ).fetchone()
    conflict = req.id_conflict_policy or CONFLICT_FAIL
    if row is not None:
        if conflict == USE_EXISTING and req.id_reuse_policy != TERMINATE_IF_RUNNING:
            return str(row[0])
        if conflict == TERMINATE_EXISTING or req.id_reuse_policy == TERMINATE_IF_RUNNING:
            reason = "terminated by a start with id conflict policy TERMINATE_EXISTING"
            terminate(tx, row[0], reason, None, req.identity, now)
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

    if req.cron_schedule:
        tx.conn.execute(
            "INSERT INTO crons (run_id, schedule, execution_time) VALUES (?, ?, ?)",
            (run_id, req.cron_schedule, ts(execution_time)),
        )


def next_cron_run(tx: Tx, run: Run, now: datetime, outcome: dict[str, Any]) -> StartRequest | None:
    """If ``run`` is a cron run, the start of the chain's next run (its ``run_id`` goes in the
    closing event's ``newExecutionRunId``); else None. ``outcome`` is the closing command's
    attributes."""

    if run.is_cron is False:  # known from its flags: no look-up
        return None
    row = tx.conn.execute("SELECT schedule, execution_time FROM crons WHERE run_id = ?", (run.run_id,)).fetchone()
    if row is None:
        return None
    schedule, execution_time = row
    tx.flush()
    first = read_attributes(tx.conn, run.run_id, 1)
    started = first[1] if first else {}
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
        reset_points=reset_points.carried_over(reset_points.read_points(tx.conn, run.run_id), run.run_id, now),
    )
