"""temporalio's deprecated dictionary form of search attributes ({"Name": [values]}), still
accepted by temporalio with a DeprecationWarning: accepted here likewise, at start, in
upsert_search_attributes, and read back by describe().search_attributes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from engine import Worker, workflow
from engine._conversion.search_attributes_dict import typed_from_dict, updates_from_dict
from engine.common import SearchAttributeKey, TypedSearchAttributes
from engine.testing import WorkflowEnvironment

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@workflow.defn
class Upserts:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.go)
        with pytest.warns(DeprecationWarning):
            workflow.upsert_search_attributes({"CustomKeywordField": ["new-value"], "CustomIntField": []})
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


async def test_dictionary_form_at_start_and_upsert_read_back_as_lists() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Upserts]):
        with pytest.warns(DeprecationWarning, match="TypedSearchAttributes"):
            handle = await env.client.start_workflow(
                Upserts.run, id="u", task_queue="q", search_attributes={"CustomKeywordField": ["old-value"], "CustomIntField": [7]}
            )
        described = await handle.describe()
        assert described.search_attributes == {"CustomKeywordField": ["old-value"], "CustomIntField": [7]}
        assert described.typed_search_attributes.get(SearchAttributeKey.for_keyword("CustomKeywordField")) == "old-value"
        await handle.signal(Upserts.proceed)
        for _ in range(100):
            described = await handle.describe()
            if described.search_attributes.get("CustomKeywordField") == ["new-value"]:
                break
            await asyncio.sleep(0.02)
        assert described.search_attributes == {"CustomKeywordField": ["new-value"]}
        await handle.terminate()
    await env.shutdown()


def test_untyped_values_take_the_dev_servers_types_else_their_own() -> None:
    typed = typed_from_dict({
        "CustomTextField": ["words here"], "MyTags": ["a", "b"], "MyCount": [3], "MyRatio": [0.5], "MyFlag": [True],
        "MyWhen": [WHEN], "MyName": ["x"],
    })
    assert {p.key.name: (p.key.indexed_value_type.name, p.value) for p in typed} == {
        "CustomTextField": ("TEXT", "words here"), "MyTags": ("KEYWORD_LIST", ["a", "b"]), "MyCount": ("INT", 3),
        "MyRatio": ("DOUBLE", 0.5), "MyFlag": ("BOOL", True), "MyWhen": ("DATETIME", WHEN), "MyName": ("KEYWORD", "x"),
    }
    with pytest.raises(TypeError, match="MyMixed.*one type"):
        typed_from_dict({"MyMixed": [1, "a"]})
    with pytest.raises(TypeError, match="a list of values"):
        typed_from_dict({"MyName": "x"})
    # An empty list unsets, also a name the run does not have.
    [gone] = updates_from_dict({"MyGone": []}, TypedSearchAttributes.empty)
    assert (gone.key.name, gone.value) == ("MyGone", None)
