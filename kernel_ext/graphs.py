"""What happened in a run as a Graphviz graph: DOT text, and SVG when Graphviz is installed.

Three graphs, each DOT text (no ``dot`` binary needed, so tests can check it):

- :func:`run_graph`: one run as the steps of :func:`history_timeline_rows` (see
  :mod:`kernel_ext._steps`). Steps that one workflow task started together run in
  parallel: the graph fans out to them and joins after them; long runs of identical steps
  are collapsed (``echo x500``). Signals and updates (they come from outside) are drawn as
  arrows, versioning patches as hexagons, child workflows as boxes: a child run whose
  history is given is drawn nested inside, otherwise its ids say where to find it. A run
  of a continue-as-new chain points at the runs before and after it.
- :func:`chain_graph`: the runs of a continue-as-new chain, one box each, linked.
- :func:`saga_dot`: a run as a saga: the forward steps in order, the failure, and the
  compensations running back (fanned out when they ran in parallel), each tied to the
  step it undoes (see :mod:`kernel_ext._saga` for how they are recognised).

:func:`render_svg` turns DOT into SVG when Graphviz is installed.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from engine.history import History
from kernel_ext._dot import (
    COMPENSATION_COLOURS,
    EDGE_COLOUR,
    STATUS_COLOURS,
    cap,
    header,
    label_lines,
    layered,
    node,
    quote,
    short_id,
    short_ids,
)
from kernel_ext._saga import SagaPlan, saga_plan
from kernel_ext._steps import (
    Row,
    collapse_rows,
    collapsed_layers,
    format_duration,
    format_event_ids,
    format_offset,
    format_seconds,
    history_timeline_rows,
    seconds_between,
)

if TYPE_CHECKING:
    from engine.client import ActivityAttempt

__all__ = [
    "STATUS_COLOURS",
    "COMPENSATION_COLOURS",
    "SagaPlan",
    "chain_graph",
    "collapse_rows",
    "format_duration",
    "format_event_ids",
    "format_offset",
    "format_seconds",
    "history_timeline_rows",
    "render_svg",
    "run_graph",
    "saga_dot",
    "saga_plan",
    "seconds_between",
]

_LINK_COLOUR = "#9e9e9e"
_COMPENSATION_EDGE = COMPENSATION_COLOURS[1]
_CHILD_DEPTH = 3
_CHILD_NODES = 40


def _empty_row(title: str, detail: str) -> Row:
    return {"kind": "more", "title": title, "status": "info", "event_ids": [], "events": "", "attempts": 0,
            "detail": detail, "tooltip": detail, "batch": None, "offset": None, "count": 1, "summary": "",
            "input": [], "result": [], "links": []}


def _run_label(history: History) -> str:
    return " · ".join(part for part in (history.workflow_type, history.workflow_id) if part)


def _stub(name: str, text: str, tooltip: str) -> str:
    return (f"  {name} [label={quote(text)}, tooltip={quote(tooltip)}, shape=note, style=dashed, "
            f'color="{_LINK_COLOUR}", fontcolor="#424242"];')


def _run_body(
    history: History,
    attempts: Sequence[ActivityAttempt],
    prefix: str,
    *,
    max_nodes: int,
    collapse_threshold: int,
    children: Mapping[str, History],
    depth: int,
    links: bool = True,
    faults: Sequence[Any] = (),
    rows: list[Row] | None = None,
) -> tuple[list[str], list[list[str]], list[list[Row]]]:
    """Nodes and edges of one run's steps, with child runs nested and other runs linked."""
    rows = history_timeline_rows(history, attempts, faults) if rows is None else rows
    if not rows:
        rows = [_empty_row("empty history", "no events")]
    layers = cap(collapsed_layers(rows, collapse_threshold), max_nodes)
    out, names = layered(layers, prefix)
    for layer, layer_names in zip(layers if links else [], names):
        for row, name in zip(layer, layer_names):
            for number, link in enumerate(row.get("links") or []):
                out += _link(row, name, link, f"{name}l{number}", children, depth, collapse_threshold)
    return out, names, layers


def _link(
    row: Row, name: str, link: Mapping[str, str], stub: str, children: Mapping[str, History], depth: int, threshold: int
) -> list[str]:
    relation, workflow_id, run_id = link.get("relation", ""), link.get("workflow_id", ""), link.get("run_id", "")
    if relation == "child" and row["kind"] == "child" and row["count"] == 1:
        child = children.get(workflow_id)
        if child is not None and depth < _CHILD_DEPTH:
            return _nested_child(name, child, f"{stub}c", children, depth, threshold)
        where = f"run {short_id(run_id)}" if run_id else "not started"
        return [
            _stub(stub, f"child run\n{workflow_id}\n{where}",
                  f"child workflow {workflow_id}, run id {run_id or '?'}: %workflow show --workflow-id {workflow_id}"),
            f'  {name} -> {stub} [style=dashed, color="{_LINK_COLOUR}", arrowhead=none];',
            f"  {{rank=same; {name}; {stub}}}",
        ]
    if relation == "next":
        return [
            _stub(stub, f"next run\n{short_id(run_id)}", f"continued as new in run {run_id}"),
            f'  {name} -> {stub} [style=dashed, color="{_LINK_COLOUR}", label="continue as new"];',
        ]
    if relation == "parent" and depth > 0:
        return []  # drawn inside its parent already
    if relation in ("previous", "parent"):
        text = f"previous run\n{short_id(run_id)}" if relation == "previous" else f"parent\n{workflow_id}"
        tip = f"continued from run {run_id}" if relation == "previous" else f"started by workflow {workflow_id} (run {run_id or '?'})"
        edge_label = "continued as new" if relation == "previous" else "started this run"
        return [_stub(stub, text, tip), f'  {stub} -> {name} [style=dashed, color="{_LINK_COLOUR}", label="{edge_label}"];']
    return []


