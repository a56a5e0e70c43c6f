"""``WorkflowExecutionDescription.raw_description``: a run's description in the JSON shape of
Temporal's ``DescribeWorkflowExecutionResponse`` (protobuf's JSON names; zero values left
out, as protobuf's printer does)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine._api.proto_json import timestamp
from engine._persistence.event_rows import RUN_KEY, unpack

if TYPE_CHECKING:
    from engine.client import WorkflowExecutionDescription

_STATUS_NAMES = {
    1: "RUNNING", 2: "COMPLETED", 3: "FAILED", 4: "CANCELED", 5: "TERMINATED", 6: "CONTINUED_AS_NEW", 7: "TIMED_OUT",
}


def describe_json(d: "WorkflowExecutionDescription") -> dict[str, Any]:
    info: dict[str, Any] = {
        "execution": {"workflowId": d.id, "runId": d.run_id},
        "type": {"name": d.workflow_type},
        "startTime": timestamp(d.start_time),
        "status": "WORKFLOW_EXECUTION_STATUS_" + _STATUS_NAMES.get(int(d.status), "UNSPECIFIED"),
        "historyLength": str(d.history_length),
        "taskQueue": d.task_queue,
    }
    if d.close_time is not None:
        info["closeTime"] = timestamp(d.close_time)
    if d.raw_memo:
        info["memo"] = {"fields": dict(d.raw_memo)}
    if d.auto_reset_points:
        info["autoResetPoints"] = {"points": [dict(p) for p in d.auto_reset_points]}
    described: dict[str, Any] = {
        "executionConfig": {"taskQueue": {"name": d.task_queue, "kind": "TASK_QUEUE_KIND_NORMAL"}},
        "workflowExecutionInfo": info,
    }
    if d.pending_activity_infos:
        described["pendingActivities"] = [dict(p) for p in d.pending_activity_infos]
    return described


def pending_activities(conn: Any, run_id: str) -> list[dict[str, Any]]:
    """The run's scheduled activities not closed yet, as Temporal's ``PendingActivityInfo``
    JSON (database thread): id, type, state and attempt from the task and its scheduled event."""
    rows = conn.execute(
        "SELECT t.attempt, t.started_at, t.lease_owner, e.event_type, e.attributes FROM tasks t "
        "JOIN events e ON e.run = " + RUN_KEY + " AND e.event_id = t.scheduled_event_id "
        "WHERE t.run_id = ? AND t.kind = 'activity' ORDER BY t.scheduled_event_id",
        (run_id, run_id),
    ).fetchall()
    found = []
    for attempt, started_at, lease_owner, event_type, attributes in rows:
        scheduled = unpack(event_type, attributes)
        running = started_at is not None or lease_owner is not None
        found.append({
            "activityId": scheduled.get("activityId", ""),
            "activityType": {"name": (scheduled.get("activityType") or {}).get("name", "")},
            "state": "PENDING_ACTIVITY_STATE_STARTED" if running else "PENDING_ACTIVITY_STATE_SCHEDULED",
            "attempt": int(attempt),
        })
    return found
