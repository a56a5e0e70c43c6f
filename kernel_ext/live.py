"""A run's view that refreshes as its history grows (an ipywidgets HTML view).

The refresher is a task on the kernel's event loop, which ipykernel keeps running between
cells: it wakes when this process commits events of the run (and polls, for runs driven by
other processes), re-renders the graph and table off the loop, and stops when the run closes.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any, Iterable

from engine import faults
from engine.client import WorkflowHandle, wait_first
from engine.errors import EngineError

from kernel_ext._codec import readable_run
from kernel_ext.display import RunView

__all__ = ["LiveRunView"]


class LiveRunView:
    """Display a run and keep the display current until the run closes."""

    POLL = 0.5
    MIN_INTERVAL = 0.3

    def __init__(self, handle: WorkflowHandle, *, title: str | None = None) -> None:
        self.handle = handle
        self.title = title
        self.closed = False
        self.renders = 0
        self._widget: Any = None
        self._task: asyncio.Task[None] | None = None

    async def render(self) -> tuple[RunView, bool]:
        """A fresh static view of the run, and whether the run has closed."""
        history, attempts = await readable_run(self.handle)
        last = history.events[-1].event_type if history.events else ""
        closed = last.startswith("WorkflowExecution") and last not in (
            "WorkflowExecutionStarted",
            "WorkflowExecutionSignaled",
            "WorkflowExecutionCancelRequested",
        )
        fired = await faults.fault_log(self.handle._client, run_id=history.run_id) if history.run_id else []
        return RunView(history, attempts, title=self.title, faults=fired), closed

    async def refresh(self) -> str:
        """Re-render; returns the HTML (and puts it in the widget, when there is one)."""
        view, closed = await self.render()
        # Graphviz runs in a subprocess: keep the kernel's loop free meanwhile.
        markup = await asyncio.to_thread(view.to_html)
        self.renders += 1
        if self._widget is not None:
            self._widget.value = markup
        self.closed = closed
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
                    self._widget.value = f"<p><em>{html.escape(str(e))}</em></p>"
                return
            if self.closed:
                return
            await wait_first([changed.wait()], timeout=self.POLL)
            await asyncio.sleep(self.MIN_INTERVAL)  # at most a few renders a second

    def widget(self) -> Any:
        """The ipywidgets HTML view, started following the run on the running loop."""
        import ipywidgets

        if self._widget is None:
            self._widget = ipywidgets.HTML(value="<p><em>loading the run...</em></p>")
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
