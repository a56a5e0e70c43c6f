"""A completed workflow task's commands, each applied by one function, in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from engine._api.durations import from_duration
from engine._history import children, reset_points, search_attributes, updates
from engine._history.activities import cmd_cancel_activity, cmd_schedule_activity
from engine._history.closing import close_run
from engine._history.mutable_state import Run, SDK_FLAGS, append, identity_of, load_run, new_run_id, save_run
from engine._history.starts import StartRequest, next_cron_run, start_workflow
from engine._history.timers import cmd_cancel_timer, cmd_start_timer
from engine._history.workflow_tasks import append_group, ensure_workflow_task, take_workflow_task, updates_waiting, write_transient
from engine._persistence.event_rows import read_attributes
from engine._persistence.transactions import Tx


def complete_workflow_task(
    tx: Tx,
    task_id: int,
    owner: str,
    run_id: str,
    started_event_id: int,
    commands: Sequence[tuple[str, dict[str, Any]]],
    now: datetime,
    first_task: bool,
    build_id: str = "",
) -> bool:
    """Record a workflow task's completion; False if it left no trace (a speculative task
    that only rejected updates), so the worker's cached state is ahead of the history."""
    run = load_run(tx, run_id)
    info = take_workflow_task(tx, task_id, owner, run, started_event_id)
    if updates.droppable(info, run, commands):
        for kind, cattrs in commands:
            _COMMANDS[kind](tx, run, now, 0, cattrs)
        run.wft_state = ""
        for group in run.buffered:
            append_group(tx, run, group)
        if run.buffered or updates_waiting(tx, run):
            ensure_workflow_task(tx, run, now)
        run.buffered = []
        save_run(tx, run)
        return False
    if "transient" in info:
        write_transient(tx, run, info)
    attrs: dict[str, Any] = {
        "scheduledEventId": str(run.wft_scheduled_id),
        "startedEventId": str(started_event_id),
        "identity": identity_of(owner),
    }
    if build_id:
        attrs["workerVersion"] = {"buildId": build_id}
    if first_task:
        attrs["sdkMetadata"] = {"coreUsedFlags": SDK_FLAGS}
    closing = any(kind in _CLOSE_COMMANDS for kind, _ in commands)
    if closing and any(item[0] == "WorkflowExecutionSignaled" for group in run.buffered for item in group["items"]):
        # A signal arrived while the code decided to finish: as in Temporal, the completion is
        # refused and a new workflow task lets the code see the signal. Signals are never lost.
        append(
            tx,
            run,
            now,
            "WorkflowTaskFailed",
            {**{k: v for k, v in attrs.items() if k not in ("sdkMetadata", "workerVersion")}, "cause": "WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND", "failure": {"message": "new signals arrived while the workflow was completing", "source": "Server"}},
        )
        run.wft_state = ""
        for group in run.buffered:
            append_group(tx, run, group)
        run.buffered = []
        ensure_workflow_task(tx, run, now)
        save_run(tx, run)
        return True
    completed = append(tx, run, now, "WorkflowTaskCompleted", attrs)
    run.wft_state = ""
    run.wft_attempt = 1
    new_task_needed = False
    for kind, cattrs in commands:
        if not run.open:
            break
        new_task_needed |= _COMMANDS[kind](tx, run, now, completed, cattrs)
    if run.open:
        buffered, run.buffered = run.buffered, []
        for group in buffered:
            append_group(tx, run, group)
        if buffered or new_task_needed or updates_waiting(tx, run):
            ensure_workflow_task(tx, run, now)
    save_run(tx, run)
    return True


def _close_command(status: str, event_type: str):  # type: ignore[no-untyped-def]
    def handler(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
        extra: dict[str, Any] = {"workflowTaskCompletedEventId": str(completed)}
        if event_type == "WorkflowExecutionFailed":
            extra["retryState"] = "RETRY_STATE_RETRY_POLICY_NOT_SET"
        follow = next_cron_run(tx, run, now, attrs) if status in ("Completed", "Failed") else None
        if follow is not None:
            extra["newExecutionRunId"] = follow.run_id
        append(tx, run, now, event_type, {**attrs, **extra})
        close_run(tx, run, now, status, attrs)
        if follow is not None:
            save_run(tx, run)
            start_workflow(tx, follow, now)
        return False

    return handler


def cmd_continue_as_new(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    next_run_id = new_run_id()
    tx.flush()
    first = read_attributes(tx.conn, run.run_id, 1)
    started = first[1] if first else {}
    attrs = {**attrs, **search_attributes.carried_over(tx, run.run_id, started, attrs)}
    points = reset_points.carried_over(reset_points.read_points(tx.conn, run.run_id), run.run_id, now)
    append(
        tx,
        run,
        now,
        "WorkflowExecutionContinuedAsNew",
        {"newExecutionRunId": next_run_id, **attrs, "workflowTaskCompletedEventId": str(completed), "inheritBuildId": True},
    )
    close_run(tx, run, now, "ContinuedAsNew")
    save_run(tx, run)
    start_workflow(
        tx,
        StartRequest(
            workflow_id=run.workflow_id,
            workflow_type=attrs["workflowType"]["name"],
            task_queue=attrs["taskQueue"]["name"],
            input=attrs.get("input") or {"payloads": []},
            identity=str(started.get("identity", "")),
            run_timeout=from_duration(attrs.get("workflowRunTimeout")),
            task_timeout=from_duration(attrs.get("workflowTaskTimeout")),
            run_id=next_run_id,
            memo=(attrs.get("memo") or {}).get("fields"),
            search_attributes=(attrs.get("searchAttributes") or {}).get("indexedFields"),
            continued_from=run.run_id,
            first_run_id=str(started.get("firstExecutionRunId") or run.run_id),
            parent={k: v for k, v in started.items() if k.startswith(("parent", "root"))} or None,
            reset_points=points,
        ),
        now,
    )
    tx.conn.execute("UPDATE children SET child_run_id = ? WHERE child_run_id = ?", (next_run_id, run.run_id))
    tx.notify("continued", run.run_id)
    return False


def cmd_record_marker(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    append(tx, run, now, "MarkerRecorded", {**attrs, "workflowTaskCompletedEventId": str(completed)})
    return False


_CLOSE_COMMANDS = frozenset(
    {"CompleteWorkflowExecution", "FailWorkflowExecution", "CancelWorkflowExecution", "ContinueAsNewWorkflowExecution"}
)


_COMMANDS = {
    "StartChildWorkflowExecution": children.cmd_start_child,
    "SignalExternalWorkflowExecution": children.cmd_signal_external,
    "RequestCancelExternalWorkflowExecution": children.cmd_cancel_external,
    "ScheduleActivityTask": cmd_schedule_activity,
    "StartTimer": cmd_start_timer,
    "CancelTimer": cmd_cancel_timer,
    "RequestCancelActivityTask": cmd_cancel_activity,
    "RecordMarker": cmd_record_marker,
    "UpsertWorkflowSearchAttributes": search_attributes.cmd_upsert_search_attributes,
    "ModifyWorkflowProperties": search_attributes.cmd_modify_properties,
    "AcceptUpdate": updates.cmd_accept,
    "CompleteUpdate": updates.cmd_complete,
    "RejectUpdate": updates.cmd_reject,
    "CompleteWorkflowExecution": _close_command("Completed", "WorkflowExecutionCompleted"),
    "FailWorkflowExecution": _close_command("Failed", "WorkflowExecutionFailed"),
    "CancelWorkflowExecution": _close_command("Canceled", "WorkflowExecutionCanceled"),
    "ContinueAsNewWorkflowExecution": cmd_continue_as_new,
}
