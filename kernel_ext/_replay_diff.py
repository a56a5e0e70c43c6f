"""Comparing event by event: two runs (``RunDiff``), or one history replayed with the code
that recorded it and with new code (``CodeDiff``).

``RunDiff`` aligns the two histories' steps (workflow task bookkeeping left out, so runs
whose signals arrived in other workflow tasks still line up) and lists what differs: a step
only one run took, or the same step with another input or result; both run graphs are drawn
side by side. ``CodeDiff`` lists, for every event of the history that records a command, the
command and line of the old code and of the new code, up to where the new code diverges.
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from engine.history import History, HistoryEvent, decode_payloads
from engine.replay import ReplayTrace, TraceStep
from kernel_ext._html import MIME_TYPES, graph_html, html_table, text_table, wanted
from kernel_ext.graphs import render_svg, run_graph

__all__ = ["RunDiff", "CodeDiff", "step_key"]

_BOOKKEEPING = frozenset({"WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted"})
_NAMES = (("activityType", "activity"), ("workflowType", "workflow"), ("signalName", "signal"), ("markerName", "marker"), ("timerId", "timer"))
_VALUES = ("input", "result", "details")


def step_key(event: HistoryEvent) -> str:
    """What a step is, whatever its ids and times: the event type and what it names."""
    attrs = event.attributes
    for key, label in _NAMES:
        value = attrs.get(key)
        if isinstance(value, Mapping):
            value = value.get("name")
        if value:
            return f"{event.event_type} {label} {value}"
    return event.event_type


def _values(event: HistoryEvent) -> str:
    parts = []
    for key in _VALUES:
        if key in event.attributes:
            try:
                decoded = decode_payloads(event.attributes.get(key))
            except Exception:  # noqa: BLE001 - an encoded or odd payload: compare its JSON
                decoded = [event.attributes.get(key)]
            parts.append(f"{key} {decoded!r}")
    failure = event.attributes.get("failure")
    if isinstance(failure, Mapping):
        parts.append(f"failure {failure.get('message', '')!r}")
    duration = event.attributes.get("startToFireTimeout")
    if duration:
        parts.append(f"after {duration}")
    return "; ".join(parts)


def _steps(history: History) -> list[HistoryEvent]:
    return [e for e in history.events if e.event_type not in _BOOKKEEPING]


def _label(history: History) -> str:
    return f"{history.workflow_id} ({history.run_id[-8:] if history.run_id else 'file'})"


class _Display:
    title: str
    header: tuple[str, ...]

    def rows(self) -> list[tuple[str, ...]]:
        raise NotImplementedError

    def summary(self) -> str:
        raise NotImplementedError

    def _graphs_html(self) -> str:
        return ""

    def to_text(self) -> str:
        rows = self.rows()
        table = text_table(self.header, rows) if rows else ""
        return f"{self.title}: {self.summary()}" + (f"\n\n{table}" if table else "")

    def to_html(self) -> str:
        rows = self.rows()
        table = html_table(self.header, rows, status_column=1, status_colours=_STATUS_COLOURS) if rows else ""
        return f"<div><p><strong>{html.escape(self.title)}</strong>: {html.escape(self.summary())}</p>{table}{self._graphs_html()}</div>"

    def _repr_mimebundle_(self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any) -> dict[str, str]:
        makers = {"text/plain": self.to_text, "text/html": self.to_html}
        return {mime: makers[mime]() for mime in MIME_TYPES if mime in wanted(include, exclude)}

    def __repr__(self) -> str:
        return self.to_text()


_STATUS_COLOURS = {"same": "ok", "changed": "retried", "only left": "failed", "only right": "failed", "diverges": "failed", "not reached": "cancelled"}


@dataclass
class _Row:
    status: str
    left: HistoryEvent | None
    right: HistoryEvent | None


class RunDiff(_Display):
    """Two runs compared step by step (``%replay --workflow-id A --compare B``)."""

    header = ("#", "difference", "left", "right")

    def __init__(self, left: History, right: History) -> None:
        self.left, self.right = left, right
        self.title = f"{_label(left)} against {_label(right)}"
        self.differences = self._compare()

    def _compare(self) -> list[_Row]:
        a, b = _steps(self.left), _steps(self.right)
        matcher = difflib.SequenceMatcher(a=[step_key(e) for e in a], b=[step_key(e) for e in b], autojunk=False)
        out: list[_Row] = []
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                out += [_Row("changed", x, y) for x, y in zip(a[i1:i2], b[j1:j2]) if _values(x) != _values(y)]
                continue
            pairs = max(i2 - i1, j2 - j1)
            for k in range(pairs):
                x = a[i1 + k] if i1 + k < i2 else None
                y = b[j1 + k] if j1 + k < j2 else None
                status = "changed" if x is not None and y is not None else ("only left" if y is None else "only right")
                out.append(_Row(status, x, y))
        return out

    @property
    def same(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        if self.same:
            return f"the same {len(_steps(self.left))} steps with the same values"
        first = self.differences[0]
        where = first.left or first.right
        assert where is not None
        return f"{len(self.differences)} difference(s); the first at event {where.event_id} ({step_key(where)})"

    def rows(self) -> list[tuple[str, ...]]:
        def side(event: HistoryEvent | None) -> str:
            if event is None:
                return "—"
            values = _values(event)
            return f"{event.event_id} {step_key(event)}" + (f": {values}" if values else "")

        return [(str(n), row.status, side(row.left), side(row.right)) for n, row in enumerate(self.differences, start=1)]

    def _graphs_html(self) -> str:
        halves = "".join(
            f'<div style="flex: 1; min-width: 0"><p><em>{html.escape(_label(h))}</em></p>{graph_html(run_graph(h), render_svg)}</div>'
            for h in (self.left, self.right)
        )
        return f'<div class="dlab-diff-graphs" style="display: flex; gap: 12px">{halves}</div>'


class CodeDiff(_Display):
    """One history replayed with the old and with the new code: per recorded command, each
    version's command and line (``%replay ... --old OldClass --diff``)."""

    header = ("event", "status", "recorded, by the old code", "the new code")

    def __init__(self, old: ReplayTrace, new: ReplayTrace) -> None:
        self.old, self.new = old, new
        self.title = f"{old.history.workflow_id}: the code that recorded it against new code"

    def summary(self) -> str:
        if self.new.ok:
            return f"the new code agrees with all {len(self.new.history)} events"
        d = self.new.divergence
        if d is None:
            return f"the new code fails: {self.new.steps[-1].error}"
        return f"the new code diverges at event {d.event_id}: recorded {d.recorded or 'nothing'}, produced {d.produced or 'nothing'}"

    def rows(self) -> list[tuple[str, ...]]:
        old_by_event = _matched_by_event(self.old.steps)
        new_by_event = _matched_by_event(self.new.steps)
        d = self.new.divergence
        cut = d.event_id if d is not None and d.event_id is not None else None
        produced = ""
        if d is not None:
            produced = (d.produced or "no command") + (f" ← line {d.line.lineno}" if d.line else "")
        found: list[tuple[int, tuple[str, ...]]] = []
        for event_id, recorded in old_by_event.items():
            if cut is not None and event_id > cut:
                found.append((event_id, (str(event_id), "not reached", str(recorded), "—")))
            elif cut == event_id:
                found.append((event_id, (str(event_id), "diverges", str(recorded), produced)))
            else:
                mine = new_by_event.get(event_id)
                status = "not reached" if mine is None else ("same" if mine.text == recorded.text else "changed")
                found.append((event_id, (str(event_id), status, str(recorded), str(mine) if mine else "—")))
        if d is not None and (cut is None or cut not in old_by_event):
            where = f"before event {cut}" if cut is not None else "at the end of the history"
            found.append((cut if cut is not None else 1 << 62, (str(cut or ""), "diverges", f"nothing recorded {where}", produced)))
        return [row for _, row in sorted(found, key=lambda pair: pair[0])]


def _matched_by_event(steps: Sequence[TraceStep]) -> dict[int, Any]:
    return {s.event_id: s.matched for s in steps if s.kind == "event" and s.matched is not None and s.event_id is not None}
