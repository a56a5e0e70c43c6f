"""Mark the steps that injected faults (engine.faults) hit, from the engine's fault log.

An injected activity failure is visible in its failure JSON (see ``finish_activity``); a hang
or a delay is not (the engine only saw a timeout, or a slow attempt), and a worker crash
leaves no event at all. The fault log says which run each firing hit and what it did; this
puts a note on the step it concerns, so the graph tells injected faults from organic ones.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from kernel_ext._steps._model import Step

# "ActivityTaskCompleted(debit)" -> ("ActivityTaskCompleted", "debit")
_EVENT = re.compile(r"(\w+)\((\w[^()]*)\)|(\w+)")


def mark(steps: Sequence[Step], fired: Sequence[Any]) -> None:
    """Attach each firing (``FaultFired``) to the step it concerns; count it as injected."""
    for entry in fired:
        if entry.kind == "fail":
            continue  # the failure JSON of the attempt already says so
        step = _target(steps, entry)
        if step is None:
            continue
        step.data["injected"] = int(step.data.get("injected", 0)) + 1
        step.notes.append(f"⚡ injected fault: {_describe(entry)}")
        marker = {"crash_worker": "⚡ worker crashed here (injected)", "kill": "⚡ worker killed here (SIGKILL)"}.get(
            entry.kind, "⚡ injected fault"
        )
        if marker not in step.detail:
            step.detail = _early(step.detail, marker)


def _early(detail: str, marker: str) -> str:
    """``detail`` with ``marker`` after its first part (and an activity's attempt count):
    text views and graph labels cut long details short, so the end may not show."""
    parts = detail.split(" · ") if detail else []
    at = 2 if len(parts) > 1 and parts[1].endswith("attempts") else min(1, len(parts))
    return " · ".join(parts[:at] + [marker] + parts[at:])


def _describe(entry: Any) -> str:
    if entry.kind == "crash_worker":
        return f"worker {entry.identity or '?'} crashed {entry.detail}"
    return entry.detail or entry.kind


def _target(steps: Sequence[Step], entry: Any) -> Step | None:
    activities = [s for s in steps if s.kind == "activity"]
    scheduled = getattr(entry, "scheduled_event_id", None)
    if scheduled is not None:
        # The log names the activity (its scheduled event): exact, also when a run calls
        # the same activity type more than once.
        return next((s for s in activities if s.event_ids and s.event_ids[0] == scheduled), None)
    if entry.kind in ("hang", "slow"):
        return next((s for s in activities if s.title == entry.target), None)
    names = [m.group(2) for m in _EVENT.finditer(entry.detail or "") if m.group(2)]
    types = [m.group(1) or m.group(3) for m in _EVENT.finditer(entry.detail or "")]
    for name in reversed(names):
        found = next((s for s in activities if s.title == name), None)
        if found is not None:
            return found
    if "WorkflowExecutionCompleted" in types or "WorkflowExecutionFailed" in types:
        return next((s for s in steps if s.kind == "result"), None)
    return next((s for s in steps if s.kind == "start"), steps[0] if steps else None)