def _nested_child(
    name: str, child: History, prefix: str, children: Mapping[str, History], depth: int, threshold: int
) -> list[str]:
    inner, names, _ = _run_body(
        child, (), prefix, max_nodes=_CHILD_NODES, collapse_threshold=threshold, children=children, depth=depth + 1
    )
    label = f"child run: {_run_label(child)}"
    out = [
        f"  subgraph cluster_{prefix} {{",
        f'    graph [label={quote(label)}, tooltip={quote(label)}, style="rounded,dashed", color="{_LINK_COLOUR}", '
        'fontsize=10, labeljust=l];',
        *("  " + line for line in inner),
        "  }",
        f'  {name} -> {names[0][0]} [style=dashed, color="{_LINK_COLOUR}", label="starts"];',
    ]
    out += [f'  {last} -> {name} [style=dashed, color="{_LINK_COLOUR}", constraint=false, label="result"];'
            for last in names[-1]]
    return out


def run_graph(
    history: History,
    attempts: Sequence[ActivityAttempt] = (),
    *,
    max_nodes: int = 200,
    collapse_threshold: int = 5,
    children: Mapping[str, History] | None = None,
    faults: Sequence[Any] = (),
    rows: list[Row] | None = None,
) -> str:
    """Return DOT text drawing a run as the steps of :func:`history_timeline_rows`.

    One node per step, coloured by status (:data:`STATUS_COLOURS`; signals and updates in
    yellow), labelled with what it did and the event ids it covers, with inputs, results
    and failed attempts in its tooltip. Steps started by the same workflow task fan out
    from the step before and join at the step after. More than ``collapse_threshold``
    identical steps in a row become one node; beyond ``max_nodes`` nodes a "... N more
    steps" node stands for the rest and the final result is still drawn.

    ``children`` maps child workflow ids to their histories: those child runs are drawn
    nested in a dashed box (their own children too, three levels deep); a child run not
    given is a note with its workflow id and run id. A run continued from another, or
    continued as new, gets a note for the run before or after it. ``faults`` (the run's
    fault log) marks the steps injected faults hit, as a dotted purple border. ``rows``: the
    steps, when the caller has them already (they are the costly part of a big history).
    """
    body, names, layers = _run_body(
        history, attempts, "", max_nodes=max_nodes, collapse_threshold=collapse_threshold,
        children=children or {}, depth=0, faults=faults, rows=rows,
    )
    big = sum(len(layer) for layer in layers) > 60
    label = _run_label(history)
    return "\n".join(header("run", label, big=big) + body + ["}"]) + "\n"


# --- continue-as-new chains -----------------------------------------------------------


