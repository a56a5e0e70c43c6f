"""Notebook displays of the saga view and of a continue-as-new chain (re-exported by
:mod:`kernel_ext.display`): a one-line summary, the graph, and a table of the same things."""

from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from engine.history import History
from kernel_ext._dot import short_ids
from kernel_ext._html import MIME_TYPES, graph_html, html_table, text_table, wanted
from kernel_ext._saga import SagaPlan, saga_plan
from kernel_ext._steps import history_timeline_rows
from kernel_ext._steps._read import shorten
from kernel_ext.graphs import chain_graph, render_svg, saga_dot

if TYPE_CHECKING:
    from engine.client import ActivityAttempt

_DETAIL_LIMIT = 90
# Words in the status column that are not step statuses, and the colour they take.
_STATUS_OF_WORD = {"compensated": "ok", "completed": "ok", "continued as new": "ok", "failed": "failed",
                   "cancelled": "cancelled", "terminated": "failed", "timed out": "failed", "running": "running"}


class _View:
    """Title, summary, graph and table; subclasses say what goes in them."""

    title: str
    header: tuple[str, ...]

    @property
    def dot(self) -> str:
        raise NotImplementedError

    def summary(self) -> str:
        raise NotImplementedError

    def table(self) -> list[tuple[str, ...]]:
        """The rows of the table: the status is the third cell."""
        raise NotImplementedError

    def to_text(self) -> str:
        rows = [row[:-1] + (shorten(row[-1], _DETAIL_LIMIT),) for row in self.table()]
        return f"{self.title}: {self.summary()}\n\n{text_table(self.header, rows)}"

    def to_html(self) -> str:
        table = html_table(self.header, self.table(), status_column=2, status_colours=_STATUS_OF_WORD)
        return (
            f"<div><p><strong>{html.escape(self.title)}</strong>: {html.escape(self.summary())}</p>"
            f"{graph_html(self.dot, render_svg)}{table}</div>"
        )

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, str]:
        makers = {"text/plain": self.to_text, "text/html": self.to_html}
        return {mime: makers[mime]() for mime in MIME_TYPES if mime in wanted(include, exclude)}


class SagaView(_View):
    """A run as a saga: forward steps, the failure, the compensations and what each undoes
    (see :func:`kernel_ext.graphs.saga_dot`)."""

    header = ("ROLE", "STEP", "STATUS", "UNDOES", "DETAIL")

    def __init__(self, history: History, attempts: Sequence[ActivityAttempt] = (), *, title: str | None = None) -> None:
        self.history = history
        self.attempts = tuple(attempts)
        self.title = title or " · ".join(p for p in (history.workflow_type, history.workflow_id) if p) or "run"

    @functools.cached_property
    def plan(self) -> SagaPlan:
        return saga_plan(history_timeline_rows(self.history, self.attempts))

    @functools.cached_property
    def dot(self) -> str:
        return saga_dot(self.history, self.attempts)

    def summary(self) -> str:
        return "saga · " + self.plan.describe()

    def table(self) -> list[tuple[str, ...]]:
        plan = self.plan
        rows: list[tuple[str, ...]] = []
        for number, row in enumerate(plan.forward, start=1):
            role = f"step {number}" + (" (failed)" if row is plan.trigger else "")
            rows.append((role, row["title"], row["status"], "", row["detail"]))
        if plan.trigger is not None and all(row is not plan.trigger for row in plan.forward):
            rows.append(("stopped by", plan.trigger["title"], plan.trigger["status"], "", plan.trigger["detail"]))
        for group in plan.groups:
            role = "compensation" + (" (parallel)" if len(group) > 1 else "")
            for row in group:
                link = plan.undone_by(row)
                undoes = f"step {link.forward + 1}: {plan.forward[link.forward]['title']}" if link else "?"
                status = "compensated" if row["status"] in ("ok", "retried") else row["status"]
                rows.append((role, row["title"], status, undoes, row["detail"]))
        if plan.result is not None:
            rows.append(("end", plan.result["title"], plan.result["status"], "", plan.result["detail"]))
        return rows


class ChainView(_View):
    """The runs of a continue-as-new chain, first to last (see
    :func:`kernel_ext.graphs.chain_graph`)."""

    header = ("RUN", "RUN ID", "STATUS", "EVENTS", "DETAIL")

    def __init__(
        self,
        histories: Sequence[History],
        attempts: Mapping[str, Sequence[ActivityAttempt]] | None = None,
        *,
        title: str | None = None,
    ) -> None:
        self.histories = tuple(histories)
        self.attempts = dict(attempts or {})
        first = self.histories[0] if self.histories else None
        self.title = title or (" · ".join(p for p in (first.workflow_type, first.workflow_id) if p) if first else "chain")

    @functools.cached_property
    def dot(self) -> str:
        return chain_graph(self.histories, attempts=self.attempts)

    def summary(self) -> str:
        last = self.table()[-1] if self.histories else None
        count = len(self.histories)
        return f"{count} run{'s' if count != 1 else ''} linked by continue-as-new" + (
            f" · the last one {last[2]}" if last else ""
        )

    def table(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        labels = short_ids([history.run_id for history in self.histories])
        for number, history in enumerate(self.histories, start=1):
            steps = history_timeline_rows(history, self.attempts.get(history.run_id, ()))
            end = steps[-1] if steps else None
            status = end["title"].lower() if end else "empty"
            detail = end["detail"] if end else ""
            rows.append((str(number), labels[history.run_id], status, str(len(history.events)), detail))
        return rows
