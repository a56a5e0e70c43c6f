"""The pieces of the replay debugger's view as HTML: source with the current line marked,
the state tables, the history around the current event, and the run graph with the node of
the current event marked.

Pure functions of a trace step (tests read their output without a browser). Every text from
the trace or the history is escaped. The graph is rendered by Graphviz once per trace; a
step only marks one node in that SVG, so stepping never waits for ``dot``.
"""

from __future__ import annotations

import bisect
import html
import re
from typing import Mapping, Sequence

from engine._runtime.code_names import place
from engine.history import History, HistoryEvent
from engine.replay import ReplayTrace, TraceStep
from kernel_ext._dot import cap, layered
from kernel_ext._html import LEFT, TABLE_CSS, cell
from kernel_ext._steps import collapsed_layers, history_timeline_rows
from kernel_ext.graphs import render_svg, run_graph

__all__ = [
    "CURRENT_COLOUR",
    "DIVERGED_COLOUR",
    "source_html",
    "state_html",
    "history_html",
    "RunGraph",
    "status_html",
]

CURRENT_COLOUR = "#fff3b0"
WAITING_COLOUR = "#eeeeee"
DIVERGED_COLOUR = "#f9d6d5"
MARK_STROKE = "#d500f9"
_SOURCE_WINDOW = 14
_HISTORY_WINDOW = 8
_MONO = "font-family: var(--jp-code-font-family, monospace); font-size: 12px"


def _short_event(event: HistoryEvent) -> str:
    attrs = event.attributes
    for key, label in (("activityType", "activity"), ("workflowType", "workflow"), ("timerId", "timer"), ("signalName", "signal"), ("markerName", "marker")):
        value = attrs.get(key)
        if isinstance(value, Mapping):
            value = value.get("name")
        if value:
            return f"{label} {value}"
    return ""


def source_html(
    lines: Sequence[str],
    filename: str,
    current: int | None,
    *,
    title: str | None = None,
    diverged: bool = False,
    faint: bool = False,
    window: int = _SOURCE_WINDOW,
) -> str:
    """The source around line ``current`` (all of it when short), numbered, that line marked
    (red at a divergence; ``faint`` for where the code waits while events are applied)."""
    total = len(lines)
    if total == 0:
        return f"<p><em>No source for {html.escape(filename)} (the file is gone or was never cached).</em></p>"
    first, last = 1, total
    if current is not None and total > 2 * window + 1:
        first = max(1, current - window)
        last = min(total, first + 2 * window)
        first = max(1, last - 2 * window)
    colour = DIVERGED_COLOUR if diverged else (WAITING_COLOUR if faint else CURRENT_COLOUR)
    rows = []
    for number in range(first, last + 1):
        text = html.escape(lines[number - 1].rstrip("\n"))
        marked = number == current
        style = f"background: {colour}; font-weight: bold" if marked else ""
        arrow = "→" if marked else " "
        rows.append(
            f'<div data-line="{number}" class="{"dlab-current" if marked else ""}" style="{style}; white-space: pre">'
            f'<span style="color: #9e9e9e">{arrow}{number:>4} </span>{text or " "}</div>'
        )
    heading = html.escape(title or place(filename, current or 1).rsplit(",", 1)[0].rsplit(":", 1)[0])
    return (
        f'<div class="dlab-source"><div style="font-weight: bold; margin-bottom: 2px">{heading}</div>'
        f'<div style="{_MONO}; line-height: 1.45; border: 1px solid #ddd; padding: 4px; overflow-x: auto; max-width: 100%">'
        f'{"".join(rows)}</div></div>'
    )


