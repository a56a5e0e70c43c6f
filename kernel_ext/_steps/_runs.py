"""A run's own life as steps (start, workflow task failures, its end) and the other runs it
is linked to: child workflows, workflows it signals or cancels, the runs before and after
it in a continue-as-new chain, and Nexus operations.

Links to other runs are kept on the step (``links``: relation, workflow id, run id) so a
graph can draw the other run nested inside this one or point at it.
"""

from __future__ import annotations

from engine.history import HistoryEvent
from kernel_ext._steps._model import Timeline, generic
from kernel_ext._steps._read import (
    failure_message,
    failure_messages,
    failure_summary,
    int_of,
    payloads_text,
    shorten,
    text_of,
)


def on_started(tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    wtype = text_of(a, "workflowType", "name") or "?"
    inp = payloads_text(a.get("input"))
    step = tl.new(event, "start", "Workflow started", batch=False)
    step.detail = f"{wtype}({shorten(inp, 60)})"
    step.notes += [f"type: {wtype}", f"input: {inp}", f"task queue: {text_of(a, 'taskQueue', 'name')}"]
    parent = text_of(a, "parentWorkflowExecution", "workflowId")
    if parent:
        step.notes.append(f"child of workflow {parent}")
        step.links.append({"relation": "parent", "workflow_id": parent,
                           "run_id": text_of(a, "parentWorkflowExecution", "runId")})
    previous = text_of(a, "continuedExecutionRunId")
    if previous:
        step.notes.append(f"continued from run {previous}")
        step.links.append({"relation": "previous", "workflow_id": "", "run_id": previous})
    if (int_of(a.get("attempt")) or 1) > 1:
        step.notes.append(f"workflow attempt {int_of(a.get('attempt'))}")


def on_task_failed(tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    cause = text_of(a, "cause").removeprefix("WORKFLOW_TASK_FAILED_CAUSE_")
    message = failure_message(a.get("failure"))
    if cause == "RESET_WORKFLOW":  # not a failure of the code: where a reset took the run over
        base = text_of(a, "baseRunId")
        step = tl.new(event, "reset", "Reset", status="info", batch=False)
        step.detail = message or "reset"
        step.notes += [f"reason: {message}", f"the events before this one are copied from run {base}; the code "
                       "defined at the reset decides from here (activities after this point run again)"]
        return
    title = "Workflow task failed"
    if "NON_DETERMINISTIC" in cause or "nondetermin" in message.lower():
        title += " (non-determinism)"
    step = tl.new(event, "workflow_task_failed", title, status="failed", batch=False)
    step.detail = (message.splitlines() or [cause.lower().replace("_", " ")])[0]
    step.notes += [f"cause: {cause}", f"message: {shorten(message, 600)}"]
    trace = text_of(a, "failure", "stackTrace").strip().splitlines()
    # A non-determinism message names the workflow code line already; its trace would only
    # show the engine's replay machinery.
    if trace and "NON_DETERMINISTIC" not in cause:
        step.notes.append("stack trace (end):\n" + "\n".join(trace[-6:]))


def on_task_timed_out(tl: Timeline, event: HistoryEvent) -> None:
    step = tl.new(event, "workflow_task_timed_out", "Workflow task timed out", status="failed", batch=False)
    step.detail = text_of(event.attributes, "timeoutType").removeprefix("TIMEOUT_TYPE_").lower().replace("_", " ")
    step.notes.append("the worker did not finish the workflow task in time (crashed or too slow)")


# --- child workflows -------------------------------------------------------------------


def on_child_initiated(tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    wtype = text_of(a, "workflowType", "name") or "workflow"
    step = tl.new(event, "child", f"child {wtype}", status="running")
    step.data["workflow_id"] = text_of(a, "workflowId")
    step.detail = f"workflow {step.data['workflow_id']} · starting"
    step.notes.append(f"input: {payloads_text(a.get('input'))}")
    step.links.append({"relation": "child", "workflow_id": step.data["workflow_id"], "run_id": "", "type": wtype})
    tl.open[("child", event.event_id)] = step


_CHILD_OUTCOMES = {
    "started": "running",
    "completed": "ok",
    "failed": "failed",
    "start failed": "failed",
    "canceled": "cancelled",
    "timed out": "failed",
    "terminated": "failed",
}


def on_child_event(what: str, tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.attach(event, "child", int_of(a.get("initiatedEventId")))
    if step is None:
        generic(tl, event)
        return
    head = f"workflow {step.data.get('workflow_id', '?')}"
    result = payloads_text(a.get("result"))
    failure = failure_summary(a.get("failure"))
    details = {
        "started": f"{head} · running",
        "completed": f"{head} · → {shorten(result, 60)}",
        "failed": f"{head} · failed: {failure}",
        "start failed": f"{head} · could not start: {text_of(a, 'cause')}",
        "canceled": f"{head} · cancelled",
        "timed out": f"{head} · timed out",
        "terminated": f"{head} · terminated",
    }
    step.status, step.detail = _CHILD_OUTCOMES[what], details[what]
    run_id = text_of(a, "workflowExecution", "runId")
    if run_id and step.links:
        step.links[0]["run_id"] = run_id
    if what == "started":
        step.notes.append(f"run id: {run_id}")
    elif what == "completed":
        step.notes.append(f"result: {result}")
    elif failure:
        step.notes.append(f"failure: {failure}")


# --- other workflows: signal or cancel them ---------------------------------------------


def on_external_initiated(kind: str, tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    target = text_of(a, "workflowExecution", "workflowId") or "?"
    if kind == "signal_external":
        step = tl.new(event, kind, f"send signal {text_of(a, 'signalName') or '?'}", status="running")
        step.notes.append(f"input: {payloads_text(a.get('input'))}")
    else:
        step = tl.new(event, kind, "cancel another workflow", status="running")
    step.detail = f"to workflow {target}"
    step.links.append({"relation": "target", "workflow_id": target, "run_id": text_of(a, "workflowExecution", "runId")})
    tl.open[(kind, event.event_id)] = step


def on_external_closed(kind: str, ok: bool, tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.attach(event, kind, int_of(a.get("initiatedEventId")))
    if step is None:
        generic(tl, event)
        return
    step.status = "ok" if ok else "failed"
    step.detail += " · delivered" if ok else f" · failed: {text_of(a, 'cause') or '?'}"


def on_nexus(what: str, tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    if what == "scheduled":
        title = f"nexus {text_of(a, 'service')}.{text_of(a, 'operation')}"
        step = tl.new(event, "nexus", title, status="running")
        step.data["endpoint"] = text_of(a, "endpoint")
        step.detail = f"endpoint {step.data['endpoint']} · scheduled"
        step.notes.append(f"input: {payloads_text({'payloads': [a.get('input')]} if a.get('input') else None)}")
        tl.open[("nexus", event.event_id)] = step
        return
    found = tl.attach(event, "nexus", int_of(a.get("scheduledEventId")))
    if found is None:
        generic(tl, event)
        return
    status = {"completed": "ok", "failed": "failed", "canceled": "cancelled", "timed out": "failed"}
    if what in status:
        found.status = status[what]
    found.detail = f"endpoint {found.data.get('endpoint', '?')} · {what}"


# --- the end ----------------------------------------------------------------------------

FINAL = {
    "WorkflowExecutionCompleted": ("Completed", "ok"),
    "WorkflowExecutionFailed": ("Failed", "failed"),
    "WorkflowExecutionCanceled": ("Cancelled", "cancelled"),
    "WorkflowExecutionTerminated": ("Terminated", "failed"),
    "WorkflowExecutionTimedOut": ("Timed out", "failed"),
    "WorkflowExecutionContinuedAsNew": ("Continued as new", "ok"),
}


def on_closed(tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    title, status = FINAL[event.event_type]
    step = tl.new(event, "result", title, status=status, batch=False)
    if event.event_type == "WorkflowExecutionCompleted":
        result = payloads_text(a.get("result"))
        step.detail = f"result {shorten(result, 80)}" if result else "no result"
        step.notes.append(f"result: {result or 'none'}")
    elif event.event_type == "WorkflowExecutionFailed":
        step.detail = failure_summary(a.get("failure"))
        step.notes += [f"failure: {m}" for m in failure_messages(a.get("failure"))]
    elif event.event_type == "WorkflowExecutionTerminated":
        step.detail = text_of(a, "reason") or "no reason given"
        step.notes.append(f"by: {text_of(a, 'identity') or '?'}")
    elif event.event_type == "WorkflowExecutionContinuedAsNew":
        inp = payloads_text(a.get("input"))
        new_run = text_of(a, "newExecutionRunId")
        step.detail = f"new run with ({shorten(inp, 60)})"
        step.notes += [f"new run id: {new_run}", f"input: {inp}"]
        if new_run:
            step.links.append({"relation": "next", "workflow_id": "", "run_id": new_run})
    elif event.event_type == "WorkflowExecutionCanceled":
        step.detail = payloads_text(a.get("details"), 80)
    else:
        step.detail = text_of(a, "retryState").removeprefix("RETRY_STATE_").lower().replace("_", " ")
