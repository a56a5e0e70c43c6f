"""How a run ends: closed by its own command, a timeout, a termination or its parent's close
policy; its parent told; and cancellation requests, which the run's code answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine._history import updates
from engine._history.namespaces import namespace_id
from engine._history.mutable_state import OPEN, Run, append, load_run, save_run, ts
from engine._history.workflow_tasks import append_group, deliver
from engine._persistence.event_rows import child_started_event
from engine._persistence.transactions import Tx
from engine.errors import WorkflowNotFoundError


def close_run(tx: Tx, run: Run, now: datetime, status: str, outcome: dict[str, Any] | None = None) -> None:
    """Close a run; ``outcome`` is its closing event's attributes (told to a parent)."""
    run.status = status
    run.wft_state = ""
    run.buffered = []
    run.close_time = ts(now)
    run.wft_task = None
    tx.conn.execute("UPDATE executions SET status = ?, close_time = ? WHERE run_id = ?", (status, run.close_time, run.run_id))
    tx.conn.execute("DELETE FROM tasks WHERE run_id = ?", (run.run_id,))
    tx.conn.execute("DELETE FROM timers WHERE run_id = ?", (run.run_id,))
    tx.cache.runs.pop(run.run_id, None)
    closing = run.tail[-1] if run.tail else None
    if closing is not None:
        tx.closed[run.run_id] = (closing.event_type, closing.attributes)
    tx.notify("closed", run.run_id)
    tx.notify("closed", run.workflow_id)
    # Status and close time are written above, at once: the parent and children touched
    # below read them.
    save_run(tx, run)
    if run.has_updates is not False:
        updates.run_closed(tx, run)
    if status != "ContinuedAsNew" and run.is_child is not False:
        tell_parent(tx, run, now, status, outcome or {})
    if run.has_children is not False:
        apply_close_policy(tx, run, now)


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
        append_group(tx, run, group)
    run.buffered = []
    append(tx, run, now, "WorkflowExecutionTerminated", {"reason": reason, "details": details, "identity": identity})
    close_run(tx, run, now, "Terminated", {"reason": reason})
    save_run(tx, run)


_CLOSE_EVENTS = {
    "Completed": "ChildWorkflowExecutionCompleted",
    "Failed": "ChildWorkflowExecutionFailed",
    "Canceled": "ChildWorkflowExecutionCanceled",
    "Terminated": "ChildWorkflowExecutionTerminated",
    "TimedOut": "ChildWorkflowExecutionTimedOut",
}


# ------------------------------------------------------------------------- closing
def tell_parent(tx: Tx, run: Run, now: datetime, status: str, outcome: dict[str, Any]) -> None:
    """A child run closed: record it in its parent's history (if the parent is still open)."""
    row = tx.conn.execute(
        "SELECT parent_run_id, initiated_event_id FROM children WHERE child_run_id = ?", (run.run_id,)
    ).fetchone()
    if row is None:
        return
    parent_run_id, initiated = row
    parent = load_run(tx, parent_run_id)
    if not parent.open:
        return
    tx.flush()  # events of this batch are written only before its commit
    started = child_started_event(tx.conn, parent_run_id, initiated)
    attrs: dict[str, Any] = {
        "namespace": "default",
        "workflowExecution": {"workflowId": run.workflow_id, "runId": run.run_id},
        "workflowType": {"name": run.workflow_type},
        "initiatedEventId": str(initiated),
        "startedEventId": str(started[0] if started else 0),
        "namespaceId": namespace_id(tx.conn, "default"),
    }
    if status == "Completed":
        attrs["result"] = outcome.get("result")
    elif status == "Failed":
        attrs["failure"] = outcome.get("failure")
        attrs["retryState"] = outcome.get("retryState", "RETRY_STATE_RETRY_POLICY_NOT_SET")
    elif status == "Canceled":
        if outcome.get("details"):
            attrs["details"] = outcome["details"]
    elif status == "TimedOut":
        attrs["retryState"] = "RETRY_STATE_TIMEOUT"
    deliver(tx, parent, now, [(_CLOSE_EVENTS[status], attrs)])
    save_run(tx, parent)


def apply_close_policy(tx: Tx, run: Run, now: datetime) -> None:
    """The parent closed: terminate or cancel its open children, as each one's policy says."""
    rows = tx.conn.execute(
        "SELECT c.child_run_id, c.close_policy FROM children c JOIN executions e ON e.run_id = c.child_run_id "
        "WHERE c.parent_run_id = ? AND e.status = ?",
        (run.run_id, OPEN),
    ).fetchall()
    for child_run_id, policy in rows:
        if policy == "PARENT_CLOSE_POLICY_TERMINATE":
            terminate(tx, child_run_id, "by parent close policy", None, "", now)
        elif policy == "PARENT_CLOSE_POLICY_REQUEST_CANCEL":
            parent = {"externalWorkflowExecution": {"workflowId": run.workflow_id, "runId": run.run_id}}
            request_cancel(tx, child_run_id, "", "", now, parent)
