"""DOT text for steps: quoting, labels, node styles, and layers of steps joined by edges.

Shared by every graph of :mod:`kernel_ext.graphs`: a run's graph, a child run drawn
inside its parent, the runs of a continue-as-new chain, the saga view.
"""

from __future__ import annotations

import textwrap
from typing import Sequence

from kernel_ext._steps import Row, format_event_ids
from kernel_ext._steps._read import one_line, shorten

#: Fill and border colour per step status (6-digit hex: Graphviz 2.43 rejects ``#eef``).
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "ok": ("#d9f2dc", "#2e7d32"),
    "retried": ("#ffe0b2", "#e65100"),
    "failed": ("#f9d6d5", "#c62828"),
    "cancelled": ("#e4e4e4", "#757575"),
    "running": ("#d6e4fb", "#1565c0"),
    "info": ("#f7f7f7", "#616161"),
}
#: Fill and border of steps that arrive from outside the run (signals, updates).
MESSAGE_COLOURS = ("#fff8d6", "#9e7c00")
#: Fill and border of a completed compensation in the saga view (other statuses as usual).
COMPENSATION_COLOURS = ("#ece0f7", "#6a1b9a")
EDGE_COLOUR = "#808080"
#: Border of a step that an injected fault (engine.faults) made fail at least once.
INJECTED_COLOUR = "#8e24aa"

# A shape says what kind of thing a step is; the colour says how it went.
_SHAPES = {
    "signal": "cds",
    "update": "cds",
    "cancel_request": "cds",
    "patch": "hexagon",
    "child": "box3d",
}
_LABEL_WIDTH = 42


def quote(text: str) -> str:
    """Quote ``text`` for DOT: backslashes and quotes escaped, newlines as ``\\n``."""
    cleaned = "".join(ch if ch >= " " or ch == "\n" else " " for ch in text)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def pack(parts: Sequence[str], width: int) -> list[str]:
    """Put `` · ``-separated parts on as few lines as fit ``width``; wrap long parts."""
    lines: list[str] = []
    for part in filter(None, parts):
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines += textwrap.wrap(part, width) or [part]
    return lines


def label_lines(row: Row) -> list[str]:
    lines = [shorten(one_line(row["title"]), _LABEL_WIDTH + 6)]
    detail = pack(row["detail"].split(" · "), _LABEL_WIDTH)
    lines += detail if len(detail) <= 4 else detail[:3] + [shorten(detail[3], _LABEL_WIDTH - 1) + "…"]
    if row["events"]:
        lines.append(row["events"])
    return lines


def colours(row: Row) -> tuple[str, str]:
    if row["kind"] in ("signal", "update") and row["status"] in ("info", "ok"):
        return MESSAGE_COLOURS
    return STATUS_COLOURS.get(row["status"], STATUS_COLOURS["info"])


def node(name: str, row: Row, *, fill: tuple[str, str] | None = None, label: str | None = None) -> str:
    """One node statement (one line) for ``row``."""
    fill_colour, border = fill or colours(row)
    dashed = row["status"] == "running" or row["kind"] == "more"
    style = "rounded,filled" + (",dashed" if dashed else "")
    extra = ", penwidth=2" if row["kind"] in ("start", "result", "reset") else ""
    if row.get("injected"):
        # An injected fault: a thick dotted purple border, apart from organic failures.
        style += ",bold,dotted"
        border = INJECTED_COLOUR
    if row["kind"] == "cycle":
        extra += ", peripheries=2"  # a loop: drawn as a stack
    shape = _SHAPES.get(row["kind"])
    if shape:
        extra += f", shape={shape}"
    text = label if label is not None else "\n".join(label_lines(row))
    return (
        f"  {name} [label={quote(text)}, tooltip={quote(row['tooltip'])}, "
        f'fillcolor="{fill_colour}", color="{border}", style="{style}"{extra}];'
    )


def more_row(hidden: Sequence[Row]) -> Row:
    """A row standing for steps that are not drawn."""
    ids = [i for row in hidden for i in row["event_ids"]]
    events = format_event_ids(ids, span=True)
    count = sum(row["count"] for row in hidden)
    return {
        "kind": "more", "title": f"... {count} more steps", "status": "info", "event_ids": ids,
        "events": events, "attempts": 0, "detail": "see the table for all steps", "batch": None, "offset": None,
        "count": count, "tooltip": f"{count} steps not drawn ({events}); raise max_nodes or use the table view",
        "summary": "", "input": [], "result": [], "links": [],
    }


def cap(layers: list[list[Row]], max_nodes: int) -> list[list[Row]]:
    """At most ``max_nodes`` nodes: the first steps, a "... N more steps" node, the result."""
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
    return kept + [[more_row(hidden)]] + ([final] if final else [])


def layered(layers: list[list[Row]], prefix: str, indent: str = "") -> tuple[list[str], list[list[str]]]:
    """Nodes and edges for layers of steps: each layer follows the one before; a layer of
    several steps fans out from the step before and joins at the step after (a point node
    when several steps follow several). Returns the statements and the node names."""
    out: list[str] = []
    names: list[list[str]] = []
    counter = 0
    for layer in layers:
        names.append([])
        for row in layer:
            name = f"{prefix}s{counter}"
            counter += 1
            names[-1].append(name)
            out.append(indent + node(name, row))
    for index, (before, after) in enumerate(zip(names, names[1:])):
        if len(before) > 1 and len(after) > 1:
            join = f"{prefix}j{index}"
            out.append(f'{indent}  {join} [shape=point, width=0.06, color="{EDGE_COLOUR}", tooltip="all of the above finished"];')
            out += [f"{indent}  {b} -> {join} [arrowhead=none];" for b in before]
            out += [f"{indent}  {join} -> {a};" for a in after]
        else:
            out += [f"{indent}  {b} -> {a};" for b in before for a in after]
    return out, names


def header(name: str, label: str, *, rankdir: str = "TB", big: bool = False) -> list[str]:
    """The first lines of a digraph: layout, fonts, the title label."""
    return [
        f"digraph {name} {{",
        f'  graph [rankdir={rankdir}, nodesep=0.25, ranksep=0.3, fontname="Helvetica", fontsize=12, labelloc=t, '
        f"label={quote(label)}, tooltip={quote(label or name)}" + (", nslimit=1" if big else "") + "];",
        '  node [shape=box, fontname="Helvetica", fontsize=10, margin="0.12,0.05"];',
        f'  edge [color="{EDGE_COLOUR}", arrowsize=0.7, fontname="Helvetica", fontsize=9];',
    ]


def short_id(run_id: str, length: int = 8) -> str:
    """The last ``length`` characters of a run id, dashes dropped (``3841dcab``).

    Run ids of this engine are UUIDv7: the first 12 hex digits are the start time, shared by
    every run of a continue-as-new chain, so the random tail is the part that differs.
    """
    return run_id.replace("-", "")[-length:] if run_id else "?"


def short_ids(run_ids: Sequence[str], length: int = 8) -> dict[str, str]:
    """Each run id's shortest tail (at least ``length`` characters) that no other id of
    ``run_ids`` ends with, so the labels of one chain never collide."""
    plain = {run_id: run_id.replace("-", "") for run_id in run_ids}
    out: dict[str, str] = {}
    for run_id, text in plain.items():
        size = min(length, len(text))
        while size < len(text) and any(o != run_id and p.endswith(text[-size:]) for o, p in plain.items()):
            size += 1
        out[run_id] = text[-size:] if text else "?"
    return out
