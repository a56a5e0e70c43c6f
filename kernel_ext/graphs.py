"""What happened in a run as a Graphviz graph: DOT text, and SVG when Graphviz is installed.

:func:`run_graph` draws the steps of :func:`history_timeline_rows` (see
:mod:`kernel_ext._timeline`, which groups a history's events into the steps a learner
thinks in) as DOT text (no ``dot`` binary needed, so tests can check it), and
:func:`render_svg` turns DOT into SVG when Graphviz is installed.

Steps that one workflow task started together (same ``workflowTaskCompletedEventId``)
run in parallel: the graph fans out to them and joins after them. Long runs of identical
steps (an activity called in a loop) are collapsed into one node (``echo x500``).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import textwrap
from typing import TYPE_CHECKING, Sequence

from engine.history import History
from kernel_ext._timeline import (
    Row,
    _collapsed_layers,
    _one_line,
    _shorten,
    collapse_rows,
    format_duration,
    format_event_ids,
    format_offset,
    format_seconds,
    history_timeline_rows,
    seconds_between,
)

if TYPE_CHECKING:
    from engine.client import ActivityAttempt
    from engine.faults import FaultFired

__all__ = [
    "STATUS_COLOURS",
    "collapse_rows",
    "format_duration",
    "format_event_ids",
    "format_offset",
    "format_seconds",
    "history_timeline_rows",
    "render_svg",
    "run_graph",
    "seconds_between",
]

#: Fill and border colour per step status (6-digit hex: Graphviz 2.43 rejects ``#eef``).
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "ok": ("#d9f2dc", "#2e7d32"),
    "retried": ("#ffe0b2", "#e65100"),
    "failed": ("#f9d6d5", "#c62828"),
    "cancelled": ("#e4e4e4", "#757575"),
    "running": ("#d6e4fb", "#1565c0"),
    "info": ("#f7f7f7", "#616161"),
    "injected": ("#ede0f7", "#6a1b9a"),  # an injected worker crash
}
#: Border of a step that injected faults hit (its fill still shows the outcome).
INJECTED_BORDER = STATUS_COLOURS["injected"][1]

_LABEL_WIDTH = 42


# --- DOT --------------------------------------------------------------------------


def _dot_string(text: str) -> str:
    """Quote ``text`` for DOT: backslashes and quotes escaped, newlines as ``\\n``."""
    cleaned = "".join(ch if ch >= " " or ch == "\n" else " " for ch in text)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _pack(parts: Sequence[str], width: int) -> list[str]:
    """Put `` · ``-separated parts on as few lines as fit ``width``; wrap long parts."""
    lines: list[str] = []
    for part in filter(None, parts):
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines += textwrap.wrap(part, width) or [part]
    return lines


def _node(name: str, row: Row) -> str:
    lines = [_shorten(_one_line(row["title"]), _LABEL_WIDTH + 6)]
    detail = _pack(row["detail"].split(" · "), _LABEL_WIDTH)
    lines += detail if len(detail) <= 4 else detail[:3] + [_shorten(detail[3], _LABEL_WIDTH - 1) + "…"]
    if row["events"]:
        lines.append(row["events"])
    fill, border = STATUS_COLOURS.get(row["status"], STATUS_COLOURS["info"])
    style = "rounded,filled" + (",dashed" if row["status"] == "running" or row["kind"] == "more" else "")
    extra = ", penwidth=2" if row["kind"] in ("start", "result", "crash") else ""
    if row.get("injected"):
        border, extra = INJECTED_BORDER, ", penwidth=2"
    return (
        f"  {name} [label={_dot_string(chr(10).join(lines))}, tooltip={_dot_string(row['tooltip'])}, "
        f'fillcolor="{fill}", color="{border}", style="{style}"{extra}];'
    )


def _cap(layers: list[list[Row]], max_nodes: int) -> list[list[Row]]:
    if sum(len(layer) for layer in layers) <= max_nodes:
        return layers
    final = layers[-1] if layers[-1][0]["kind"] == "result" else []
    budget = max(max_nodes, 3) - 1 - len(final)
    kept: list[list[Row]] = []
    for layer in layers[: len(layers) - (1 if final else 0)]:
        room = budget - sum(len(k) for k in kept)
        if room <= 0:
            break
        kept.append(layer[:room])
    shown = {id(row) for layer in kept for row in layer} | {id(row) for row in final}
    hidden = [row for layer in layers for row in layer if id(row) not in shown]
    ids = [i for row in hidden for i in row["event_ids"]]
    events = format_event_ids(ids, span=True)
    count = sum(row["count"] for row in hidden)
    more: Row = {
        "kind": "more", "title": f"... {count} more steps", "status": "info", "event_ids": ids,
        "events": events, "attempts": 0, "detail": "see the table for all steps", "batch": None, "offset": None,
        "count": count, "tooltip": f"{count} steps not drawn ({events}); raise max_nodes or use the table view",
    }
    return kept + [[more]] + ([final] if final else [])


def run_graph(
    history: History,
    attempts: Sequence[ActivityAttempt] = (),
    *,
    faults: Sequence[FaultFired] = (),
    max_nodes: int = 200,
    collapse_threshold: int = 5,
) -> str:
    """Return DOT text drawing a run as the steps of :func:`history_timeline_rows`.

    One node per step, coloured by status (:data:`STATUS_COLOURS`), labelled with what it
    did and the event ids it covers, with inputs, results and failed attempts in its
    tooltip. Steps started by the same workflow task fan out from the step before and
    join at the step after. More than ``collapse_threshold`` identical steps in a row
    become one node; beyond ``max_nodes`` nodes a "... N more steps" node stands for the
    rest and the final result is still drawn. With the run's fault log (``faults``), steps
    that injected faults hit get a purple border and injected worker crashes a purple node.
    """
    rows = history_timeline_rows(history, attempts, faults)
    if not rows:
        rows = [{"kind": "more", "title": "empty history", "status": "info", "event_ids": [], "events": "",
                 "attempts": 0, "detail": "no events", "tooltip": "the history has no events", "batch": None,
                 "offset": None, "count": 1}]
    layers = _cap(_collapsed_layers(rows, collapse_threshold), max_nodes)
    graph_label = " · ".join(part for part in (history.workflow_type, history.workflow_id) if part)
    big = sum(len(layer) for layer in layers) > 60
    out = [
        "digraph run {",
        f"  graph [rankdir=TB, nodesep=0.25, ranksep=0.3, fontname=\"Helvetica\", fontsize=12, labelloc=t, "
        f"label={_dot_string(graph_label)}, tooltip={_dot_string(graph_label or 'run')}"
        + (", nslimit=1" if big else "") + "];",
        '  node [shape=box, fontname="Helvetica", fontsize=10, margin="0.12,0.05"];',
        '  edge [color="#808080", arrowsize=0.7];',
    ]
    names: list[list[str]] = []
    counter = 0
    for layer in layers:
        names.append([])
        for row in layer:
            name = f"s{counter}"
            counter += 1
            names[-1].append(name)
            out.append(_node(name, row))
    for index, (before, after) in enumerate(zip(names, names[1:])):
        if len(before) > 1 and len(after) > 1:
            join = f"j{index}"
            out.append(f'  {join} [shape=point, width=0.06, color="#808080", tooltip="all of the above finished"];')
            out += [f"  {b} -> {join} [arrowhead=none];" for b in before]
            out += [f"  {join} -> {a};" for a in after]
        else:
            out += [f"  {b} -> {a};" for b in before for a in after]
    out.append("}")
    return "\n".join(out) + "\n"


# --- SVG --------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _render(dot_path: str, dot: str, timeout: float) -> str:
    command = [dot_path, "-Tsvg"]
    if dot.count("->") > 80:
        command.append("-Gnslimit=1")
    try:
        done = subprocess.run(command, input=dot.encode("utf-8"), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"Graphviz took more than {timeout:g} s to lay out this graph: it is too large to draw. "
            "Use the table view instead, or draw fewer steps (run_graph(..., max_nodes=50))."
        ) from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"Graphviz could not render the graph (dot exited with {done.returncode}): {message}")
    return done.stdout.decode("utf-8", "replace")


def render_svg(dot: str, *, timeout: float = 10.0) -> str | None:
    """Render DOT text to SVG with Graphviz's ``dot``; None if ``dot`` is not installed.

    Results are cached by DOT text, so showing the same run again costs nothing.

    Raises:
        RuntimeError: ``dot`` ran longer than ``timeout`` seconds (the graph is too large:
            use the table view), or rejected the DOT text (the message has its error).
    """
    dot_path = shutil.which("dot")
    if dot_path is None:
        return None
    return _render(dot_path, dot, timeout)
