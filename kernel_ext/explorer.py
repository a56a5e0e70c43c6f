"""The run explorer: one widget to look into a run by clicking.

``%workflow show --workflow-id ID --output explorer``, or a workflow handle shown in a
notebook, opens it. Four tabs over one run: the graph (click a node: every event behind it
with all its attributes, payloads decoded, failures with their stack traces, every activity
attempt with its timing and failure), the timeline (workflow tasks, activity attempts with
their backoff gaps, timers, signals, child runs and saga compensations as bars on a real time
axis), the events (a filter by type, a search box, pages), and the runs a click away (the
continue-as-new chain, the child runs, the parent): a click on one switches the explorer to it.
The same widget opens a Temporal server's runs: it then reads them through a
:class:`kernel_ext._temporal_views.TemporalRuns` instead of the engine's client.

The widget is an anywidget (inline ES module, no build step): clicks reach Python as trait
changes, Python answers with the details. While the run is open, a task on the kernel's event
loop re-reads it whenever it changes. The browser pings the kernel every couple of seconds;
when no answer comes, it says the kernel is gone (restarted, shut down, or busy with a long
cell) instead of freezing quietly. The output also carries ``text/html`` (the graph and the
steps, as :class:`kernel_ext.display.RunView` draws them), which nbconvert, GitHub and
stored notebook outputs show where no widget can run.
"""

from __future__ import annotations

import asyncio
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from engine.client import WorkflowExecutionStatus
from engine.errors import EngineError
from engine.history import History
from engine.run_snapshot import RunSnapshot, read_snapshot
from kernel_ext._explorer_model import ExplorerModel
from kernel_ext.display import RunView
from kernel_ext.graphs import collapse_rows, render_svg

if TYPE_CHECKING:
    from engine.client import Client
    from kernel_ext._temporal_views import TemporalRuns

__all__ = ["RunExplorer", "explore"]

_HERE = Path(__file__).parent
# Up to this many events, an open run's timeline is redrawn to now while nothing happens (its
# open bars grow); beyond, only when something happened (the steps cost CPU to remake).
_GROWING_BARS = 2000


def _svg(dot: str) -> str:
    try:
        svg = render_svg(dot)
    except RuntimeError as exc:
        return f"<p><em>{html.escape(str(exc))}</em></p>"
    if svg is None:
        return "<p><em>Graph not shown: install graphviz (apt-get install graphviz) for the graph.</em></p>"
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


