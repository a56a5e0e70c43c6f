"""``dlab workflow reset``, the auto-reset points in ``dlab workflow describe`` and ``dlab namespace``."""

from __future__ import annotations

import getpass
import json
import re
from pathlib import Path
from typing import Callable

from tests.cli.helpers import Result, with_client

Dlab = Callable[..., Result]


def test_describe_lists_the_auto_reset_points(dlab: Dlab, db: Path) -> None:
    described = dlab("workflow", "describe", "--db", str(db), "-w", "collect-1")
    assert described.code == 0
    assert "Auto Reset Points:" in described.out
    row = re.search(r"^  ([0-9a-f]{32}) +(\S+) +4 +(\S+) +yes$", described.out, re.M)
    assert row, described.out
    info = json.loads(dlab("workflow", "describe", "--db", str(db), "-w", "collect-1", "-o", "json").out)["workflowExecutionInfo"]
    (point,) = info["autoResetPoints"]["points"]
    assert point["buildId"] == row.group(1) and point["runId"] == row.group(2) and point["firstWorkflowTaskCompletedId"] == "4"


def test_reset_a_running_run_to_its_first_task(dlab: Dlab, db: Path) -> None:
    old_run = with_client(db, lambda c: c.get_workflow_handle("collect-1").describe()).run_id
    done = dlab("workflow", "reset", "--db", str(db), "-w", "collect-1", "-t", "FirstWorkflowTask", "--reason", "try again")
    assert done.code == 0, done.err
    assert done.out.startswith("Resetting workflow collect-1 to event ID 4\n")
    new_run = re.search(r"^  RunId +(\S+)$", done.out, re.M).group(1)  # type: ignore[union-attr]
    assert new_run != old_run

    async def look(client):  # type: ignore[no-untyped-def]
        new = await client.get_workflow_handle("collect-1", run_id=new_run).fetch_history()
        old = await client.get_workflow_handle("collect-1", run_id=old_run).fetch_history()
        return new.events, old.events

    new_events, old_events = with_client(db, look)
    failed = new_events[3]
    assert failed.event_type == "WorkflowTaskFailed"
    assert failed.attributes["failure"]["message"] == f"{getpass.getuser()}: try again"
    assert [e.attributes["signalName"] for e in new_events if e.event_type == "WorkflowExecutionSignaled"] == ["add"]
    assert old_events[-1].event_type == "WorkflowExecutionTerminated"
    assert old_events[-1].attributes["reason"] == f"{getpass.getuser()}: try again"


def test_reset_errors_are_one_line_naming_what_is_possible(dlab: Dlab, db: Path) -> None:
    bad = dlab("workflow", "reset", "--db", str(db), "-w", "collect-1", "-e", "2", "--reason", "x")
    assert bad.code == 1 and bad.err.count("\n") == 1
    assert bad.err == (
        "Error: Event 2 is WorkflowTaskScheduled, not the end of a workflow task. "
        "Events you can reset to: 4 (WorkflowTaskCompleted), 8 (WorkflowTaskCompleted).\n"
    ), bad.err
    activity = dlab("workflow", "reset", "--db", str(db), "-w", "hello-1", "-e", "7", "--reason", "x")
    assert activity.code == 1
    assert "Event 7 is ActivityTaskCompleted, not the end of a workflow task. Events you can reset to: 4 (WorkflowTaskCompleted), 10 (WorkflowTaskCompleted)." in activity.err
    usage = dlab("workflow", "reset", "--db", str(db), "-w", "collect-1", "--reason", "x")
    assert usage.code == 2 and "one of the arguments -e/--event-id -t/--type is required" in usage.err
    no_reason = dlab("workflow", "reset", "--db", str(db), "-w", "collect-1", "-t", "LastWorkflowTask")
    assert no_reason.code == 2 and "--reason" in no_reason.err


def test_namespace_describe_and_list_show_the_id_the_events_carry(dlab: Dlab, db: Path) -> None:
    described = dlab("namespace", "describe", "--db", str(db))
    assert described.code == 0
    namespace_id = re.search(r"^  NamespaceInfo.Id +(\S+)$", described.out, re.M).group(1)  # type: ignore[union-attr]
    document = json.loads(dlab("namespace", "describe", "--db", str(db), "-n", "default", "-o", "json").out)
    assert document["namespaceInfo"] == {"name": "default", "state": "NAMESPACE_STATE_REGISTERED", "id": namespace_id}
    listed = dlab("namespace", "list", "--db", str(db))
    assert re.search(rf"^  default +{namespace_id}$", listed.out, re.M)
    assert dlab("namespace", "describe", "--db", str(db)).out == described.out  # the same id every time
