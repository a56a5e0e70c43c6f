"""What reaches a run from outside (signals, updates, cancel requests) and what it notes for
itself (markers: versioning patches, side effects; search attributes) as steps.

Queries leave nothing in a history, so they have no step: a query reads a run's state
without changing it.
"""

from __future__ import annotations

from typing import Any, Mapping

from engine.history import HistoryEvent
from kernel_ext._steps._model import Timeline
from kernel_ext._steps._read import (
    dig,
    failure_summary,
    int_of,
    payload_values,
    payloads_text,
    shorten,
    text_of,
)

# Temporal's versioning marker (temporalio's workflow.patched/deprecate_patch, ours too).
PATCH_MARKER = "core_patch"
# The search attribute an SDK upserts after each patch marker: the patch ids seen so far.
_CHANGE_VERSION = "TemporalChangeVersion"


def on_signal(tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    name = text_of(a, "signalName") or "?"
    step = tl.new(event, "signal", f"signal {name}", batch=False)
    inp = payloads_text(a.get("input"))
    sender = text_of(a, "identity")
    step.detail = f"received {shorten(inp, 60)}" if inp else "received"
    step.notes += [f"input: {inp or 'none'}", f"sent by: {sender or '?'}"]
    step.notes.append("delivered to the workflow's signal handler at its next workflow task")


def on_cancel_requested(tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.new(event, "cancel_request", "Cancel requested", batch=False)
    step.detail = text_of(a, "cause") or (f"by {text_of(a, 'identity')}" if text_of(a, "identity") else "")
    step.notes.append("the workflow is asked to stop; it decides how (cleanup, compensation)")


def _update_id(a: Mapping[str, Any]) -> str:
    for path in (("meta", "updateId"), ("request", "meta", "updateId"), ("acceptedRequest", "meta", "updateId"),
                 ("rejectedRequest", "meta", "updateId"), ("protocolInstanceId",)):
        if text_of(a, *path):
            return text_of(a, *path)
    return ""


def on_update(what: str, tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    update_id = _update_id(a)
    step = tl.attach(event, "update", update_id) if update_id else None
    if step is None and what == "completed":
        step = tl.attach(event, "update accepted", int_of(a.get("acceptedEventId")))
    if step is None:
        name = text_of(a, "acceptedRequest", "input", "name") or text_of(a, "rejectedRequest", "input", "name")
        name = name or text_of(a, "request", "input", "name")
        args = dig(a, "acceptedRequest", "input", "args") or dig(a, "request", "input", "args")
        step = tl.new(event, "update", f"update {name or '?'}", status="running", batch=False)
        step.detail = f"({shorten(payloads_text(args), 40)})"
        step.notes.append(f"input: {payloads_text(args) or 'none'}")
        sender = text_of(a, "acceptedRequest", "meta", "identity") or text_of(a, "request", "meta", "identity")
        if sender:
            step.notes.append(f"sent by: {sender}")
        step.notes.append("an update is a signal with an answer: the caller waits for its result")
        if update_id:
            tl.open[("update", update_id)] = step
            step.notes.append(f"update id: {update_id}")
    if what == "accepted":
        tl.open[("update accepted", event.event_id)] = step
        step.detail += " · accepted, running"
    elif what == "rejected":
        step.status = "failed"
        step.detail += f" · rejected: {failure_summary(a.get('failure'))}"
    elif what == "completed":
        failure = dig(a, "outcome", "failure")
        head = step.detail.split(" · ")[0]
        if failure:
            step.status, step.detail = "failed", f"{head} · failed: {failure_summary(failure)}"
        else:
            result = payloads_text(dig(a, "outcome", "success"))
            step.status, step.detail = "ok", f"{head} · → {shorten(result, 60)}"
            step.notes.append(f"result: {result}")


def _patch_data(details: Any) -> tuple[str, bool] | None:
    """``(patch id, deprecated)`` of a ``core_patch`` marker's ``patch-data`` payload."""
    values = payload_values(dig(details, "patch-data"))
    if not values or not isinstance(values[0], Mapping) or not isinstance(values[0].get("id"), str):
        return None
    return values[0]["id"], bool(values[0].get("deprecated"))


def on_marker(tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    name = text_of(a, "markerName") or "?"
    details = a.get("details")
    patch = _patch_data(details) if name == PATCH_MARKER else None
    if patch is not None:
        patch_id, deprecated = patch
        call = "deprecate_patch" if deprecated else "patched"
        # Not batched: the marker is recorded where the call is, before what the new code does.
        step = tl.new(event, "patch", f'{call}("{patch_id}")', batch=False)
        step.detail = "marker · old code gone" if deprecated else "marker · new code"
        step.notes += [
            f"patch id: {patch_id}",
            "runs that recorded this marker replay the new code path; older runs, without it, the old path"
            if not deprecated else "the old code path is gone; the marker lets runs that recorded the patch replay",
        ]
        tl.open[("patch", tl.batch)] = step
        return
    step = tl.new(event, "marker", f"marker {name}")
    values = [f"{key}={payloads_text(value, 60)}" for key, value in details.items()] if isinstance(details, Mapping) else []
    step.detail = ", ".join(values)
    if name == "Version":  # Go and Java SDKs' workflow.GetVersion
        change = payload_values(dig(details, "change-id"))
        version = payload_values(dig(details, "version"))
        if change and version:
            step.kind, step.title = "patch", f"version {change[0]} = {version[0]}"
    if a.get("failure"):
        step.status = "failed"
        step.detail = failure_summary(a.get("failure"))
    step.notes += values


def on_search_attributes(tl: Timeline, event: HistoryEvent) -> None:
    fields = dig(event.attributes, "searchAttributes", "indexedFields")
    names = list(fields) if isinstance(fields, Mapping) else []
    patch = tl.open.get(("patch", tl.batch))
    if patch is not None and names == [_CHANGE_VERSION]:
        # The SDK's bookkeeping for the patch just recorded: part of that step.
        patch.event_ids.append(event.event_id)
        patch.notes.append(f"{_CHANGE_VERSION} = {payloads_text({'payloads': [fields[_CHANGE_VERSION]]})}")
        del tl.open[("patch", tl.batch)]
        return
    step = tl.new(event, "search_attributes", "upsert search attributes")
    step.detail = ", ".join(names)
