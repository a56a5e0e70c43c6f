"""Service side of child workflows and of workflows signalling or cancelling each other.

Everything runs inside the transaction of the state change that caused it: a parent's
command starts the child in the same commit, and a child's close reaches its parent's
history in the commit that closes the child. So no crash can leave a child without its
parent knowing, or a parent waiting for a child that already ended.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from engine import _service as svc
from engine._store import Tx
from engine.errors import WorkflowAlreadyStartedError

_CLOSE_EVENTS = {
    "Completed": "ChildWorkflowExecutionCompleted",
    "Failed": "ChildWorkflowExecutionFailed",
    "Canceled": "ChildWorkflowExecutionCanceled",
    "Terminated": "ChildWorkflowExecutionTerminated",
    "TimedOut": "ChildWorkflowExecutionTimedOut",
}


def _namespace(attrs: dict[str, Any]) -> str:
    return str(attrs.get("namespace") or "default")


def _open_run_of(tx: Tx, workflow_id: str, run_id: str | None) -> str | None:
    if run_id:
        row = tx.conn.execute(
            "SELECT run_id FROM executions WHERE run_id = ? AND workflow_id = ? AND status = ?", (run_id, workflow_id, svc.OPEN)
        ).fetchone()
    else:
        row = tx.conn.execute(
            "SELECT run_id FROM executions WHERE workflow_id = ? AND status = ?", (workflow_id, svc.OPEN)
        ).fetchone()
    return row[0] if row else None


def _root_of(tx: Tx, run: svc.Run) -> dict[str, Any]:
    tx.flush()  # events of this batch are written only before its commit
    row = tx.conn.execute("SELECT attributes FROM events WHERE run_id = ? AND event_id = 1", (run.run_id,)).fetchone()
    started = json.loads(row[0]) if row else {}
    return started.get("rootWorkflowExecution") or {"workflowId": run.workflow_id, "runId": run.run_id}


# ------------------------------------------------------------------------- commands
def cmd_start_child(tx: Tx, run: svc.Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    initiated = svc.append(
        tx, run, now, "StartChildWorkflowExecutionInitiated", {**attrs, "workflowTaskCompletedEventId": str(completed)}
    )
    namespace = _namespace(attrs)
    ident = {"namespace": namespace, "initiatedEventId": str(initiated)}
    try:
        child_run_id = svc.start_workflow(
            tx,
            svc.StartRequest(
                workflow_id=attrs["workflowId"],
                workflow_type=attrs["workflowType"]["name"],
                task_queue=attrs["taskQueue"]["name"],
                input=attrs.get("input") or {"payloads": []},
                identity="",
                execution_timeout=svc.from_duration(attrs.get("workflowExecutionTimeout")),
                run_timeout=svc.from_duration(attrs.get("workflowRunTimeout")),
                task_timeout=svc.from_duration(attrs.get("workflowTaskTimeout")),
                memo=(attrs.get("memo") or {}).get("fields"),
                search_attributes=(attrs.get("searchAttributes") or {}).get("indexedFields"),
                header=attrs.get("header") or None,
                parent={
                    "parentWorkflowNamespace": "default",
                    "parentWorkflowExecution": {"workflowId": run.workflow_id, "runId": run.run_id},
                    "parentInitiatedEventId": str(initiated),
                    "rootWorkflowExecution": _root_of(tx, run),
                },
            ),
            now,
        )
    except WorkflowAlreadyStartedError:
        # Reported to the parent's code as a failed start, as Temporal does.
        run.buffered.append(
            _group(
                now,
                "StartChildWorkflowExecutionFailed",
                {
                    **ident,
                    "workflowId": attrs["workflowId"],
                    "workflowType": attrs["workflowType"],
                    "cause": "START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS",
                    "workflowTaskCompletedEventId": str(completed),
                },
            )
        )
        return True
    run.has_children = True
    tx.conn.execute(
        "INSERT INTO children (child_run_id, parent_run_id, initiated_event_id, close_policy) VALUES (?, ?, ?, ?)",
        (child_run_id, run.run_id, initiated, attrs.get("parentClosePolicy") or "PARENT_CLOSE_POLICY_TERMINATE"),
    )
    # After the task's other command events: the workflow code sees the start in a new task.
    run.buffered.append(
        _group(
            now,
            "ChildWorkflowExecutionStarted",
            {
                **ident,
                "workflowExecution": {"workflowId": attrs["workflowId"], "runId": child_run_id},
                "workflowType": attrs["workflowType"],
                "header": attrs.get("header") or {},  # the initiated command's, as Temporal copies it
            },
        )
    )
    return True


def cmd_signal_external(tx: Tx, run: svc.Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    execution = dict(attrs.get("execution") or {})
    event_attrs = {k: v for k, v in attrs.items() if k != "execution"}
    initiated = svc.append(
        tx,
        run,
        now,
        "SignalExternalWorkflowExecutionInitiated",
        {**event_attrs, "workflowExecution": execution, "workflowTaskCompletedEventId": str(completed)},
    )
    ident = {"initiatedEventId": str(initiated), "namespace": _namespace(attrs), "workflowExecution": execution}
    target = _open_run_of(tx, execution.get("workflowId", ""), execution.get("runId"))
    if target is None or target == run.run_id:
        run.buffered.append(
            _group(now, "SignalExternalWorkflowExecutionFailed", {**ident, "cause": "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND", "workflowTaskCompletedEventId": str(completed)})
        )
        return True
    svc.signal_workflow(
        tx,
        target,
        attrs["signalName"],
        attrs.get("input") or {"payloads": []},
        "",
        now,
        external={"externalWorkflowExecution": {"workflowId": run.workflow_id, "runId": run.run_id}},
        header=attrs.get("header") or None,
    )
    run.buffered.append(_group(now, "ExternalWorkflowExecutionSignaled", ident))
    return True


def cmd_cancel_external(tx: Tx, run: svc.Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    execution = dict(attrs.get("workflowExecution") or {})
    initiated = svc.append(
        tx, run, now, "RequestCancelExternalWorkflowExecutionInitiated", {**attrs, "workflowTaskCompletedEventId": str(completed)}
    )
    ident = {"initiatedEventId": str(initiated), "namespace": _namespace(attrs), "workflowExecution": execution}
    target = _open_run_of(tx, execution.get("workflowId", ""), execution.get("runId"))
    if target is None or target == run.run_id:
        run.buffered.append(
            _group(now, "RequestCancelExternalWorkflowExecutionFailed", {**ident, "cause": "CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND", "workflowTaskCompletedEventId": str(completed)})
        )
        return True
    svc.request_cancel(
        tx,
        target,
        "",
        "",
        now,
        external={
            "externalInitiatedEventId": str(initiated),
            "externalWorkflowExecution": {"workflowId": run.workflow_id, "runId": run.run_id},
        },
    )
    run.buffered.append(_group(now, "ExternalWorkflowExecutionCancelRequested", ident))
    return True


def _group(now: datetime, event_type: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """A buffered event group, the form ``svc.deliver`` keeps behind a running task."""
    return {"time": svc.to_timestamp(now), "items": [[event_type, attrs, None]], "link": False}


# ------------------------------------------------------------------------- closing
def tell_parent(tx: Tx, run: svc.Run, now: datetime, status: str, outcome: dict[str, Any]) -> None:
    """A child run closed: record it in its parent's history (if the parent is still open)."""
    row = tx.conn.execute(
        "SELECT parent_run_id, initiated_event_id FROM children WHERE child_run_id = ?", (run.run_id,)
    ).fetchone()
    if row is None:
        return
    parent_run_id, initiated = row
    parent = svc.load_run(tx, parent_run_id)
    if not parent.open:
        return
    tx.flush()  # events of this batch are written only before its commit
    started = tx.conn.execute(
        "SELECT event_id FROM events WHERE run_id = ? AND event_type = 'ChildWorkflowExecutionStarted' "
        "AND json_extract(attributes, '$.initiatedEventId') = ?",
        (parent_run_id, str(initiated)),
    ).fetchone()
    attrs: dict[str, Any] = {
        "namespace": "default",
        "workflowExecution": {"workflowId": run.workflow_id, "runId": run.run_id},
        "workflowType": {"name": run.workflow_type},
        "initiatedEventId": str(initiated),
        "startedEventId": str(started[0] if started else 0),
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
    svc.deliver(tx, parent, now, [(_CLOSE_EVENTS[status], attrs)])
    svc.save_run(tx, parent)


def apply_close_policy(tx: Tx, run: svc.Run, now: datetime) -> None:
    """The parent closed: terminate or cancel its open children, as each one's policy says."""
    rows = tx.conn.execute(
        "SELECT c.child_run_id, c.close_policy FROM children c JOIN executions e ON e.run_id = c.child_run_id "
        "WHERE c.parent_run_id = ? AND e.status = ?",
        (run.run_id, svc.OPEN),
    ).fetchall()
    for child_run_id, policy in rows:
        if policy == "PARENT_CLOSE_POLICY_TERMINATE":
            svc.terminate(tx, child_run_id, "by parent close policy", None, "", now)
        elif policy == "PARENT_CLOSE_POLICY_REQUEST_CANCEL":
            parent = {"externalWorkflowExecution": {"workflowId": run.workflow_id, "runId": run.run_id}}
            svc.request_cancel(tx, child_run_id, "", "", now, parent)
