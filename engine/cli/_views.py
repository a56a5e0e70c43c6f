"""Text and JSON shapes of runs and histories, after the temporal CLI's."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from engine._conversion.search_attributes import encode_typed, shown_search_attributes
from engine.cli._common import STATUS_COLOUR, Out, iso, rfc3339, run_time
from engine.client import WorkflowExecutionDescription, WorkflowExecutionStatus
from engine.errors import HistoryFormatError
from engine.history import History, HistoryEvent, decode_payload

# Close event -> (status as the temporal CLI prints it in Results, list-filter name).
CLOSE_EVENTS = {
    "WorkflowExecutionCompleted": ("COMPLETED", "Completed"),
    "WorkflowExecutionFailed": ("FAILED", "Failed"),
    "WorkflowExecutionTimedOut": ("TIMED_OUT", "TimedOut"),
    "WorkflowExecutionCanceled": ("CANCELED", "Canceled"),
    "WorkflowExecutionTerminated": ("TERMINATED", "Terminated"),
    "WorkflowExecutionContinuedAsNew": ("CONTINUED_AS_NEW", "ContinuedAsNew"),
}
ID_WIDTH = 5
TIME_WIDTH = 20


def status_name(status: WorkflowExecutionStatus) -> str:
    """``CONTINUED_AS_NEW`` -> ``ContinuedAsNew``: the spelling list filters use."""
    return status.name.title().replace("_", "")


def jsonable(value: Any) -> Any:
    """A decoded value as plain JSON (query answers may be dataclasses)."""
    def default(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return dataclasses.asdict(obj)
        if isinstance(obj, (set, frozenset, tuple)):
            return list(obj)
        if isinstance(obj, datetime):
            return obj.isoformat()
        if isinstance(obj, bytes):
            return base64.b64encode(obj).decode()
        return str(obj)

    return json.loads(json.dumps(value, default=default, ensure_ascii=False))


# ---------------------------------------------------------------------- payloads
def _encoding(payload: Mapping[str, Any]) -> str:
    raw = (payload.get("metadata") or {}).get("encoding")
    try:
        return base64.b64decode(raw).decode() if raw else ""
    except (ValueError, UnicodeDecodeError):
        return "?"


# What payload converters write; any other encoding came out of a payload codec.
_CONVERTER_ENCODINGS = frozenset({"json/plain", "binary/null", "binary/plain", "json/protobuf", "binary/protobuf"})


def sealed_encoding(value: Any) -> str | None:
    """The encoding of the first payload in ``value`` (attributes, a failure, a payload) that a
    payload codec wrote, or None: what dlab cannot show without that codec."""
    if isinstance(value, Mapping):
        if _is_payload(value):
            encoding = _encoding(value)
            return encoding if encoding and encoding not in _CONVERTER_ENCODINGS else None
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = sealed_encoding(item)
            if found:
                return found
    return None


def _sealed_text(encoding: str) -> str:
    return "<encrypted>" if "encrypted" in encoding else f"<encoded: {encoding}>"


def payload_text(payload: Any) -> str:
    """A payload as JSON text, or a note when it is not JSON (binary, encrypted by a codec)."""
    if isinstance(payload, Mapping):
        sealed = sealed_encoding(payload)
        if sealed:
            return _sealed_text(sealed)
    try:
        value = decode_payload(payload)
    except HistoryFormatError as e:
        return f"<unreadable payload: {e}>"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes, encoding {_encoding(payload) or 'unknown'}>"
    return json.dumps(value, ensure_ascii=False)


def _is_payload(value: Mapping[str, Any]) -> bool:
    return "metadata" in value and set(value) <= {"metadata", "data", "externalPayloads"}


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Attributes as ``taskQueue.name: q`` / ``input[0]: "Ada"`` lines (payloads decoded)."""
    if isinstance(value, Mapping):
        if prefix and _is_payload(value):
            return [(prefix, payload_text(value))]
        if "message" in value and sealed_encoding(value.get("encodedAttributes")):
            value = {**value, "message": failure_text({"message": "", "encodedAttributes": value["encodedAttributes"]})}
        payloads = value.get("payloads") if set(value) == {"payloads"} else None
        if isinstance(payloads, list):
            return [(f"{prefix}[{i}]", payload_text(p)) for i, p in enumerate(payloads)]
        pairs: list[tuple[str, str]] = []
        for key in sorted(value):
            pairs += flatten(value[key], f"{prefix}.{key}" if prefix else key)
        return pairs
    if isinstance(value, list):
        pairs = []
        for i, item in enumerate(value):
            pairs += flatten(item, f"{prefix}[{i}]")
        return pairs
    if value is None:
        return []
    return [(prefix, json.dumps(value) if isinstance(value, bool) else str(value))]


