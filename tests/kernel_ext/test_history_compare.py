"""``compare_histories``: two histories of the same code lined up, differences explained."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.history import History, HistoryEvent, load_history
from kernel_ext.history_compare import ALLOWED, compare_histories

SAGA = load_history(Path(__file__).resolve().parents[1] / "histories" / "saga.json")


def _changed(history: History, change: Any) -> History:
    return History(history.workflow_id, tuple(change(e) for e in history.events))


def _with(event: HistoryEvent, **attributes: Any) -> HistoryEvent:
    return dataclasses.replace(event, attributes={**event.attributes, **attributes})


def test_a_history_is_the_same_as_itself() -> None:
    comparison = compare_histories(SAGA, SAGA)
    assert comparison.same and {row[3] for row in comparison.rows()} == {"same"}
    assert comparison.summary().startswith("Same steps")


@settings(max_examples=25, deadline=None)
@given(field=st.sampled_from(sorted(ALLOWED)), value=st.text(max_size=8))
def test_an_allowed_field_may_differ_and_says_why(field: str, value: str) -> None:
    other = _changed(SAGA, lambda e: _with(e, **{field: value}) if e.event_type.startswith("Activity") else e)
    comparison = compare_histories(SAGA, other)
    assert comparison.same
    if value:
        assert (field, ALLOWED[field]) in comparison.reasons()


def test_another_activity_is_not_allowed_and_named() -> None:
    def rename(event: HistoryEvent) -> HistoryEvent:
        if event.event_type == "ActivityTaskScheduled" and event.event_id == first_book:
            return _with(event, activityType={"name": "reserve"})
        return event

    first_book = next(e.event_id for e in SAGA.events if e.event_type == "ActivityTaskScheduled")

    comparison = compare_histories(SAGA, _changed(SAGA, rename))
    assert not comparison.same
    verdicts = [row[3] for row in comparison.rows() if row[3] != "same"]
    assert verdicts == ["NOT allowed: activityType.name (book vs reserve)"]
    assert "1 of the" in comparison.summary() and "NOT allowed: activityType.name" in comparison._repr_html_()


def test_workflow_tasks_are_counted_apart_and_a_missing_step_is_not_allowed() -> None:
    fewer_tasks = History(SAGA.workflow_id, tuple(e for e in SAGA.events if e.event_type != "WorkflowTaskTimedOut"
                                                    and not (e.event_type.startswith("WorkflowTask") and e.event_id > 10)))
    comparison = compare_histories(SAGA, fewer_tasks)
    assert comparison.same and comparison.workflow_tasks[0] > comparison.workflow_tasks[1]
    shorter = History(SAGA.workflow_id, SAGA.events[:-1])
    cut = compare_histories(SAGA, shorter, names=("recorded", "replayed"))
    assert not cut.same and cut.rows()[-1][2:] == ("only in one history", "NOT allowed: the code took another path")
    assert cut.text().splitlines()[2].startswith("recorded")
