"""Behaviours matched against what temporalio and a real Temporal server record.

The real histories are in ``tests/histories`` (recorded by ``record_fixtures.py`` on a
Temporal 1.32 dev server with temporalio 1.35); the same workflows are written here with
our API and replayed against them.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from engine import Worker, workflow
from engine.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from engine.history import History, load_history
from engine.replay import Replayer
from engine.testing import WorkflowEnvironment

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


@workflow.defn
class WaitConditionTrueWorkflow:
    """tests/histories/fixture_workflows.py's workflow of the same name, with our imports."""

    def __init__(self) -> None:
        self.ready = True

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.wait_condition(lambda: self.ready, timeout=timedelta(seconds=30))
        await workflow.sleep(timedelta(milliseconds=100))
        return f"ready: {name}"


async def test_wait_condition_already_true_starts_no_timer() -> None:
    # temporalio: a timer started and cancelled before the activation ends is never sent,
    # but its sequence number is spent (the next timer is "2").
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[WaitConditionTrueWorkflow]):
        handle = await env.client.start_workflow(WaitConditionTrueWorkflow.run, "Ada", id="w", task_queue="q")
        assert await handle.result() == "ready: Ada"
        history = await handle.fetch_history()
    await env.shutdown()
    timers = [(e.event_type, e.attributes.get("timerId")) for e in history.events if e.event_type.startswith("Timer")]
    assert timers == [("TimerStarted", "2"), ("TimerFired", "2")]
    Replayer(workflows=[WaitConditionTrueWorkflow]).replay_workflow(history)


def test_real_wait_condition_history_replays() -> None:
    history = load_history(HISTORIES / "wait_condition_true.json")
    Replayer(workflows=[WaitConditionTrueWorkflow]).replay_workflow(history)


KEYWORD = SearchAttributeKey.for_keyword("CustomKeywordField")
TEXT = SearchAttributeKey.for_text("CustomTextField")
INT = SearchAttributeKey.for_int("CustomIntField")
DOUBLE = SearchAttributeKey.for_float("CustomDoubleField")
BOOL = SearchAttributeKey.for_bool("CustomBoolField")
DATETIME = SearchAttributeKey.for_datetime("CustomDatetimeField")
KEYWORD_LIST = SearchAttributeKey.for_keyword_list("CustomKeywordListField")
START_ATTRIBUTES = TypedSearchAttributes([
    SearchAttributePair(KEYWORD, "started"),
    SearchAttributePair(TEXT, "some words"),
    SearchAttributePair(INT, 7),
    SearchAttributePair(DOUBLE, 1.5),
    SearchAttributePair(BOOL, True),
    SearchAttributePair(DATETIME, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    SearchAttributePair(KEYWORD_LIST, ["a", "b"]),
])


@workflow.defn
class SearchAttributesWorkflow:
    """tests/histories/fixture_workflows.py's workflow of the same name, with our imports."""

    @workflow.run
    async def run(self, round: int) -> dict:
        seen = {
            "keyword": workflow.info().typed_search_attributes.get(KEYWORD),
            "int": workflow.info().typed_search_attributes.get(INT),
            "memo": dict(workflow.memo()),
        }
        if round == 0:
            workflow.upsert_search_attributes([INT.value_set(8), KEYWORD_LIST.value_set(["c"]), TEXT.value_unset()])
            workflow.upsert_memo({"note": "changed", "gone": None})
            if workflow.patched("sa-change"):
                await workflow.sleep(timedelta(milliseconds=100))
            workflow.continue_as_new(1)
        return seen


def _real(name: str) -> History:
    return History.from_json("fixture-search-attributes", (HISTORIES / f"{name}.json").read_text())


def _shape(history: History) -> list[tuple[str, Any]]:
    """Event types, with the names and decoded payload metadata of search attributes and memo."""
    shape: list[tuple[str, Any]] = []
    for event in history.events:
        attrs = event.attributes
        fields = (attrs.get("searchAttributes") or {}).get("indexedFields") or {}
        memo = ((attrs.get("memo") or attrs.get("upsertedMemo") or {}).get("fields")) or {}
        detail = (
            {k: {m: base64.b64decode(v).decode() for m, v in p["metadata"].items()} | {"data": p.get("data")} for k, p in fields.items()},
            {k: (base64.b64decode(p["metadata"]["encoding"]).decode(), p.get("data")) for k, p in memo.items()},
        ) if fields or memo else None
        shape.append((event.event_type, detail))
    return shape


def test_real_search_attribute_and_patch_histories_replay() -> None:
    replayer = Replayer(workflows=[SearchAttributesWorkflow])
    replayer.replay_workflow(_real("search_attributes_1"))
    replayer.replay_workflow(_real("search_attributes_2"))


async def test_our_search_attribute_history_is_the_real_one() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[SearchAttributesWorkflow]):
        handle = await env.client.start_workflow(
            SearchAttributesWorkflow.run, 0, id="fixture-search-attributes", task_queue="q",
            search_attributes=START_ATTRIBUTES, memo={"note": "first", "gone": 1},
        )
        result = await handle.result()
        first = await env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id).fetch_history()
        second = await env.client.get_workflow_handle(handle.id).fetch_history()
    await env.shutdown()
    assert result == {"keyword": "started", "int": 8, "memo": {"gone": 1, "note": "first"}}
    assert _real("search_attributes_2").result() == result
    for ours, real in ((first, _real("search_attributes_1")), (second, _real("search_attributes_2"))):
        assert [dict(sorted(d[0].items())) if d else None for _, d in _shape(ours)] == [
            dict(sorted(d[0].items())) if d else None for _, d in _shape(real)
        ]
        assert [(t, d[1] if d else None) for t, d in _shape(ours)] == [(t, d[1] if d else None) for t, d in _shape(real)]
    # The first workflow task records SDK flag 2 (upsert after each patch marker), as temporalio does.
    assert {1, 2} <= set(first.events[3].attributes["sdkMetadata"]["coreUsedFlags"])


