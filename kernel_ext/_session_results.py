"""What the session's verbs return, shown as text where there is no front end: run tables,
descriptions, the engine's status, a time jump, JSON documents, and the handle of a started run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Generator, Iterable, Mapping, Sequence

from engine.client import WorkflowExecutionDescription, WorkflowHandle
from engine.errors import WorkflowFailureError
from engine.history import History
from kernel_ext._errors import shown_in_notebook


# ---------------------------------------------------------------------- text views
def _text_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class _Text:
    """Shows ``text()`` as the notebook's plain-text output (a readable static export)."""

    def text(self) -> str:
        raise NotImplementedError

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def __repr__(self) -> str:
        return self.text()


@dataclass(frozen=True, repr=False)
class RunTable(_Text):
    """``%workflow list``: runs, newest first."""

    runs: tuple[WorkflowExecutionDescription, ...]

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Any:
        return iter(self.runs)

    def text(self) -> str:
        if not self.runs:
            return "No workflow runs yet."
        rows = [(r.status.name.title().replace("_", ""), r.id, r.workflow_type, r.task_queue, _when(r.start_time)) for r in self.runs]
        return _text_table(("Status", "WorkflowId", "Type", "TaskQueue", "StartTime"), rows)


def _shown(value: Any) -> str:
    """A search attribute or memo value as JSON text (datetimes in ISO form)."""
    return json.dumps(value, ensure_ascii=False, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))


@dataclass(frozen=True, repr=False)
class RunDescription(_Text):
    """``%workflow describe``: one run's status and counts (fields of the engine's description)."""

    description: WorkflowExecutionDescription
    # (field, value as text) of the memo, decoded ahead (decoding may run the codec).
    memo: tuple[tuple[str, str], ...] = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.description, name)

    def text(self) -> str:
        d = self.description
        rows = [
            ("WorkflowId", d.id), ("RunId", d.run_id), ("Type", d.workflow_type), ("TaskQueue", d.task_queue),
            ("Status", d.status.name), ("StartTime", _when(d.start_time)), ("CloseTime", _when(d.close_time)),
            ("HistoryLength", d.history_length), ("PendingActivities", d.pending_activities), ("PendingTimers", d.pending_timers),
        ]
        lines = [f"{k:<18} {v}".rstrip() for k, v in rows]
        attributes = [(pair.key.name, _shown(pair.value)) for pair in d.typed_search_attributes]
        for title, pairs in (("SearchAttributes", attributes), ("Memo", self.memo)):
            if pairs:
                lines.append(f"{title}:")
                lines += [f"  {k:<16} {v}".rstrip() for k, v in pairs]
        if d.auto_reset_points:  # where %workflow reset -e N can take the run: one per build of the code
            lines.append("ResetPoints:      (%workflow reset -e EVENT)")
            for p in d.auto_reset_points:
                note = "" if p.get("resettable", True) else "  not resettable (a child, signal or cancel it sent is pending)"
                lines.append(f"  event {p.get('firstWorkflowTaskCompletedId', '?'):<10} build {p.get('buildId', '')}  {p.get('createTime', '')}{note}".rstrip())
        return "\n".join(lines)


@dataclass(frozen=True)
class JsonDocument:
    """A JSON value shown as a tree where the front end can, as indented text elsewhere."""

    data: Any

    def text(self) -> str:
        return json.dumps(self.data, indent=2, ensure_ascii=False)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"application/json": self.data, "text/plain": self.text()}


@dataclass(frozen=True, repr=False)
class _PlainEventTable(_Text):
    """Stand-in for ``kernel_ext.display.EventTable`` while that module is missing."""

    history: History
    detailed: bool = False

    def text(self) -> str:
        rows = []
        for e in self.history.events:
            details = json.dumps(dict(e.attributes), ensure_ascii=False) if self.detailed else ""
            rows.append((e.event_id, _when(e.event_time), e.event_type, details))
        return _text_table(("Id", "Time", "Type", "Details" if self.detailed else ""), rows)


@dataclass(frozen=True, repr=False)
class EngineStatus(_Text):
    """``%engine``: where the database is, which clock runs, workers, and runs by status."""

    db_path: str
    resolved_path: str
    time_mode: str
    now: datetime
    workers: tuple[tuple[str, str, str], ...]
    runs: Mapping[str, int]
    workflows: tuple[str, ...]
    activities: tuple[str, ...]
    errors: tuple[str, ...] = ()
    codec: str = ""

    def text(self) -> str:
        where = self.db_path if self.db_path == self.resolved_path else f"{self.db_path}  ({self.resolved_path})"
        clock = "real time" if self.time_mode == "real" else f"time skipping (engine time {_when(self.now)})"
        workers = ", ".join(f"{n} (task queue {q!r}, {s})" for n, q, s in self.workers) or "none (start one: %worker start --task-queue Q)"
        runs = ", ".join(f"{s} {n}" for s, n in sorted(self.runs.items())) or "none"
        lines = [
            "durable-lab engine",
            f"  database    {where}",
            f"  clock       {clock}",
            f"  workflows   {', '.join(self.workflows) or 'none (define one in a %%workflow cell)'}",
            f"  activities  {', '.join(self.activities) or 'none (define one in an %%activity cell)'}",
            f"  workers     {workers}",
            f"  runs        {runs}",
        ]
        if self.codec:
            lines.insert(3, f"  codec       {self.codec}")
        lines += [f"  engine log  {e}" for e in self.errors]
        return "\n".join(lines)


@dataclass(frozen=True, repr=False)
class TimeAdvance(_Text):
    """``%engine --advance``: the engine's time before and after."""

    before: datetime
    after: datetime
    delta: timedelta

    def text(self) -> str:
        from kernel_ext._steps import format_seconds

        return f"engine time {_when(self.before)} -> {_when(self.after)} (+{format_seconds(self.delta.total_seconds())})"


# ---------------------------------------------------------------------- handles
class RunHandle:
    """A started run. ``await`` it for the result; other engine handle methods pass through
    (``await h.describe()``, ``await h.fetch_history()``, ``await h.cancel()``)."""

    def __init__(self, handle: WorkflowHandle, workflow_type: str, task_queue: str) -> None:
        self.handle = handle
        self.workflow_type = workflow_type
        self.task_queue = task_queue

    @property
    def workflow_id(self) -> str:
        return self.handle.id

    @property
    def run_id(self) -> str | None:
        return self.handle.run_id

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.handle, name)

    async def result(self) -> Any:
        """The run's result; a failed run raises ``WorkflowFailureError`` that a notebook
        shows as its cause chain and the user's frames (no engine internals)."""
        try:
            return await self.handle.result()
        except WorkflowFailureError as e:
            raise shown_in_notebook(e, self.workflow_id, self.workflow_type)

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result().__await__()

    def __repr__(self) -> str:
        return (
            f"<run {self.workflow_id!r} of {self.workflow_type} on task queue {self.task_queue!r}, "
            f"run id {self.run_id}: await it for the result>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **_: Any) -> dict[str, Any]:
        """The text above, plus (in a notebook) the run's explorer, following it as it runs."""
        from kernel_ext._explorer_handle import handle_bundle

        bundle = handle_bundle(self.handle)
        bundle["text/plain"] = repr(self)
        return bundle
