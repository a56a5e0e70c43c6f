"""What the run explorer shows, computed from a :class:`~engine.run_snapshot.RunSnapshot`.

Plain Python and JSON-ready dicts, so it is tested without a browser: the graph's nodes and
what each stands for (:meth:`ExplorerModel.details`), the bars of the timeline
(:meth:`ExplorerModel.timeline`, see :mod:`kernel_ext._explorer_timeline`), a page of the
event table under a kind filter and a search (:meth:`ExplorerModel.table`), and the runs a
click away (:meth:`ExplorerModel.runs`). The widget (:mod:`kernel_ext.explorer`) only moves
these to the browser and back.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Mapping

from engine.run_snapshot import RunSnapshot
from kernel_ext._dot import cap, layered
from kernel_ext._explorer_timeline import Timeline, timeline_of
from kernel_ext._steps import Row, collapsed_layers, format_offset, history_timeline_rows, seconds_between
from kernel_ext._steps._read import failure_summary, shorten, text_of
from kernel_ext.display import _DETAIL_LIMIT, _all_attributes, _Names, _short_detail

PAGE_SIZE = 50
DETAIL_EVENTS = 40  # events listed in one node's details; the table has the rest
DETAIL_ATTEMPTS = 100  # attempts listed in one node's details (a collapsed loop has thousands)
COLLAPSE_THRESHOLD = 5  # as run_graph's default: the node names must match its graph
# A note for another run hung off step s3 (s3l0), or a node of a child run drawn inside (s3l0cs2).
_LINK_NODE = re.compile(r"^(s\d+)l(\d+)")


def run_key(workflow_id: str, run_id: str) -> str:
    """How the browser names a run to switch to."""
    return f"{workflow_id}\n{run_id}"


_CLOSE_STATUS = {
    "WorkflowExecutionCompleted": "COMPLETED", "WorkflowExecutionFailed": "FAILED", "WorkflowExecutionCanceled": "CANCELED",
    "WorkflowExecutionTerminated": "TERMINATED", "WorkflowExecutionTimedOut": "TIMED_OUT",
    "WorkflowExecutionContinuedAsNew": "CONTINUED_AS_NEW",
}


def _grandchildren(histories: Mapping[str, Any], workflow_id: str, depth: int, seen: set[str]) -> list[dict[str, Any]]:
    """The child tree below child ``workflow_id``, from the child histories the snapshot holds
    (three levels deep): each run a click away, indented by ``depth``."""
    history = histories.get(workflow_id)
    if history is None:
        return []
    started: dict[str, str] = {}
    initiated: list[tuple[int, str, str]] = []
    for event in history.events:
        a = event.attributes
        if event.event_type == "StartChildWorkflowExecutionInitiated":
            initiated.append((event.event_id, text_of(a, "workflowId"), text_of(a, "workflowType", "name")))
        elif event.event_type == "ChildWorkflowExecutionStarted":
            started[text_of(a, "workflowExecution", "workflowId")] = text_of(a, "workflowExecution", "runId")
    out: list[dict[str, Any]] = []
    for event_id, child_id, child_type in initiated:
        if child_id in seen:
            continue
        run_id = started.get(child_id, "")
        child = histories.get(child_id)
        last = child.events[-1].event_type if child is not None and child.events else ""
        status = _CLOSE_STATUS.get(last, "RUNNING") if child is not None else ("not started" if not run_id else "not read")
        out.append({"key": run_key(child_id, run_id) if run_id else "", "workflow_id": child_id, "run_id": run_id,
                    "type": child_type, "status": status, "event": event_id, "depth": depth})
        out += _grandchildren(histories, child_id, depth + 1, seen | {child_id})
    return out


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


class ExplorerModel:
    """The explorer's content for one snapshot of a run."""

    def __init__(self, snapshot: RunSnapshot, *, max_nodes: int = 200) -> None:
        self.snapshot = snapshot
        self.max_nodes = max_nodes
        self.start = snapshot.history.events[0].event_time if snapshot.history.events else None

    # ------------------------------------------------------------------ the graph
    @functools.cached_property
    def rows(self) -> list[Row]:
        s = self.snapshot
        return history_timeline_rows(s.history, s.attempts, s.faults)

    @functools.cached_property
    def nodes(self) -> dict[str, Row]:
        """Graph node name -> the step it draws, named as :func:`kernel_ext.graphs.run_graph`
        names them (the same rows, collapsed and capped the same way)."""
        if not self.rows:
            return {}
        layers = cap(collapsed_layers(self.rows, COLLAPSE_THRESHOLD), self.max_nodes)
        _, names = layered(layers, "")
        return {name: row for layer, layer_names in zip(layers, names) for row, name in zip(layer, layer_names)}

    @functools.cached_property
    def dot(self) -> str:
        from kernel_ext.graphs import run_graph

        s = self.snapshot
        return run_graph(s.history, s.attempts, max_nodes=self.max_nodes, children=s.child_histories, faults=s.faults, rows=self.rows)

    def _linked_node(self, name: str) -> tuple[Row, dict[str, str]] | None:
        """A note drawn for another run (``s3l0``, or a node of a child run drawn nested
        inside, ``s3l0c...``): the step it hangs off and the link."""
        found = _LINK_NODE.match(name)
        row = self.nodes.get(found.group(1)) if found else None
        if found is None or row is None:
            return None
        links = row.get("links") or []
        number = int(found.group(2))
        return (row, dict(links[number])) if number < len(links) else None

    # ------------------------------------------------------------------ details
    def _event_detail(self, event_id: int) -> dict[str, Any] | None:
        events = self.snapshot.history.events
        event = events[event_id - 1] if 0 < event_id <= len(events) and events[event_id - 1].event_id == event_id else None
        if event is None:
            event = next((e for e in events if e.event_id == event_id), None)
        if event is None:
            return None
        return {
            "id": event.event_id,
            "type": event.event_type,
            "time": _iso(event.event_time),
            "offset": format_offset(seconds_between(self.start, event.event_time)),
            "attributes": _all_attributes(event),
        }

    def _attempts(self, row: Row) -> list[dict[str, Any]]:
        if row["kind"] != "activity" or not row["event_ids"]:
            return []
        scheduled = {row["event_ids"][0]} if row.get("count", 1) == 1 else set(row["event_ids"])
        out: list[dict[str, Any]] = []
        for attempt in self.snapshot.attempts:
            if attempt.scheduled_event_id not in scheduled:
                continue
            if len(out) == DETAIL_ATTEMPTS:
                break
            took = seconds_between(attempt.started_at, attempt.ended_at)
            out.append({
                "scheduled_event_id": attempt.scheduled_event_id,
                "attempt": attempt.attempt,
                "started": format_offset(seconds_between(self.start, attempt.started_at)),
                "ended": format_offset(seconds_between(self.start, attempt.ended_at)),
                "took": f"{took:.3f}s" if took is not None else "",
                "outcome": attempt.outcome,
                "failure": failure_summary(attempt.failure),
                "stack_trace": text_of(attempt.failure, "stackTrace").strip(),
                "identity": attempt.identity,
            })
        return out

    def _attempt_count(self, row: Row) -> int:
        if row["kind"] != "activity" or not row["event_ids"]:
            return 0
        scheduled = {row["event_ids"][0]} if row.get("count", 1) == 1 else set(row["event_ids"])
        return sum(1 for attempt in self.snapshot.attempts if attempt.scheduled_event_id in scheduled)

    def _row_details(self, row: Row, key: str) -> dict[str, Any]:
        ids = list(row["event_ids"])
        events = [d for d in (self._event_detail(i) for i in ids[:DETAIL_EVENTS]) if d is not None]
        links = [
            {**link, "key": run_key(link.get("workflow_id") or self.snapshot.workflow_id, link["run_id"])}
            for link in row.get("links") or []
            if link.get("run_id")
        ]
        return {
            "key": key,
            "title": row["title"],
            "status": row["status"],
            "kind": row["kind"],
            "detail": row["detail"],
            "notes": row["tooltip"],
            "events": events,
            "more_events": max(len(ids) - DETAIL_EVENTS, 0),
            "attempts": self._attempts(row),
            "more_attempts": max(self._attempt_count(row) - DETAIL_ATTEMPTS, 0),
            "links": links,
        }

    def details(self, key: str) -> dict[str, Any]:
        """What a click on ``key`` opens: ``node:<name>`` (a graph node), ``event:<id>`` (a
        table row or a bar's event) or ``step:<index>`` (a step of :attr:`rows`). An unknown
        key gives ``{"key": key, "missing": ...}`` rather than an error: the graph may have
        been redrawn between the click and now."""
        kind, _, name = key.partition(":")
        if kind == "node":
            row = self.nodes.get(name)
            if row is not None:
                return self._row_details(row, key)
            linked = self._linked_node(name)
            if linked is not None:
                row, link = linked
                details = self._row_details(row, key)
                details["links"] = [l for l in details["links"] if l["run_id"] == link.get("run_id")] or details["links"]
                return details
        elif kind == "event" and name.isdigit():
            event_id = int(name)
            row = next((r for r in self.rows if event_id in r["event_ids"]), None)
            if row is not None:
                details = self._row_details(row, key)
                # The clicked event first: the reader asked about it.
                details["events"].sort(key=lambda e: e["id"] != event_id)
                if all(e["id"] != event_id for e in details["events"]):  # past the events listed
                    found = self._event_detail(event_id)
                    if found is not None:
                        details["events"].insert(0, found)
                return details
            found = self._event_detail(event_id)
            if found is not None:
                return {"key": key, "title": found["type"], "status": "info", "kind": "event", "detail": "",
                        "notes": "", "events": [found], "more_events": 0, "attempts": [], "more_attempts": 0, "links": []}
        elif kind == "step" and name.isdigit() and int(name) < len(self.rows):
            return self._row_details(self.rows[int(name)], key)
        return {"key": key, "missing": f"nothing to show for {name or key!r}: the view may have been redrawn"}

    # ------------------------------------------------------------------ timeline
    @functools.cached_property
    def timeline(self) -> Timeline:
        return timeline_of(self.snapshot, self.rows)

    # ------------------------------------------------------------------ events
    # A row's text decodes the event's payloads: for a big history only the rows of the page
    # shown are made, and all of them only once a search needs their text.
    @functools.cached_property
    def _names(self) -> _Names:
        return _Names(self.snapshot.history)

    def _event_row(self, index: int) -> tuple[str, str, str, str]:
        row = self._rows_made.get(index)
        if row is None:
            event = self.snapshot.history.events[index]
            detail = shorten(_short_detail(event, self._names), _DETAIL_LIMIT)
            offset = format_offset(seconds_between(self.start, event.event_time))
            row = self._rows_made[index] = (str(event.event_id), offset, event.event_type or "?", detail)
        return row

    @functools.cached_property
    def _rows_made(self) -> dict[int, tuple[str, str, str, str]]:
        return {}

    @functools.cached_property
    def _haystacks(self) -> list[str]:
        return [" ".join(self._event_row(i)).lower() for i in range(len(self.snapshot.history.events))]

    def kinds(self) -> list[dict[str, Any]]:
        """Event types in the run, each with how many events it has, in order of first use."""
        counts: dict[str, int] = {}
        for event in self.snapshot.history.events:
            counts[event.event_type or "?"] = counts.get(event.event_type or "?", 0) + 1
        return [{"kind": kind, "count": count} for kind, count in counts.items()]

    def table(self, kind: str = "", search: str = "", page: int = 0, page_size: int = PAGE_SIZE) -> dict[str, Any]:
        """One page of the events of type ``kind`` (all if ``""``) whose text holds every
        word of ``search`` (any case)."""
        words = search.lower().split()
        events = self.snapshot.history.events
        matches = [
            i for i, event in enumerate(events)
            if (not kind or (event.event_type or "?") == kind) and (not words or all(w in self._haystacks[i] for w in words))
        ]
        pages = max((len(matches) + page_size - 1) // page_size, 1)
        page = min(max(page, 0), pages - 1)
        shown = [self._event_row(i) for i in matches[page * page_size : (page + 1) * page_size]]
        return {
            "rows": [{"id": int(r[0]), "time": r[1], "type": r[2], "detail": r[3]} for r in shown],
            "total": len(matches),
            "all": len(events),
            "page": page,
            "pages": pages,
        }

    # ------------------------------------------------------------------ runs
    def runs(self) -> dict[str, Any]:
        """The continue-as-new chain and the child runs, each with the key that opens it."""
        s = self.snapshot
        chain = [
            {"key": run_key(r.workflow_id, r.run_id), "run_id": r.run_id, "status": r.status.name,
             "events": r.history_length, "current": r.run_id == s.run_id, "number": i + 1}
            for i, r in enumerate(s.chain)
        ]
        children = []
        for c in s.children:
            children.append(
                {"key": run_key(c.workflow_id, c.run_id) if c.run_id and c.status is not None else "",
                 "workflow_id": c.workflow_id, "run_id": c.run_id, "type": c.workflow_type,
                 "status": c.status.name if c.status is not None else ("not started" if not c.run_id else "not in this database"),
                 "event": c.initiated_event_id, "depth": 0}
            )
            children += _grandchildren(s.child_histories, c.workflow_id, 1, {s.workflow_id, c.workflow_id})
        parent: dict[str, str] = {}
        start = s.history.events[0].attributes if s.history.events else {}
        if isinstance(start, Mapping) and text_of(start, "parentWorkflowExecution", "workflowId"):
            wid = text_of(start, "parentWorkflowExecution", "workflowId")
            rid = text_of(start, "parentWorkflowExecution", "runId")
            parent = {"workflow_id": wid, "run_id": rid, "key": run_key(wid, rid) if rid else ""}
        return {"chain": chain, "children": children, "parent": parent}

    def header(self) -> dict[str, Any]:
        s = self.snapshot
        final = next((r for r in reversed(self.rows) if r["kind"] == "result"), None)
        return {
            "workflow_id": s.workflow_id,
            "run_id": s.run_id,
            "type": s.workflow_type,
            "task_queue": s.task_queue,
            "status": s.status.name,
            "closed": s.closed,
            "events": len(s.history.events),
            "start": _iso(s.start_time),
            "close": _iso(s.close_time),
            "outcome": final["detail"] if final else "",
            "failure": failure_summary(s.failure) if s.failure else "",
        }