def failure_text(failure: Mapping[str, Any] | None) -> str:
    """A failure and its causes on one line: ``Activity task failed: refused: no (Refused)``."""
    parts = []
    while isinstance(failure, Mapping):
        sealed = sealed_encoding(failure.get("encodedAttributes"))
        # Without the codec the stored message is only a placeholder ("Encoded failure").
        message = _sealed_text(sealed) if sealed else str(failure.get("message") or "")
        app = failure.get("applicationFailureInfo") or {}
        timeout = (failure.get("timeoutFailureInfo") or {}).get("timeoutType", "")
        kind = app.get("type") or timeout.replace("TIMEOUT_TYPE_", "").lower()
        parts.append(f"{message} ({kind})" if kind and kind not in message else message)
        failure = failure.get("cause")
    return ": ".join(p for p in parts if p) or "(no message)"


# ---------------------------------------------------------------------- runs
def start_card(out: Out, workflow_id: str, run_id: str, workflow_type: str, namespace: str, task_queue: str) -> None:
    out.fields("Running execution:", [("WorkflowId", workflow_id), ("RunId", run_id), ("Type", workflow_type), ("Namespace", namespace), ("TaskQueue", task_queue)])


def start_json(workflow_id: str, run_id: str, workflow_type: str, namespace: str, task_queue: str) -> dict[str, Any]:
    return {"workflowId": workflow_id, "runId": run_id, "type": workflow_type, "namespace": namespace, "taskQueue": task_queue}


def execution_info(d: WorkflowExecutionDescription) -> dict[str, Any]:
    """A run in the shape of Temporal's ``WorkflowExecutionInfo`` JSON (what list/describe print)."""
    info: dict[str, Any] = {
        "execution": {"workflowId": d.id, "runId": d.run_id},
        "type": {"name": d.workflow_type},
        "startTime": rfc3339(d.start_time),
        "status": f"WORKFLOW_EXECUTION_STATUS_{d.status.name}",
        "historyLength": str(d.history_length),
        "taskQueue": d.task_queue,
    }
    if d.close_time is not None:
        info["closeTime"] = rfc3339(d.close_time)
    if d.raw_memo:
        info["memo"] = {"fields": d.raw_memo}
    if d.typed_search_attributes:
        info["searchAttributes"] = {"indexedFields": encode_typed(d.typed_search_attributes)}
    if d.auto_reset_points:
        info["autoResetPoints"] = {"points": [dict(p) for p in d.auto_reset_points]}
    return info


def list_table(out: Out, runs: Sequence[WorkflowExecutionDescription]) -> None:
    rows = [(status_name(r.status), r.id, r.workflow_type, iso(r.start_time)) for r in runs]
    out.table(("Status", "WorkflowId", "Type", "StartTime"), rows, colours={0: STATUS_COLOUR})


def describe_text(
    out: Out, d: WorkflowExecutionDescription, namespace: str, history: History, memo: Sequence[tuple[str, str]] = ()
) -> None:
    name = status_name(d.status)
    out.fields(
        "Execution Info:",
        [
            ("WorkflowId", d.id), ("RunId", d.run_id), ("Type", d.workflow_type), ("Namespace", namespace),
            ("TaskQueue", d.task_queue), ("Status", name), ("StartTime", iso(d.start_time)),
            ("CloseTime", iso(d.close_time) or None), ("HistoryLength", d.history_length),
        ],
        colours={"Status": STATUS_COLOUR[name]},
    )
    out.line()
    out.line(f"Pending Activities: {d.pending_activities}")
    out.line(f"Pending Timers: {d.pending_timers}")
    attributes = shown_search_attributes(d.typed_search_attributes)
    if attributes:
        out.line()
        out.fields("Search Attributes:", attributes)
    if memo:
        out.line()
        out.fields("Memo:", list(memo))
    if d.auto_reset_points:
        out.line()
        out.line(out.paint("Auto Reset Points:", "bold"))
        rows = [
            (p.get("buildId") or p.get("binaryChecksum") or "-", p.get("runId", ""), p.get("firstWorkflowTaskCompletedId", ""),
             p.get("createTime", ""), "yes" if p.get("resettable") else "no")
            for p in d.auto_reset_points
        ]
        out.table(("BuildId", "RunId", "EventId", "CreateTime", "Resettable"), rows)
    if d.status != WorkflowExecutionStatus.RUNNING:
        out.line()
        results(out, history)


