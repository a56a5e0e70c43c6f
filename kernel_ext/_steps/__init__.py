"""Events to steps: a history as the steps a learner thinks in, and those steps collapsed.

A history holds bookkeeping events (workflow tasks scheduled, started, completed) around
the events that matter to a reader. :func:`history_timeline_rows` groups the events into
steps: the start, each activity with all its attempts, timers, versioning patches and
other markers, signals, updates, child workflows, cancel requests, workflow task failures
and the final result.

Steps that one workflow task started together (same ``workflowTaskCompletedEventId``)
run in parallel. Long runs of identical steps (an activity called in a loop) are
collapsed into one row (``echo x500``) by :func:`collapse_rows`.

The modules, each one idea: ``_read`` (forgiving readers of attributes, formatting),
``_model`` (a step being built, the timeline of steps), ``_activities``, ``_messages``
and ``_runs`` (one handler per event type: activities and timers; signals, updates,
markers; the run's start and end and the runs it is linked to), ``_rows`` (the loop over
events, one row per step) and ``_collapse`` (layers of parallel steps, collapsing).

The public names are re-exported by :mod:`kernel_ext.graphs`; import them from there.
"""

from __future__ import annotations

from kernel_ext._steps._collapse import collapse_rows, collapsed_layers
from kernel_ext._steps._read import (
    format_duration,
    format_event_ids,
    format_offset,
    format_seconds,
    seconds_between,
)
from kernel_ext._steps._rows import Row, history_timeline_rows

__all__ = [
    "Row",
    "collapse_rows",
    "collapsed_layers",
    "format_duration",
    "format_event_ids",
    "format_offset",
    "format_seconds",
    "history_timeline_rows",
    "seconds_between",
]