class RunExplorer(anywidget.AnyWidget):  # type: ignore[misc]
    """The explorer of one run; :func:`explore` makes one from a client and ids."""

    _esm = (_HERE / "_explorer.js").read_text(encoding="utf-8")
    _css = (_HERE / "_explorer.css").read_text(encoding="utf-8")

    header = traitlets.Dict().tag(sync=True)
    svg = traitlets.Unicode("").tag(sync=True)
    timeline = traitlets.Dict().tag(sync=True)
    kinds: traitlets.List[Any] = traitlets.List().tag(sync=True)
    table = traitlets.Dict().tag(sync=True)
    runs = traitlets.Dict().tag(sync=True)
    details = traitlets.Dict().tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    # Set by the browser:
    selected = traitlets.Unicode("").tag(sync=True)
    kind_filter = traitlets.Unicode("").tag(sync=True)
    search = traitlets.Unicode("").tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    goto = traitlets.Unicode("").tag(sync=True)

    POLL = 0.5  # seconds between re-reads of an open run that another process drives
    MIN_INTERVAL = 0.3  # at most a few refreshes a second

    def __init__(self, client: Client | TemporalRuns, snapshot: RunSnapshot, *, max_nodes: int = 200, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = client
        self._loading = False
        self._max_nodes = max_nodes
        self._task: asyncio.Task[None] | None = None
        self._switching: set[asyncio.Task[None]] = set()
        self.model = ExplorerModel(snapshot, max_nodes=max_nodes)
        self.refreshes = 0
        self._show(self.model)
        self.observe(self._on_select, names="selected")
        self.observe(self._on_table, names=["kind_filter", "search", "page"])
        self.observe(self._on_goto, names="goto")
        self.on_msg(self._on_message)

    # ------------------------------------------------------------------ drawing
    def _show(self, model: ExplorerModel, svg: str | None = None) -> None:
        previous = getattr(self, "model", None)
        self.model = model
        with self.hold_sync():
            self.header = model.header()
            if previous is None or previous.dot != model.dot or not self.svg:
                self.svg = svg if svg is not None else _svg(model.dot)
            self.timeline = model.timeline.as_dict()
            self.kinds = model.kinds()
            self.runs = model.runs()
            self.table = model.table(self.kind_filter, self.search, self.page)
            if self.selected:
                self.details = model.details(self.selected)

    @classmethod
    def loading(cls, client: Client, workflow_id: str, run_id: str | None = None) -> RunExplorer:
        """An explorer that reads the run once it is shown (``_repr_mimebundle_`` cannot wait
        for a read): it starts empty, and its first refresh fills it."""
        empty = RunSnapshot(
            workflow_id=workflow_id, run_id=run_id or "", workflow_type="", task_queue="",
            status=WorkflowExecutionStatus.RUNNING, start_time=client.clock.now(), close_time=None,
            history=History(workflow_id, ()), attempts=(), chain=(), children=(),
        )
        explorer = cls(client, empty)
        explorer._loading = True
        return explorer

    @property
    def snapshot(self) -> RunSnapshot:
        return self.model.snapshot

    # ------------------------------------------------------------------ the browser's requests
    def select(self, key: str) -> dict[str, Any]:
        """What clicking ``key`` shows (also what the browser's clicks call)."""
        self.selected = key
        return dict(self.details)

    def _on_select(self, change: dict[str, Any]) -> None:
        self.details = self.model.details(change["new"]) if change["new"] else {}

    def _on_table(self, change: dict[str, Any]) -> None:
        if change["name"] != "page" and self.page != 0:
            self.page = 0  # a new filter or search starts at its first page (this runs again)
            return
        self.table = self.model.table(self.kind_filter, self.search, self.page)

    def _on_goto(self, change: dict[str, Any]) -> None:
        key = change["new"]
        if not key:
            return
        workflow_id, _, run_id = key.partition("\n")
        self._start(self.switch(workflow_id, run_id or None))

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and "ping" in content:
            self.send({"pong": content["ping"]})

    # ------------------------------------------------------------------ reading
    async def switch(self, workflow_id: str, run_id: str | None = None) -> None:
        """Show another run (a run of the chain, a child, the parent) in this explorer."""
        try:
            snapshot = await _read(self._client, workflow_id, run_id)
        except EngineError as exc:
            self.message = f"Cannot open run {run_id or 'latest'} of {workflow_id}: {exc}"
            return
        finally:
            self.goto = ""
        self.message = ""
        self.selected = ""
        self.kind_filter, self.search, self.page = "", "", 0
        self._show(ExplorerModel(snapshot, max_nodes=self._max_nodes))
        self.follow_soon()

    async def refresh(self) -> bool:
        """Read the run again and redraw what changed; returns whether the run has closed."""
        snapshot = self.snapshot
        fresh = await _read(self._client, snapshot.workflow_id, snapshot.run_id or None)
        self._loading = False
        changed = (len(fresh.history.events), fresh.attempts, fresh.status) != (
            len(snapshot.history.events), snapshot.attempts, snapshot.status)
        if changed:
            model = ExplorerModel(fresh, max_nodes=self._max_nodes)
            # The steps, the layout (a Graphviz subprocess) and the bars: off the kernel's loop.
            svg = await asyncio.to_thread(lambda: _svg(model.dot) if model.timeline is not None else "")
            self._show(model, svg)
        elif len(fresh.history.events) <= _GROWING_BARS:
            # Nothing new, but an open bar (a timer, a running attempt) grows to now.
            self.model = ExplorerModel(fresh, max_nodes=self._max_nodes)
            self.timeline = self.model.timeline.as_dict()
        self.refreshes += 1
        return fresh.closed

    async def follow(self) -> None:
        """Refresh on every change until the run closes (or its engine does)."""
        while not self.snapshot.closed:
            store = getattr(self._client, "store", None)  # a Temporal server's runs are polled
            changed = store.waiter("history", self.snapshot.run_id) if store is not None else asyncio.Event()
            try:
                if await self.refresh():
                    return
            except EngineError as exc:
                self.message = f"Stopped following the run: {exc}"
                return
            try:
                await asyncio.wait_for(changed.wait(), timeout=self.POLL)
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(self.MIN_INTERVAL)

    def follow_soon(self) -> None:
        """Follow the run on the running loop (nothing to do for a closed run)."""
        if self.snapshot.closed or (self._task is not None and not self._task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self.follow(), name=f"explorer {self.snapshot.workflow_id}")

    def _start(self, coroutine: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coroutine)
        except RuntimeError:
            coroutine.close()
            return
        # The loop keeps only a weak reference to a task: hold it until it is done.
        self._switching.add(task)
        task.add_done_callback(self._switching.discard)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # ------------------------------------------------------------------ display
    def static_html(self) -> str:
        """The run as static HTML (graph and steps): what front ends without widgets show."""
        s = self.snapshot
        if self._loading:
            command = html.escape(f"%workflow show --workflow-id {s.workflow_id} --output graph")
            return (
                f"<p>Run <code>{html.escape(s.workflow_id)}</code>{' (run id ' + html.escape(s.run_id) + ')' if s.run_id else ''}: "
                f"its explorer follows it live where widgets run; <code>{command}</code> draws it anywhere.</p>"
            )
        title = f"{s.workflow_id} ({s.workflow_type})"
        view = RunView.of(s, title=title, max_nodes=self._max_nodes)
        # The same steps and graph as the widget's: made once (a big history's costly part).
        view.rows = collapse_rows(self.model.rows)
        view.dot = self.model.dot
        return view.to_html()

    def __repr__(self) -> str:
        s = self.snapshot
        return f"<run explorer of {s.workflow_id!r} (run {s.run_id}, {s.status.name}, {len(s.history.events)} events)>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = {**(data or {}), "text/html": self.static_html()}
        self.follow_soon()
        return data, metadata


async def _read(source: Client | TemporalRuns, workflow_id: str, run_id: str | None) -> RunSnapshot:
    reader = getattr(source, "read_snapshot", None)  # a TemporalRuns; the engine's Client has none
    if reader is not None:
        return await reader(workflow_id, run_id)  # type: ignore[no-any-return]
    return await read_snapshot(source, workflow_id, run_id)  # type: ignore[arg-type]


async def explore(client: Client | TemporalRuns, workflow_id: str, run_id: str | None = None, *, max_nodes: int = 200) -> RunExplorer:
    """The explorer of run ``run_id`` of ``workflow_id`` (its latest run without one)."""
    return RunExplorer(client, await _read(client, workflow_id, run_id), max_nodes=max_nodes)

