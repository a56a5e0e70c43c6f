"""Auto-reset points: where ``reset`` can take a run back to, one per worker build.

Temporal's rules (its history service, checked against a dev server; the differential suite's
README has the details): every completed workflow task offers the pair (binary checksum,
build id) of the worker that completed it (``workerVersion.buildId`` on the
``WorkflowTaskCompleted`` event; empty for a worker that sends neither). The first completion
of each pair adds a point: ``runId``, ``firstWorkflowTaskCompletedId`` (that event's id),
``createTime``, ``resettable`` (false while the run waits for a child, a signal it sends or a
cancel it requests: the server refuses to reset there) and the ``buildId`` (or
``binaryChecksum``). A run keeps at most 20 points, the newest. Continue-as-new (and a cron
chain's next run) carries them to the next run's ``WorkflowExecutionStarted.prevAutoResetPoints``;
the points of the run that continued get an ``expireTime`` (the new run's start plus the
namespace's retention), and expired points are dropped.

The engine does not keep the points in the run's row: they are a function of the run's
history (its started event's ``prevAutoResetPoints`` and its workflow-task completions), so
they are computed when asked for (describe, continue-as-new, a cron chain's next run).
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

from engine._api.durations import from_timestamp, to_timestamp
from engine.history import HistoryEvent

MAX_POINTS = 20  # Temporal's default (history.historyMaxAutoResetPoints)
# A dev server's namespace retention (its default namespace's, one day): the engine deletes
# no history, but the points it hands to Temporal's tools say when they would expire there.
RETENTION = timedelta(days=1)

# Events that start and end what makes a point not resettable (Temporal's CheckResettable).
_PENDING_STARTS = {
    "StartChildWorkflowExecutionInitiated": "child",
    "SignalExternalWorkflowExecutionInitiated": "signal",
    "RequestCancelExternalWorkflowExecutionInitiated": "cancel",
}
_PENDING_ENDS = {
    "StartChildWorkflowExecutionFailed": "child",
    "ChildWorkflowExecutionCompleted": "child",
    "ChildWorkflowExecutionFailed": "child",
    "ChildWorkflowExecutionCanceled": "child",
    "ChildWorkflowExecutionTerminated": "child",
    "ChildWorkflowExecutionTimedOut": "child",
    "ExternalWorkflowExecutionSignaled": "signal",
    "SignalExternalWorkflowExecutionFailed": "signal",
    "ExternalWorkflowExecutionCancelRequested": "cancel",
    "RequestCancelExternalWorkflowExecutionFailed": "cancel",
}


def _time(value: datetime | None) -> str:
    return to_timestamp(value) if value is not None else ""


def auto_reset_points(run_id: str, events: Iterable[HistoryEvent]) -> list[dict[str, Any]]:
    """The run's auto-reset points (Temporal's ``ResetPointInfo`` JSON), oldest first."""
    points: list[dict[str, Any]] = []
    pending = {"child": 0, "signal": 0, "cancel": 0}
    for event in events:
        attrs: Mapping[str, Any] = event.attributes or {}
        if event.event_type == "WorkflowExecutionStarted":
            points = copy.deepcopy(list((attrs.get("prevAutoResetPoints") or {}).get("points") or []))
        elif event.event_type in _PENDING_STARTS:
            pending[_PENDING_STARTS[event.event_type]] += 1
        elif event.event_type in _PENDING_ENDS:
            kind = _PENDING_ENDS[event.event_type]
            pending[kind] = max(0, pending[kind] - 1)
        elif event.event_type == "WorkflowTaskCompleted":
            checksum = str(attrs.get("binaryChecksum") or "")
            build_id = str((attrs.get("workerVersion") or {}).get("buildId") or "")
            if any(str(p.get("binaryChecksum") or "") == checksum and str(p.get("buildId") or "") == build_id for p in points):
                continue
            point: dict[str, Any] = {}
            if checksum:
                point["binaryChecksum"] = checksum
            point.update({
                "runId": run_id,
                "firstWorkflowTaskCompletedId": str(event.event_id),
                "createTime": _time(event.event_time),
                "resettable": not any(pending.values()),
            })
            if build_id:
                point["buildId"] = build_id
            points = (points + [point])[-MAX_POINTS:]
    return points


def carried_over(points: list[dict[str, Any]], previous_run_id: str, new_start: datetime) -> list[dict[str, Any]]:
    """The points a continued run's start carries (``prevAutoResetPoints``): the previous run's
    get an expiry time, expired ones are dropped."""
    expire = to_timestamp(new_start + RETENTION)
    kept = []
    for point in points:
        if point.get("expireTime") and from_timestamp(str(point["expireTime"])) < new_start:
            continue
        point = dict(point)
        if point.get("runId") == previous_run_id:
            point = _with_expiry(point, expire)
        kept.append(point)
    return kept


def _with_expiry(point: dict[str, Any], expire: str) -> dict[str, Any]:
    """Temporal's field order: ... createTime, expireTime, resettable, buildId."""
    out: dict[str, Any] = {}
    for key, value in point.items():
        out[key] = value
        if key == "createTime":
            out["expireTime"] = expire
    out.setdefault("expireTime", expire)
    return out


def find_point(points: list[dict[str, Any]], *, build_id: str | None = None) -> dict[str, Any] | None:
    """The first point of ``build_id`` (any build when None)."""
    for point in points:
        if build_id is None or point.get("buildId") == build_id:
            return point
    return None


_RELEVANT = ("WorkflowExecutionStarted", "WorkflowTaskCompleted", *_PENDING_STARTS, *_PENDING_ENDS)


def read_points(conn: Any, run_id: str) -> list[dict[str, Any]]:
    """The run's auto-reset points, from the events they depend on only (database thread)."""
    from engine._persistence.event_rows import RUN_KEY, event_datetime, type_name, type_value, unpack

    codes = [type_value(name) for name in _RELEVANT]
    rows = conn.execute(
        "SELECT event_id, event_type, event_time, attributes FROM events WHERE run = " + RUN_KEY
        + f" AND event_type IN ({', '.join('?' * len(codes))}) ORDER BY event_id",
        (run_id, *codes),
    )
    events = (HistoryEvent(i, type_name(t), event_datetime(w), unpack(t, a)) for i, t, w, a in rows)
    return auto_reset_points(run_id, events)