async def test_a_history_written_before_the_change_version_upsert_still_replays(monkeypatch: pytest.MonkeyPatch) -> None:
    # What this engine wrote before: SDK flag 1 only, and no upsert after the patch marker.
    from engine._runtime import instance as _runtime
    from engine._history import commands as history_commands

    @workflow.defn(name="Versioned", sandboxed=False)
    class Versioned:
        @workflow.run
        async def run(self) -> str:
            if workflow.patched("v2"):
                await workflow.sleep(timedelta(seconds=1))
            return "done"

    monkeypatch.setattr(history_commands, "SDK_FLAGS", [1])
    monkeypatch.setattr(_runtime, "SDK_FLAGS", [1])
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Versioned]):
        old = await env.client.execute_workflow(Versioned.run, id="old", task_queue="q")
        old_history = await env.client.get_workflow_handle("old").fetch_history()
    monkeypatch.undo()
    async with Worker(env.client, task_queue="q", workflows=[Versioned]):
        await env.client.execute_workflow(Versioned.run, id="new", task_queue="q")
        new_history = await env.client.get_workflow_handle("new").fetch_history()
    await env.shutdown()
    assert old == "done"
    assert "UpsertWorkflowSearchAttributes" not in [e.event_type for e in old_history.events]
    assert [e.event_type for e in new_history.events][4:6] == ["MarkerRecorded", "UpsertWorkflowSearchAttributes"]
    Replayer(workflows=[Versioned]).replay_workflow(old_history)
    Replayer(workflows=[Versioned]).replay_workflow(new_history)


def test_real_patched_history_replays() -> None:
    @workflow.defn(name="PatchedWorkflow", sandboxed=False)
    class PatchedWorkflow:
        @workflow.run
        async def run(self, name: str) -> str:
            if workflow.patched("my-change"):
                result = await workflow.execute_activity("greet", name, start_to_close_timeout=timedelta(seconds=10))
            else:
                result = await workflow.execute_activity("cleanup", name, start_to_close_timeout=timedelta(seconds=10))
            workflow.patched("my-change")
            workflow.deprecate_patch("other-change")
            await workflow.sleep(timedelta(milliseconds=100))
            return result

    Replayer(workflows=[PatchedWorkflow]).replay_workflow(History.from_json("fixture-patched", (HISTORIES / "patched.json").read_text()))
