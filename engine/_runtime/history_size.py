"""``workflow.info().get_current_history_size()``: the history's size in bytes as the
current workflow task began, as temporalio reports it.

Temporal's server records that size on each ``WorkflowTaskStarted`` (``historySizeBytes``:
the history's encoded size so far) and the SDK hands it to workflow code. A history
recorded by a real Temporal server carries it, and it is used as it is. The engine writes
no such attribute, so for its own histories the size is measured here: the bytes of each
earlier event as the engine stores it (its type, time and attributes as compact JSON). It
is the same on every replay of the same history, and it grows as Temporal's does, which is
what code comparing it with a limit (to continue as new in time) needs.

Measured lazily: most runs never ask, so events are only kept (a bounded number) until asked.
"""

from __future__ import annotations

from typing import Any

import orjson

from engine.history import HistoryEvent

# Events kept unmeasured at most; beyond, they are measured in one go and dropped. Measuring
# every event cost replay 40% of its time (benchmarks/replay.py); most runs never ask.
_KEEP = 4096

# Bytes of the fields every stored event has beside its attributes: ids, a timestamp, keys.
_ENVELOPE = len('{"eventId":"","eventTime":"2000-01-01T00:00:00.000000Z","eventType":"","attributes":}')


def event_size(event: HistoryEvent) -> int:
    attributes = orjson.dumps(event.attributes, default=str, option=orjson.OPT_NON_STR_KEYS)  # compact UTF-8
    return _ENVELOPE + len(str(event.event_id)) + len(event.event_type) + len(attributes)


class HistorySize:
    """The running size of one run's history, fed every event the instance applies."""

    def __init__(self) -> None:
        self._measured = 0  # bytes of the events measured so far
        # The instance appends each event it applies here itself, then calls ``added`` once
        # (a method call per event was the one call the busy path had gained per event).
        # Only changed in place, so that an append bound before workflow code asks for the
        # size stays valid.
        self.unmeasured: list[HistoryEvent] = []
        self._recorded: int | None = None  # the server's historySizeBytes of the current task

    def add(self, event: HistoryEvent) -> None:
        self.unmeasured.append(event)
        self.added()

    def added(self) -> None:
        """Events were appended to ``unmeasured``: measure them once too many are kept."""
        if len(self.unmeasured) > _KEEP:
            self._measure(self.unmeasured[-1].event_id)

    def task_started(self, started: HistoryEvent) -> None:
        recorded: Any = started.attributes.get("historySizeBytes")
        try:
            self._recorded = int(recorded) if recorded is not None else None
        except (TypeError, ValueError):
            self._recorded = None

    def current(self, started_event_id: int) -> int:
        """The size as the workflow task whose WorkflowTaskStarted is ``started_event_id`` began."""
        if self._recorded is not None:
            return self._recorded
        self._measure(started_event_id - 1)
        return self._measured

    def _measure(self, upto: int) -> None:
        keep = []
        for event in self.unmeasured:
            if event.event_id <= upto:
                self._measured += event_size(event)
            else:
                keep.append(event)
        self.unmeasured[:] = keep
