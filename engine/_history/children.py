"""Service side of child workflows and of workflows signalling or cancelling each other.

Everything runs inside the transaction of the state change that caused it: a parent's
command starts the child in the same commit, and a child's close reaches its parent's
history in the commit that closes the child. So no crash can leave a child without its
parent knowing, or a parent waiting for a child that already ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine._api.durations import from_duration, to_timestamp
from engine._history.closing import request_cancel
from engine._history.mutable_state import OPEN, Run, append
from engine._history.namespaces import namespace_id
from engine._history.signals import signal_workflow
from engine._history.starts import StartRequest, start_workflow
from engine._persistence.event_rows import read_attributes
from engine._persistence.transactions import Tx
from engine.errors import WorkflowAlreadyStartedError


def _namespace(attrs: dict[str, Any]) -> str:
    return str(attrs.get("namespace") or "default")


def _with_namespace_id(tx: Tx, attrs: dict[str, Any]) -> dict[str, Any]:
    """A command's attributes with the namespace's id added after them, as Temporal's events have it."""
    return {**attrs, "namespace": _namespace(attrs), "namespaceId": namespace_id(tx.conn, _namespace(attrs))}


def _open_run_of(tx: Tx, workflow_id: str, run_id: str | None) -> str | None:
    if run_id:
        row = tx.conn.execute(
            "SELECT run_id FROM executions WHERE run_id = ? AND workflow_id = ? AND status = ?", (run_id, workflow_id, OPEN)
        ).fetchone()
    else:
        row = tx.conn.execute(
            "SELECT run_id FROM executions WHERE workflow_id = ? AND status = ?", (workflow_id, OPEN)
        ).fetchone()
    return row[0] if row else None


def _root_of(tx: Tx, run: Run) -> dict[str, Any]:
    tx.flush()  # events of this batch are written only before its commit
    row = read_attributes(tx.conn, run.run_id, 1)
    started = row[1] if row else {}
    return started.get("rootWorkflowExecution") or {"workflowId": run.workflow_id, "runId": run.run_id}


# ------------------------------------------------------------------------- commands
# The command's policy names, as the numbers StartRequest takes (engine.common.WorkflowIDReusePolicy's).
_REUSE_POLICIES = {
    f"WORKFLOW_ID_REUSE_POLICY_{name}": number
    for number, name in enumerate(("UNSPECIFIED", "ALLOW_DUPLICATE", "ALLOW_DUPLICATE_FAILED_ONLY", "REJECT_DUPLICATE", "TERMINATE_IF_RUNNING"))
}


def cmd_start_child(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    initiated = append(
        tx, run, now, "StartChildWorkflowExecutionInitiated",
        _with_namespace_id(tx, {**attrs, "workflowTaskCompletedEventId": str(completed)}),
    )
    namespace = _namespace(attrs)
    ident = {"namespace": namespace, "initiatedEventId": str(initiated), "namespaceId": namespace_id(tx.conn, namespace)}
    try:
        child_run_id = start_workflow(
            tx,
            StartRequest(
                workflow_id=attrs["workflowId"],
                workflow_type=attrs["workflowType"]["name"],
                task_queue=attrs["taskQueue"]["name"],
                input=attrs.get("input") or {"payloads": []},
                identity="",
                execution_timeout=from_duration(attrs.get("workflowExecutionTimeout")),
                run_timeout=from_duration(attrs.get("workflowRunTimeout")),
                task_timeout=from_duration(attrs.get("workflowTaskTimeout")),
                memo=(attrs.get("memo") or {}).get("fields"),
                search_attributes=(attrs.get("searchAttributes") or {}).get("indexedFields"),
                header=attrs.get("header") or None,
                id_reuse_policy=_REUSE_POLICIES.get(str(attrs.get("workflowIdReusePolicy")), 0),
                parent={
                    "parentWorkflowNamespace": "default",
                    "parentWorkflowNamespaceId": namespace_id(tx.conn, "default"),
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


def cmd_signal_external(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    execution = dict(attrs.get("execution") or {})
    event_attrs = {k: v for k, v in attrs.items() if k != "execution"}
    initiated = append(
        tx,
        run,
        now,
        "SignalExternalWorkflowExecutionInitiated",
        _with_namespace_id(tx, {**event_attrs, "workflowExecution": execution, "workflowTaskCompletedEventId": str(completed)}),
    )
    ident = {
        "initiatedEventId": str(initiated), "namespace": _namespace(attrs), "workflowExecution": execution,
        "namespaceId": namespace_id(tx.conn, _namespace(attrs)),
    }
    target = _open_run_of(tx, execution.get("workflowId", ""), execution.get("runId"))
    if target is None or target == run.run_id:
        run.buffered.append(
            _group(now, "SignalExternalWorkflowExecutionFailed", {**ident, "cause": "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND", "workflowTaskCompletedEventId": str(completed)})
        )
        return True
    signal_workflow(
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


def cmd_cancel_external(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    execution = dict(attrs.get("workflowExecution") or {})
    initiated = append(
        tx, run, now, "RequestCancelExternalWorkflowExecutionInitiated",
        _with_namespace_id(tx, {**attrs, "workflowTaskCompletedEventId": str(completed)}),
    )
    ident = {
        "initiatedEventId": str(initiated), "namespace": _namespace(attrs), "workflowExecution": execution,
        "namespaceId": namespace_id(tx.conn, _namespace(attrs)),
    }
    target = _open_run_of(tx, execution.get("workflowId", ""), execution.get("runId"))
    if target is None or target == run.run_id:
        run.buffered.append(
            _group(now, "RequestCancelExternalWorkflowExecutionFailed", {**ident, "cause": "CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND", "workflowTaskCompletedEventId": str(completed)})
        )
        return True
    request_cancel(
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
    """A buffered event group, the form ``deliver`` keeps behind a running task."""
    return {"time": to_timestamp(now), "items": [[event_type, attrs, None]], "link": False}
