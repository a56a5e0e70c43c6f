"""``WorkflowExecutionDescription.raw_description``: a run's description in the JSON shape of
Temporal's ``DescribeWorkflowExecutionResponse`` (protobuf's JSON names; zero values left
out, as protobuf's printer does)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine._proto_json import timestamp

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
    return {
        "executionConfig": {"taskQueue": {"name": d.task_queue, "kind": "TASK_QUEUE_KIND_NORMAL"}},
        "workflowExecutionInfo": info,
    }
