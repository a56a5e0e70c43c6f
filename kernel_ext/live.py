"""A run's view that refreshes as its history grows (ipywidgets HTML views).

The refresher is a task on the kernel's event loop, which ipykernel keeps running between
cells: it wakes when this process commits events of the run (and polls, for runs driven by
other processes), re-renders the graph and table off the loop, and stops when the run closes.

Above the graph a status line beats about once a second while the run runs: how long it
has been running, counted to now, and when its last event was. Nothing in the browser can
tell a kernel that went away (a restart, a shutdown) from a quiet one, and ipywidgets
leaves the view frozen, so the line carries its own alarm: CSS (no script, which HTML
widgets do not run) that shows "this view stopped updating" a few seconds after the line
was last redrawn, and keeps counting the run's time to now there. Every beat replaces the
line, which restarts that countdown; when the beats stop, the alarm shows.
"""

from __future__ import annotations

import asyncio
import html
from datetime import datetime
from typing import Any, Iterable

from engine.client import WorkflowHandle, wait_first
from engine.errors import EngineError
from engine.history import History

from kernel_ext.display import RunView
from kernel_ext.graphs import seconds_between

__all__ = ["LiveRunView"]

STALE_AFTER = 6  # seconds without a beat before the view says it stopped updating
# @property makes --dlab-age an animatable integer: it counts up from the --dlab-from the
# line was drawn with, one a second, and the counters print it as h:mm:ss.
_ALARM_CSS = f"""<style>
@property --dlab-age {{syntax: "<integer>"; inherits: true; initial-value: 0;}}
@keyframes dlab-count {{from {{--dlab-age: var(--dlab-from)}} to {{--dlab-age: calc(var(--dlab-from) + 864000)}}}}
@keyframes dlab-show {{to {{max-height: 20em; opacity: 1;}}}}
@keyframes dlab-hide {{to {{max-height: 0; opacity: 0;}}}}
.dlab-stale {{max-height: 0; opacity: 0; overflow: hidden; animation: dlab-show 0s {STALE_AFTER}s forwards;}}
.dlab-beat {{max-height: 5em; overflow: hidden; animation: dlab-hide 0s {STALE_AFTER}s forwards;}}
.dlab-age {{animation: dlab-count 864000s linear forwards; counter-reset: dlab-h round(down, var(--dlab-age) / 3600, 1)
  dlab-m round(down, mod(var(--dlab-age), 3600) / 60, 1) dlab-s mod(var(--dlab-age), 60);}}
.dlab-age::after {{content: counter(dlab-h) ":" counter(dlab-m, decimal-leading-zero) ":" counter(dlab-s, decimal-leading-zero);}}
</style>"""
_ALARM_STYLE = "background: #fff4e5; border: 1px solid #e0a040; border-radius: 3px; padding: 4px 8px; margin: 4px 0"
_LINE_STYLE = "color: #555; font-size: 90%; margin: 2px 0"


def clock_time(seconds: float) -> str:
    """``192.4`` -> ``"0:03:12"``: the format the alarm's counters use too."""
    whole = max(int(seconds), 0)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def status_line(history: History | None, now: datetime, closed: bool) -> str:
    """The beating line above the graph: the run's time to ``now`` and, hidden until the
    beats stop for ``STALE_AFTER`` seconds, the alarm that says the view stopped updating."""
    if history is None or not history.events:
        return f'<p style="{_LINE_STYLE}">live view: waiting for the run\'s first event</p>'
    if closed:
        return f'<p style="{_LINE_STYLE}">live view: the run has closed; this view is final.</p>'
    ran = seconds_between(history.events[0].event_time, now) or 0.0
    quiet = seconds_between(history.events[-1].event_time, now) or 0.0
    line = (
        f'<p class="dlab-beat" style="{_LINE_STYLE}">● live: running for <strong>{clock_time(ran)}</strong>, '
        f"last event {clock_time(quiet)} ago (this line updates every second)</p>"
    )
    workflow_id = html.escape(history.workflow_id)
    alarm = (
        f'<div class="dlab-stale" style="{_ALARM_STYLE}"><strong>This view stopped updating</strong> '
        f'<span class="dlab-age" style="--dlab-from: 0"></span> ago: the kernel that drew it was restarted or '
        f"shut down, or is busy running a long cell. The run may have moved on since; by now it has been "
        f'running for <span class="dlab-age" style="--dlab-from: {int(ran)}"></span> unless it closed. Run the '
        f"cell again, or <code>%workflow show --workflow-id {workflow_id}</code>, to see it now.</div>"
    )
    return _ALARM_CSS + line + alarm


class LiveRunView:
    """Display a run and keep the display current until the run closes."""

    POLL = 0.5
    MIN_INTERVAL = 0.3

    def __init__(self, handle: WorkflowHandle, *, title: str | None = None) -> None:
        self.handle = handle
        self.title = title
        self.closed = False
        self.renders = 0
        self.history: History | None = None
        self._widget: Any = None
        self._line: Any = None
        self._body: Any = None
        self._task: asyncio.Task[None] | None = None

    async def render(self) -> tuple[RunView, bool]:
        """A fresh static view of the run, and whether the run has closed."""
        snapshot = await self.handle.snapshot()
        self.history = snapshot.history
        return RunView.of(snapshot, title=self.title), snapshot.closed

    def line(self) -> str:
        """The status line as of the engine's clock now."""
        return status_line(self.history, self.handle._client.clock.now(), self.closed)

    async def refresh(self) -> str:
        """Re-render; returns the HTML of the graph and table (and puts it and the status
        line in the widget, when there is one)."""
        view, closed = await self.render()
        # Graphviz runs in a subprocess: keep the kernel's loop free meanwhile.
        markup = await asyncio.to_thread(view.to_html)
        self.renders += 1
        self.closed = closed
        if self._widget is not None:
            self._body.value = markup  # unchanged markup sends nothing: open <details> stay open
            self._line.value = self.line()
        return markup

    async def follow(self) -> None:
        """Refresh on every change until the run closes (or its engine does)."""
        store = self.handle._client.store
        while True:
            run_id = self.handle.run_id or ""
            changed = store.waiter("history", run_id)
            try:
                await self.refresh()
            except EngineError as e:
                # The engine was closed or reset under the view: say so and stop following.
                if self._widget is not None:
                    self._line.value = f"<p><em>{html.escape(str(e))}</em></p>"
                return
            if self.closed:
                return
            await wait_first([changed.wait()], timeout=self.POLL)
            await asyncio.sleep(self.MIN_INTERVAL)  # at most a few renders a second

    def widget(self) -> Any:
        """The ipywidgets view (status line above graph and table), started following the
        run on the running loop."""
        import ipywidgets

        if self._widget is None:
            self._line = ipywidgets.HTML(value="")
            self._body = ipywidgets.HTML(value="<p><em>loading the run...</em></p>")
            self._widget = ipywidgets.VBox([self._line, self._body])
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self.follow(), name=f"live view {self.handle.id}")
        return self._widget

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _repr_mimebundle_(self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any) -> dict[str, Any]:
        data: dict[str, Any] = {"text/plain": f"<live view of run {self.handle.id!r}>"}
        try:
            bundle = self.widget()._repr_mimebundle_()
        except (ImportError, RuntimeError):
            return data  # no widgets, or no running loop (a plain terminal): text only
        data.update({k: v for k, v in bundle.items() if k != "text/plain"})
        return data