def _table(title: str, values: Mapping[str, str], empty: str) -> str:
    if not values:
        return f"<div><b>{html.escape(title)}</b> <em>{html.escape(empty)}</em></div>"
    body = "".join(
        f"<tr>{cell(html.escape(name))}{cell(f'<code>{html.escape(value)}</code>')}</tr>" for name, value in values.items()
    )
    return (
        f'<div><b>{html.escape(title)}</b>{TABLE_CSS}<table class="durable-lab-table dlab-{title.lower()}" style="{LEFT}">'
        f"<thead><tr>{cell('name', 'th')}{cell('value', 'th')}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _list(title: str, items: Sequence[str]) -> str:
    if not items:
        return ""
    inner = "".join(f"<li><code>{html.escape(item)}</code></li>" for item in items)
    return f'<div><b>{html.escape(title)}</b><ul style="margin: 0 0 4px 0; padding-left: 18px">{inner}</ul></div>'


def state_html(step: TraceStep) -> str:
    """Locals, the workflow's attributes, commands of this workflow task, pending work."""
    where = f" of {step.line.function}" if step.line is not None else ""
    parts = [
        _table("Locals", step.locals, f"none{where}"),
        _table("Attributes", step.attributes, "none (nothing set on self yet)"),
        _list("New commands (since the step before)", [str(c) for c in step.new_commands]),
        _list("Commands of this workflow task", [str(c) for c in step.commands]),
        _list("Pending activities", step.pending.activities),
        _list("Pending timers", step.pending.timers),
        _list("Waiting conditions", step.pending.conditions),
        _list("Pending child workflows", step.pending.children),
    ]
    return f'<div class="dlab-state" style="{LEFT}">{"".join(parts)}</div>'


def status_html(trace: ReplayTrace, step: TraceStep) -> str:
    """One line on the step: number, what happens, time, replaying; the divergence in red."""
    last = len(trace.steps) - 1
    text = html.escape(step.describe() if step.kind != "divergence" else f"divergence at event {step.event_id}")
    meta = f"workflow time {step.time.isoformat(sep=' ', timespec='seconds')} · {'replaying' if step.replaying else 'not replaying'}"
    out = f'<div class="dlab-status"><b>step {step.index} of {last}</b> · {text} · <span style="color: #616161">{html.escape(meta)}</span></div>'
    if step.kind in ("divergence", "error") and step.error:
        out += f'<div class="dlab-divergence" style="background: {DIVERGED_COLOUR}; padding: 4px; white-space: pre-wrap">{html.escape(step.error)}</div>'
    return out


def history_html(history: History, current: int | None, *, diverged: bool = False, window: int = _HISTORY_WINDOW) -> str:
    """The events around event ``current``, that event marked (red at a divergence)."""
    events = history.events
    ids = [e.event_id for e in events]
    at = bisect.bisect_left(ids, current) if current is not None else 0
    first = max(0, at - window)
    chosen = events[first : first + 2 * window + 1]
    colour = DIVERGED_COLOUR if diverged else CURRENT_COLOUR
    rows = []
    for event in chosen:
        marked = event.event_id == current
        style = f' style="background: {colour}; font-weight: bold"' if marked else ""
        rows.append(
            f'<tr data-event="{event.event_id}"{style}>{cell(("→ " if marked else "") + str(event.event_id))}'
            f"{cell(html.escape(event.event_type))}{cell(html.escape(_short_event(event)))}</tr>"
        )
    more = f"<div><em>events {chosen[0].event_id}-{chosen[-1].event_id} of {len(events)}</em></div>" if chosen and len(chosen) < len(events) else ""
    return (
        f'<div class="dlab-history"><b>History</b>{TABLE_CSS}<table class="durable-lab-table" style="{LEFT}"><thead><tr>'
        f"{cell('id', 'th')}{cell('event', 'th')}{cell('what', 'th')}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}</div>"
    )


class RunGraph:
    """The run graph of ``kernel_ext.graphs.run_graph``, rendered once; ``html(event_id)``
    marks the node whose step holds that event (or the last one before it)."""

    def __init__(self, history: History, attempts: Sequence[object] = ()) -> None:
        self.dot = run_graph(history, attempts)  # type: ignore[arg-type]
        # The node names run_graph gives its steps (s0, s1, ...), by event id: the same rows,
        # collapsed and capped the same way.
        rows = history_timeline_rows(history, attempts)  # type: ignore[arg-type]
        layers = cap(collapsed_layers(rows, 5), 200) if rows else []
        _, names = layered(layers, "")
        self._node_of: dict[int, str] = {}
        for layer, layer_names in zip(layers, names):
            for row, name in zip(layer, layer_names):
                for event_id in row["event_ids"]:
                    self._node_of.setdefault(int(event_id), name)
        self._ids = sorted(self._node_of)
        self._svg: str | None = None
        self._rendered = False
        self._cache: dict[str | None, str] = {}

    def node_for(self, event_id: int | None) -> str | None:
        """The graph node of the step that event ``event_id`` belongs to, or of the last step before it."""
        if event_id is None or not self._ids:
            return None
        at = bisect.bisect_right(self._ids, event_id) - 1
        return self._node_of[self._ids[at]] if at >= 0 else None

    def svg(self) -> str | None:
        if not self._rendered:
            self._rendered = True
            try:
                svg = render_svg(self.dot)
            except RuntimeError:
                svg = None
            if svg is not None:
                start = svg.find("<svg")
                svg = svg[start:] if start >= 0 else svg
            self._svg = svg
        return self._svg

    def html(self, event_id: int | None) -> str:
        node = self.node_for(event_id)
        cached = self._cache.get(node)
        if cached is not None:
            return cached
        svg = self.svg()
        if svg is None:
            out = "<p><em>Graph not shown: install graphviz (apt-get install graphviz) for the run graph.</em></p>"
        else:
            out = f'<div class="dlab-graph" style="overflow: auto; max-height: 520px">{mark_node(svg, node)}</div>'
        if len(self._cache) < 400:
            self._cache[node] = out
        return out


_SHAPE = re.compile(r"<(path|polygon|ellipse)\b([^>]*)>")


def mark_node(svg: str, node: str | None) -> str:
    """``svg`` with the shape of node ``node`` drawn with a thick magenta border."""
    if node is None:
        return svg
    title = svg.find(f"<title>{html.escape(node)}</title>")
    if title < 0:
        return svg
    shape = _SHAPE.search(svg, title)
    if shape is None:
        return svg
    attributes = re.sub(r'\sstroke="[^"]*"', "", shape.group(2))
    attributes = re.sub(r'\sstroke-width="[^"]*"', "", attributes)
    closing = "/" if attributes.rstrip().endswith("/") else ""
    attributes = attributes.rstrip().rstrip("/")
    marked = f'<{shape.group(1)}{attributes} stroke="{MARK_STROKE}" stroke-width="4" class="dlab-current-node"{closing}>'
    return svg[: shape.start()] + marked + svg[shape.end() :]