def chain_graph(
    histories: Sequence[History],
    *,
    attempts: Mapping[str, Sequence[ActivityAttempt]] | None = None,
    max_runs: int = 6,
    max_nodes: int = 30,
) -> str:
    """Return DOT text drawing the runs of a continue-as-new chain, first to last.

    Each run is a box of its steps (collapsed, at most ``max_nodes``), titled with its
    number and short run id; the "Continued as new" step of one run points at the start
    of the next (whose start shows the input it got). Beyond ``max_runs`` runs the
    first ones and the last ones are drawn with a "... N more runs" note between them.
    ``attempts`` maps run ids to their activity attempts.
    """
    attempts = attempts or {}
    numbered = list(enumerate(histories, start=1))
    hidden = 0
    if len(numbered) > max(max_runs, 3):
        head = max(max_runs // 2, 1)
        tail = max(max_runs, 3) - head
        hidden = len(numbered) - head - tail
        numbered = numbered[:head] + numbered[-tail:]
    label = _run_label(histories[0]) if histories else "empty chain"
    out = header("chain", f"{label} · {len(histories)} run{'s' if len(histories) != 1 else ''}")
    ends: list[tuple[int, list[str], list[str]]] = []
    labels = short_ids([history.run_id for history in histories])
    for number, history in numbered:
        run_id = history.run_id
        body, names, layers = _run_body(history, attempts.get(run_id, ()), f"r{number}", max_nodes=max_nodes,
                                        collapse_threshold=5, children={}, depth=_CHILD_DEPTH, links=False)
        final = layers[-1][0] if layers and layers[-1] else None
        title = f"run {number} · {labels[run_id]}" + (f" · {final['title'].lower()}" if final else "")
        out += [
            f"  subgraph cluster_r{number} {{",
            f'    graph [label={quote(title)}, tooltip={quote("run id " + run_id)}, style="rounded", '
            f'color="{_LINK_COLOUR}", fontsize=10, labeljust=l];',
            *("  " + line for line in body),
            "  }",
        ]
        ends.append((number, names[0], names[-1]))
    for (number, _, last), (next_number, first, _) in zip(ends, ends[1:]):
        if next_number != number + 1:
            more = f"more{number}"
            out.append(_stub(more, f"... {hidden} more runs", f"runs {number + 1} to {next_number - 1} are not drawn"))
            out += [f'  {last[0]} -> {more} [style=dashed, color="{_LINK_COLOUR}"];',
                    f'  {more} -> {first[0]} [style=dashed, color="{_LINK_COLOUR}"];']
            continue
        # The next run's start node shows the input it got: the edge only names the link.
        out.append(f'  {last[0]} -> {first[0]} [label="continue as new", penwidth=1.5];')
    out.append("}")
    return "\n".join(out) + "\n"


# --- sagas ------------------------------------------------------------------------------


def _forward_layers(rows: list[Row]) -> list[list[Row]]:
    layers: list[list[Row]] = []
    for row in rows:
        if layers and row["batch"] is not None and layers[-1][-1]["batch"] == row["batch"]:
            layers[-1].append(row)
        else:
            layers.append([row])
    return layers


def _compensation_node(name: str, row: Row, plan: SagaPlan) -> str:
    link = plan.undone_by(row)
    lines = label_lines(row)
    if link is not None:
        lines.insert(1, f"undoes step {link.forward + 1}: {plan.forward[link.forward]['title']}")
    fill = COMPENSATION_COLOURS if row["status"] in ("ok", "retried") else None
    tooltip_row = dict(row, tooltip=row["tooltip"] + (f"\nundoes step {link.forward + 1} ({link.how})" if link else ""))
    return node(name, tooltip_row, fill=fill, label="\n".join(lines))


def saga_dot(history: History, attempts: Sequence[ActivityAttempt] = ()) -> str:
    """Return DOT text drawing a run as a saga, left to right and back.

    Top row: the start and the forward steps in order (steps started together fan out),
    ending at the failure (red). Bottom row, running back from the failure: the
    compensations (purple once completed), one after another or fanned out when they ran
    in parallel, and the run's end under its start. A dashed purple edge ties each
    compensation to the step it undoes, drawn right above it. A run where nothing failed
    is its forward steps and its end.
    """
    plan = saga_plan(history_timeline_rows(history, attempts))
    label = " · ".join(part for part in ("saga", _run_label(history), plan.describe()) if part)
    out = header("saga", label, rankdir="LR")
    out[1] = out[1].replace("ranksep=0.3", "ranksep=0.45")
    names: dict[int, str] = {}

    def add(row: Row, name: str, statement: str) -> str:
        names[id(row)] = name
        out.append(statement)
        return name

    previous: list[str] = []
    if plan.start is not None:
        previous = [add(plan.start, "start", node("start", plan.start))]
    number = {id(row): index for index, row in enumerate(plan.forward)}
    for layer in _forward_layers(plan.forward):
        current = []
        for row in layer:
            name = f"f{number[id(row)]}"
            lines = label_lines(row)
            lines[0] = f"step {number[id(row)] + 1}: {lines[0]}"
            current.append(add(row, name, node(name, row, label="\n".join(lines))))
        out += [f"  {a} -> {b};" for a in previous for b in current]
        previous = current
    if plan.trigger is not None and id(plan.trigger) not in names:  # a cancel request
        current = [add(plan.trigger, "trigger", node("trigger", plan.trigger))]
        out += [f"  {a} -> {b};" for a in previous for b in current]
        previous = current
    # Compensations run back: each edge is declared from the later step to the earlier one
    # with dir=back, so Graphviz ranks them leftwards while the arrows still point forward.
    back = f'color="{_COMPENSATION_EDGE}", dir=back'
    for g, group in enumerate(plan.groups):
        current = []
        for c, row in enumerate(group):
            current.append(add(row, f"c{g}_{c}", _compensation_node(f"c{g}_{c}", row, plan)))
        out += [f"  {b} -> {a} [{back}];" for a in previous for b in current]
        previous = current
    if plan.result is not None:
        end = add(plan.result, "end", node("end", plan.result))
        if plan.groups:
            out += [f"  {end} -> {a} [{back}];" for a in previous]
            if plan.start is not None:
                out.append(f"  {{rank=same; start; {end}}}")
        else:
            out += [f"  {a} -> {end};" for a in previous]
    for link in plan.links:
        step, comp = f"f{link.forward}", names[id(link.compensation)]
        out.append(f'  {step} -> {comp} [style=dashed, {back}, arrowtail=open, label="undoes", '
                   f'fontcolor="{_COMPENSATION_EDGE}", tooltip={quote(link.how)}];')
        out.append(f"  {{rank=same; {step}; {comp}}}")
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