# ---------------------------------------------------------------------- histories
def progress_header(out: Out) -> None:
    out.line(out.paint("Progress:", "bold"))
    out.line(out.paint(f"  {'ID'.rjust(ID_WIDTH)}  {'Time'.ljust(TIME_WIDTH)}  Type", "bold"))


def progress_rows(out: Out, events: Iterable[HistoryEvent]) -> None:
    """Fixed-width rows, so that rows printed as events arrive stay aligned."""
    for e in events:
        colour = STATUS_COLOUR.get(CLOSE_EVENTS.get(e.event_type, ("", ""))[1])
        if colour is None and e.event_type.endswith(("Failed", "TimedOut")):
            colour = "red"
        out.line(f"  {str(e.event_id).rjust(ID_WIDTH)}  {iso(e.event_time).ljust(TIME_WIDTH)}  {out.paint(e.event_type, colour)}")


def detailed_events(out: Out, events: Iterable[HistoryEvent]) -> None:
    for e in events:
        out.line(out.paint(f"--------------- [{e.event_id}] {e.event_type} ---------------", "bold"))
        pairs = [("eventTime", rfc3339(e.event_time) or "")] + flatten(dict(e.attributes))
        for key, text in sorted(pairs):
            out.line(f"{key}: {text}".replace("\n", "\n    "))
        out.line()


def close_event(history: History) -> HistoryEvent | None:
    last = history.events[-1] if history.events else None
    return last if last is not None and last.event_type in CLOSE_EVENTS else None


def results(out: Out, history: History) -> None:
    """The ``Results:`` block of a closed run."""
    last = close_event(history)
    if last is None:
        return
    status = CLOSE_EVENTS[last.event_type][0]
    attrs = last.attributes
    pairs: list[tuple[str, Any]] = [("RunTime", run_time(_run_seconds(history, last))), ("Status", status)]
    if last.event_type == "WorkflowExecutionCompleted":
        payloads = (attrs.get("result") or {}).get("payloads") or []
        pairs.append(("Result", payload_text(payloads[0]) if payloads else "null"))
        if payloads:
            pairs.append(("ResultEncoding", _encoding(payloads[0])))
    elif last.event_type == "WorkflowExecutionFailed":
        pairs.append(("Failure", failure_text(attrs.get("failure"))))
    elif last.event_type == "WorkflowExecutionTerminated":
        pairs.append(("Reason", attrs.get("reason") or ""))
    elif last.event_type == "WorkflowExecutionContinuedAsNew":
        pairs.append(("NewRunId", attrs.get("newExecutionRunId", "")))
    colour = STATUS_COLOUR[CLOSE_EVENTS[last.event_type][1]]
    out.fields("Results:", pairs, colours={"Status": colour})


def _run_seconds(history: History, last: HistoryEvent) -> float:
    first = history.events[0].event_time
    if first is None or last.event_time is None:  # an imported history may have no times
        return 0.0
    return (last.event_time - first).total_seconds()


def outcome_json(history: History) -> dict[str, Any]:
    """``status``, ``closeEvent`` and ``result`` (decoded) of a closed run, as temporal prints them."""
    last = close_event(history)
    if last is None:
        return {"status": "RUNNING"}
    document: dict[str, Any] = {
        "durationMillis": round(_run_seconds(history, last) * 1000),
        "status": CLOSE_EVENTS[last.event_type][0],
        "closeEvent": History(history.workflow_id, (last,)).to_json_dict()["events"][0],
    }
    if last.event_type == "WorkflowExecutionCompleted":
        payloads = (last.attributes.get("result") or {}).get("payloads") or []
        try:
            document["result"] = jsonable(decode_payload(payloads[0])) if payloads else None
        except HistoryFormatError:
            document["result"] = None
    return document


def failed_message(history: History) -> str | None:
    """The one-line error of a run that did not complete, or None if it completed."""
    last = close_event(history)
    if last is None or last.event_type == "WorkflowExecutionCompleted":
        return None
    status = CLOSE_EVENTS[last.event_type][1]
    if last.event_type == "WorkflowExecutionFailed":
        return f"workflow failed: {failure_text(last.attributes.get('failure'))}"
    if last.event_type == "WorkflowExecutionTerminated":
        reason = last.attributes.get("reason")
        return "workflow terminated" + (f": {reason}" if reason else "")
    return {"TimedOut": "workflow timed out", "Canceled": "workflow canceled"}.get(status, f"workflow {status}")
