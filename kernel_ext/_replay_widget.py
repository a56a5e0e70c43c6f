"""The replay debugger widget: a ``ReplayDebugger`` behind buttons, a slider and Play.

Layout: a title; the controls (first, back, forward, last, previous/next event, jump to the
divergence, a slider and Play); breakpoints (lines, event types, event ids) with run back /
run to; the step's status line; the source with the current line marked (at a divergence
with the old code beside the new one, when the old code is known); the locals, attributes,
commands and pending work; the history around the current event; the run graph with the
current step's node marked. Every control moves the debugger; the debugger's listener
redraws, so a move from Python (``view.debugger.step()``) shows too.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from engine._runtime.code_names import place
from engine.replay import ReplayDebugger, ReplayTrace, TraceStep
from kernel_ext._replay_view import RunGraph, history_html, source_html, state_html, status_html

__all__ = ["ReplayView", "parse_breakpoints"]

# Plain words and arrows: the fonts of some systems have no glyph for ⏮ and ⏭.
_BUTTONS = (
    ("first", "first", "First step"),
    ("back", "◀ back", "Back one step"),
    ("step", "forward ▶", "Forward one step"),
    ("last", "last", "Last step"),
    ("prev_event", "⇤ event", "Back to the previous history event"),
    ("next_event", "event ⇥", "Forward to the next history event"),
)


def parse_breakpoints(lines: str, event_types: str, event_ids: str) -> list[dict[str, Any]]:
    """Breakpoints typed in the three boxes (comma-separated); ValueError names a bad entry."""
    found: list[dict[str, Any]] = []
    for text in filter(None, (part.strip() for part in lines.split(","))):
        if not text.isdigit():
            raise ValueError(f"Line breakpoints are line numbers, e.g. 12, 15: {text!r} is not one.")
        found.append({"line": int(text)})
    for text in filter(None, (part.strip() for part in event_types.split(","))):
        found.append({"event_type": text})
    for text in filter(None, (part.strip() for part in event_ids.split(","))):
        if not text.isdigit():
            raise ValueError(f"Event breakpoints are event ids, e.g. 5, 11: {text!r} is not one.")
        found.append({"event_id": int(text)})
    return found


class ReplayView(widgets.VBox):
    """The debugger widget. ``view.debugger`` is the ``ReplayDebugger`` it drives."""

    def __init__(self, debugger: ReplayDebugger, *, old_trace: ReplayTrace | None = None, title: str | None = None, attempts: Any = ()) -> None:
        self.debugger = debugger
        trace = debugger.trace
        self.old_trace = old_trace
        self._graph = RunGraph(trace.history, attempts)
        # For each step, the last line of workflow code run up to it (event steps show it).
        self._reached: list[Any] = []
        reached = None
        for step in trace.steps:
            reached = step.line if step.line is not None else reached
            self._reached.append(reached)
        self._updating = False
        last = len(trace.steps) - 1
        heading = title or f"{trace.workflow_type} · {trace.history.workflow_id}"
        outcome = (
            "replays cleanly"
            if trace.ok
            else (f"diverges at event {trace.divergence.event_id}" if trace.divergence else "fails")
        )
        self.title = widgets.HTML(
            f"<b>Replay of {html.escape(heading)}</b>: {len(trace.steps)} steps over {len(trace.history)} events; "
            f"the code {html.escape(outcome)}."
        )
        self.buttons: dict[str, widgets.Button] = {}
        for name, label, tip in _BUTTONS:
            button = widgets.Button(description=label, tooltip=tip, layout=widgets.Layout(width="auto"))
            button.on_click(lambda _b, move=name: self._do(move))
            self.buttons[name] = button
        # A clean replay shows a calm, disabled "no divergence": a faded red alarm button there
        # reads as a warning to a learner.
        divergence = widgets.Button(
            description="✓ no divergence" if trace.ok else "⚠ divergence",
            tooltip="The code agrees with every event" if trace.ok else "Jump to where the code disagreed with the history",
            button_style="" if trace.ok else "danger", layout=widgets.Layout(width="auto"), disabled=trace.ok,
        )
        divergence.on_click(lambda _b: self._do("to_divergence"))
        self.buttons["to_divergence"] = divergence
        self.slider = widgets.IntSlider(value=debugger.position, min=0, max=last, description="step", continuous_update=True, layout=widgets.Layout(width="420px"))
        self.play = widgets.Play(value=debugger.position, min=0, max=last, interval=400, description="play")
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(self._on_slider, names="value")
        self.line_breaks = widgets.Text(placeholder="12, 15", description="lines", layout=widgets.Layout(width="170px"))
        self.type_breaks = widgets.Text(placeholder="TimerFired", description="event types", layout=widgets.Layout(width="260px"))
        self.id_breaks = widgets.Text(placeholder="7, 11", description="event ids", layout=widgets.Layout(width="170px"))
        run_back = widgets.Button(description="◀ run back", tooltip="Back to the previous breakpoint", layout=widgets.Layout(width="auto"))
        run_to = widgets.Button(description="run to ▶", tooltip="Forward to the next breakpoint", layout=widgets.Layout(width="auto"))
        run_back.on_click(lambda _b: self._run(backward=True))
        run_to.on_click(lambda _b: self._run(backward=False))
        self.buttons["run_back"], self.buttons["run_to"] = run_back, run_to
        self.message = widgets.HTML("")
        self.status = widgets.HTML()
        self.source = widgets.HTML(layout=widgets.Layout(width="56%", overflow="auto"))
        self.state_pane = widgets.HTML(layout=widgets.Layout(width="42%"))
        self.history_pane = widgets.HTML(layout=widgets.Layout(width="44%"))
        self.graph = widgets.HTML(layout=widgets.Layout(width="56%"))
        controls = widgets.HBox([*(self.buttons[n] for n, _, _ in _BUTTONS), divergence, self.play, self.slider], layout=widgets.Layout(flex_flow="row wrap"))
        breaks = widgets.HBox([widgets.HTML("<b>breakpoints</b>&nbsp;"), self.line_breaks, self.type_breaks, self.id_breaks, run_back, run_to], layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__(
            [
                self.title,
                controls,
                breaks,
                self.message,
                self.status,
                widgets.HBox([self.source, self.state_pane], layout=widgets.Layout(flex_flow="row wrap")),
                widgets.HBox([self.history_pane, self.graph]),
            ]
        )
        self.add_class("dlab-replay")
        debugger.observe(self._show)
        self._show(debugger.state)

    # ------------------------------------------------------------ moves
    def _do(self, move: str) -> None:
        self.message.value = ""
        try:
            getattr(self.debugger, move)()
        except ValueError as e:
            self.message.value = f'<span style="color: #c62828">{html.escape(str(e))}</span>'

    def _on_slider(self, change: Any) -> None:
        if not self._updating and change["new"] != self.debugger.position:
            self.debugger.goto(step=int(change["new"]))

    def _run(self, *, backward: bool) -> None:
        self.message.value = ""
        try:
            wanted = parse_breakpoints(self.line_breaks.value, self.type_breaks.value, self.id_breaks.value)
            self.debugger.clear_breakpoints()
            for point in wanted:
                self.debugger.add_breakpoint(**point)
            (self.debugger.run_back if backward else self.debugger.run_to)()
        except ValueError as e:
            self.message.value = f'<span style="color: #c62828">{html.escape(str(e))}</span>'
            return
        hit = self.debugger.hit
        self.message.value = f"stopped at {html.escape(str(hit))}" if hit else "no breakpoint on the way: stopped at the " + ("first" if backward else "last") + " step"

    # ------------------------------------------------------------ drawing
    def _show(self, step: TraceStep) -> None:
        trace = self.debugger.trace
        self._updating = True
        try:
            self.slider.value = step.index
        finally:
            self._updating = False
        self.source.value = self._source(step)
        # Two versions of the code side by side take the whole width; the state goes below.
        self.source.layout.width = "100%" if 'class="dlab-side-by-side"' in self.source.value else "56%"
        self.state_pane.value = state_html(step)
        at_end = step.kind in ("divergence", "error")
        self.history_pane.value = history_html(trace.history, step.event_id, diverged=at_end and trace.divergence is not None)
        self.graph.value = self._graph.html(step.event_id)
        # The status line last: the front end applies the panes' messages in order, so when the
        # status names a step every pane already shows that step (no stale locals beside it).
        self.status.value = status_html(trace, step)

    def _source(self, step: TraceStep) -> str:
        trace = self.debugger.trace
        line = step.line
        waiting = line is None and step.kind == "event"
        if waiting:
            line = self._reached[step.index]  # between lines: where the code stopped last
        filename = line.filename if line is not None else (trace.files[0] if trace.files else "")
        diverged = step.kind == "divergence"
        title = f"your code · {_file_title(filename)}" + (" · the code waits here" if waiting and line is not None else "")
        new = source_html(trace.source_lines(filename), filename, line.lineno if line else None, title=title, diverged=diverged, faint=waiting)
        if not diverged or self.old_trace is None or trace.divergence is None:
            return new
        old_line = _recorded_line(self.old_trace, trace.divergence.event_id)
        old_file = old_line.filename if old_line is not None else (self.old_trace.files[0] if self.old_trace.files else "")
        old = source_html(
            self.old_trace.source_lines(old_file), old_file, old_line.lineno if old_line else None,
            title=f"the code that recorded the history · {_file_title(old_file)}",
        )
        return (
            '<div class="dlab-side-by-side" style="display: flex; gap: 8px">'
            f'<div style="flex: 1; min-width: 0">{old}</div><div style="flex: 1; min-width: 0">{new}</div></div>'
        )

    def __repr__(self) -> str:
        trace = self.debugger.trace
        return f"<replay debugger: {trace.workflow_type} {trace.history.workflow_id!r}, {len(trace.steps)} steps, at step {self.debugger.position}>"


def _file_title(filename: str) -> str:
    return place(filename, 1).removesuffix(", line 1").removesuffix(":1")


def _recorded_line(old: ReplayTrace, event_id: int | None) -> Any:
    """The line of the old code whose command the history recorded as event ``event_id``;
    for an event that records no command, the line the old code had reached by then."""
    reached = None
    for step in old.steps:
        if step.kind == "line":
            reached = step.line
        elif step.kind == "event" and step.event_id == event_id:
            return step.matched.line if step.matched is not None else reached
    return reached if event_id is None else None
