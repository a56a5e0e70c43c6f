"""A step being built from events, and the timeline that holds the steps found so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from engine.history import History, HistoryEvent
from kernel_ext._steps._read import seconds_between


@dataclass
class Step:
    """One thing a reader thinks of as a unit: an activity with all its events, a timer, a
    signal, ... ``data`` holds what later events and the row need (ids, values, links)."""

    kind: str
    title: str
    batch: int | None
    event_ids: list[int]
    offset: float | None
    status: str = "info"
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    links: list[dict[str, str]] = field(default_factory=list)


class Timeline:
    """The steps found so far, and where later events of each step will attach."""

    def __init__(self, history: History) -> None:
        self.start_time = history.events[0].event_time if history.events else None
        self.steps: list[Step] = []
        self.open: dict[tuple[str, Any], Step] = {}
        self.batch: int | None = None

    def new(self, event: HistoryEvent, kind: str, title: str, *, status: str = "info", batch: bool = True) -> Step:
        step = Step(
            kind=kind,
            title=title,
            batch=self.batch if batch else None,
            event_ids=[event.event_id],
            offset=seconds_between(self.start_time, event.event_time),
            status=status,
        )
        self.steps.append(step)
        return step

    def attach(self, event: HistoryEvent, kind: str, ref: Any) -> Step | None:
        step = self.open.get((kind, ref))
        if step is not None:
            step.event_ids.append(event.event_id)
        return step

    def offset_of(self, event: HistoryEvent) -> float | None:
        return seconds_between(self.start_time, event.event_time)


Handler = Callable[[Timeline, HistoryEvent], None]


def generic(tl: Timeline, event: HistoryEvent) -> None:
    """A step for an event type nobody taught us: its type name, nothing more."""
    tl.new(event, "event", event.event_type or "(event without a type)")
