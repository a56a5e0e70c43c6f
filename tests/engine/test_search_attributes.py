"""Search attributes and memo: typed keys, start, upsert, describe, list filters, continue-as-new."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engine import Worker, workflow
from engine._persistence.list_filter import compile_list_filter
from engine.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from engine.errors import ListFilterError
from engine.testing import WorkflowEnvironment

KEYWORD = SearchAttributeKey.for_keyword("CustomKeywordField")
TEXT = SearchAttributeKey.for_text("CustomTextField")
INT = SearchAttributeKey.for_int("CustomIntField")
DOUBLE = SearchAttributeKey.for_float("CustomDoubleField")
BOOL = SearchAttributeKey.for_bool("CustomBoolField")
DATETIME = SearchAttributeKey.for_datetime("CustomDatetimeField")
KEYWORD_LIST = SearchAttributeKey.for_keyword_list("CustomKeywordListField")
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@workflow.defn
class Tagged:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, upsert: bool) -> dict:
        if upsert:
            workflow.upsert_search_attributes([INT.value_set(100), TEXT.value_unset(), KEYWORD_LIST.value_set(["c"])])
            workflow.upsert_memo({"note": "changed", "gone": None})
        await workflow.wait_condition(lambda: self.go)
        return {
            "int": workflow.info().typed_search_attributes.get(INT),
            "text": workflow.info().typed_search_attributes.get(TEXT),
            "memo": workflow.memo(),
            "note": workflow.memo_value("note", type_hint=str),
            "missing": workflow.memo_value("missing", "default"),
        }

    @workflow.signal
    def release(self) -> None:
        self.go = True


def _attrs(keyword: str, number: int, tags: list[str], flag: bool = True) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(KEYWORD, keyword),
        SearchAttributePair(TEXT, "some words"),
        SearchAttributePair(INT, number),
        SearchAttributePair(DOUBLE, number / 4),
        SearchAttributePair(BOOL, flag),
        SearchAttributePair(DATETIME, WHEN + timedelta(days=number)),
        SearchAttributePair(KEYWORD_LIST, tags),
    ])


async def test_start_upsert_describe_and_list() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Tagged]):
        a = await env.client.start_workflow(
            Tagged.run, True, id="a", task_queue="q", search_attributes=_attrs("alpha", 9, ["a", "b"]),
            memo={"note": "first", "gone": 1},
        )
        b = await env.client.start_workflow(Tagged.run, False, id="b", task_queue="q", search_attributes=_attrs("beta", 10, ["b"], False))
        await env.client.start_workflow(Tagged.run, False, id="c", task_queue="q")
        await a.signal(Tagged.release)
        result = await a.result()
        described = await a.describe()

        async def ids(query: str) -> list[str]:
            return sorted(d.id for d in await env.client.list_workflows(query))

        assert await ids("CustomKeywordField = 'alpha'") == ["a"]
        assert await ids("CustomIntField > 9") == ["a", "b"]  # 100 (upserted) and 10: numbers, not text
        assert await ids("CustomIntField >= 10 AND CustomIntField < 100") == ["b"]
        assert await ids("CustomDoubleField = 2.5") == ["b"]
        assert await ids("CustomBoolField = false") == ["b"]
        assert await ids("CustomDatetimeField > '2026-01-11T12:00:00Z'") == ["b"]
        assert await ids("CustomKeywordListField = 'b'") == ["b"]  # a's list became ["c"]
        assert await ids("CustomKeywordListField IN ('c', 'x')") == ["a"]
        assert await ids("CustomTextField IS NULL") == ["a", "c"]  # unset by a's upsert
        assert await ids("CustomKeywordField != 'alpha'") == ["b", "c"]
        assert await ids("CustomKeywordField STARTS_WITH 'be' OR WorkflowId = 'c'") == ["b", "c"]
        with pytest.raises(ListFilterError, match="'CustomKeywordFeld'.*CustomKeywordField"):
            await env.client.list_workflows("CustomKeywordFeld = 'alpha'")
        with pytest.raises(ListFilterError, match="CustomIntField takes an integer"):
            await env.client.list_workflows("CustomIntField = 'many'")
        (listed,) = await env.client.list_workflows("WorkflowId = 'b'")
        assert listed.typed_search_attributes[KEYWORD] == "beta"  # list shows them too, as temporalio's does
        await b.signal(Tagged.release)
    await env.shutdown()

    assert result == {"int": 100, "text": None, "memo": {"note": "changed"}, "note": "changed", "missing": "default"}
    assert described.typed_search_attributes[INT] == 100
    assert described.typed_search_attributes[KEYWORD_LIST] == ["c"]
    assert described.typed_search_attributes[DATETIME] == WHEN + timedelta(days=9)
    assert TEXT not in described.typed_search_attributes
    assert await described.memo() == {"note": "changed"}
    assert await described.memo_value("note") == "changed"


async def test_events_have_temporal_shapes_and_continue_as_new_carries_them() -> None:
    @workflow.defn(sandboxed=False)
    class Carried:
        @workflow.run
        async def run(self, round: int) -> dict:
            seen = {"keyword": workflow.info().typed_search_attributes.get(KEYWORD), "memo": workflow.memo()}
            if round == 0:
                workflow.upsert_search_attributes([INT.value_set(8)])
                workflow.upsert_memo({"note": "changed"})
                workflow.patched("p")
                workflow.continue_as_new(1)
            return seen

    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Carried]):
        handle = await env.client.start_workflow(
            Carried.run, 0, id="carried", task_queue="q",
            search_attributes=TypedSearchAttributes([SearchAttributePair(KEYWORD, "kept"), SearchAttributePair(INT, 7)]),
            memo={"note": "first"},
        )
        assert await handle.result() == {"keyword": "kept", "memo": {"note": "first"}}
        first = await env.client.get_workflow_handle("carried", run_id=handle.first_execution_run_id).fetch_history()
        second = await env.client.get_workflow_handle("carried").fetch_history()
        described = await env.client.get_workflow_handle("carried").describe()
    await env.shutdown()

    types = [e.event_type for e in first.events]
    assert types[4:8] == ["UpsertWorkflowSearchAttributes", "WorkflowPropertiesModified", "MarkerRecorded", "UpsertWorkflowSearchAttributes"]
    upsert = first.events[4].attributes
    assert upsert["workflowTaskCompletedEventId"] == "4"
    assert upsert["searchAttributes"]["indexedFields"]["CustomIntField"] == {
        "metadata": {"encoding": "anNvbi9wbGFpbg==", "type": "SW50"},  # json/plain, Int
        "data": "OA==",  # 8
    }
    assert set(first.events[5].attributes["upsertedMemo"]["fields"]) == {"note"}
    continued = first.events[-1].attributes
    # As a Temporal 1.32 server does (tests/histories/search_attributes_1.json): the memo as
    # the run started, the search attributes as they are now, without TemporalChangeVersion.
    assert set(continued["searchAttributes"]["indexedFields"]) == {"CustomKeywordField", "CustomIntField"}
    assert continued["memo"] == first.events[0].attributes["memo"]
    assert second.events[0].attributes["searchAttributes"] == continued["searchAttributes"]
    assert described.typed_search_attributes == TypedSearchAttributes([SearchAttributePair(KEYWORD, "kept"), SearchAttributePair(INT, 8)])


def test_typed_keys_check_their_values() -> None:
    with pytest.raises(TypeError, match="'CustomIntField' has type Int: its value must be int"):
        TypedSearchAttributes([SearchAttributePair(INT, "7")])
    with pytest.raises(TypeError, match="SearchAttributePair"):
        TypedSearchAttributes([KEYWORD.value_set("x")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="no time zone"):
        TypedSearchAttributes([SearchAttributePair(DATETIME, datetime(2026, 1, 1))])
    with pytest.raises(ValueError, match="given twice"):
        TypedSearchAttributes([SearchAttributePair(KEYWORD, "a"), SearchAttributePair(KEYWORD, "b")])
    pairs = TypedSearchAttributes([SearchAttributePair(KEYWORD_LIST, ["a"]), SearchAttributePair(KEYWORD, "x")])
    assert [p.key.name for p in pairs] == ["CustomKeywordField", "CustomKeywordListField"]  # sorted, as temporalio
    assert pairs.get(INT) is None and pairs[KEYWORD] == "x"


async def test_a_wrong_form_and_a_type_clash_are_refused_clearly() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    # (temporalio's deprecated dictionary form is accepted: tests/engine/test_search_attributes_dict.py)
    with pytest.raises(TypeError, match="TypedSearchAttributes"):
        await env.client.start_workflow("Tagged", False, id="x", task_queue="q", search_attributes=[("CustomKeywordField", "x")])  # type: ignore[arg-type]
    await env.client.start_workflow("Tagged", False, id="y", task_queue="q", search_attributes=TypedSearchAttributes([SearchAttributePair(INT, 1)]))
    clash = SearchAttributeKey.for_keyword("CustomIntField")
    with pytest.raises(ValueError, match="'CustomIntField' has type Int in this database.*for_int"):
        await env.client.start_workflow("Tagged", False, id="z", task_queue="q", search_attributes=TypedSearchAttributes([SearchAttributePair(clash, "1")]))
    await env.shutdown()


def test_custom_attributes_compile_to_index_lookups() -> None:
    custom = {"CustomIntField": "Int", "CustomKeywordListField": "KeywordList", "CustomBoolField": "Bool"}
    sql, params = compile_list_filter("CustomIntField BETWEEN 1 AND '5' AND CustomKeywordListField NOT IN ('a') OR CustomBoolField = TRUE", custom)
    assert sql == (
        "((e.run_id IN (SELECT run_id FROM search_attributes WHERE name = ? AND value BETWEEN ? AND ?) AND "
        "e.run_id NOT IN (SELECT run_id FROM search_attributes WHERE name = ? AND value IN (?))) OR "
        "e.run_id IN (SELECT run_id FROM search_attributes WHERE name = ? AND value = ?))"
    )
    assert params == ["CustomIntField", 1, 5, "CustomKeywordListField", "a", "CustomBoolField", 1]
    with pytest.raises(ListFilterError, match="CustomBoolField is a Bool: it takes = or !="):
        compile_list_filter("CustomBoolField > true", custom)
    with pytest.raises(ListFilterError, match=r"known: CustomBoolField, CustomIntField, CustomKeywordListField"):
        compile_list_filter("customintfield = 1", custom)


def test_a_filter_on_a_custom_attribute_is_an_indexed_lookup(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import sqlite3

    from engine._persistence.store import Store
    from engine._frontend.descriptions import _DESC

    async def create() -> None:
        await (await Store.open(tmp_path / "plan.db")).close()

    asyncio.run(create())
    sql, params = compile_list_filter("CustomKeywordField = 'x'", {"CustomKeywordField": "Keyword"})
    conn = sqlite3.connect(tmp_path / "plan.db")
    plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {_DESC} WHERE {sql}", params))
    conn.close()
    assert "SEARCH search_attributes USING COVERING INDEX search_attributes_by_value (name=? AND value=?)" in plan
    assert "SEARCH e USING INDEX" in plan and "SCAN e" not in plan, plan


@workflow.defn
class TaggedChild:
    @workflow.run
    async def run(self) -> str | None:
        return workflow.info().typed_search_attributes.get(KEYWORD)


@workflow.defn
class TaggingParent:
    @workflow.run
    async def run(self) -> str | None:
        return await workflow.execute_child_workflow(
            TaggedChild.run, id="tagged-child", search_attributes=TypedSearchAttributes([SearchAttributePair(KEYWORD, "from-parent")])
        )


async def test_a_child_workflow_gets_its_search_attributes() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[TaggingParent, TaggedChild]):
        assert await env.client.execute_workflow(TaggingParent.run, id="parent", task_queue="q") == "from-parent"
        found = [d.id for d in await env.client.list_workflows("CustomKeywordField = 'from-parent'")]
    await env.shutdown()
    assert found == ["tagged-child"]


async def test_memo_is_encoded_by_the_codec_and_search_attributes_are_not() -> None:
    # As in Temporal: the server indexes search attributes, so no codec touches them.
    pytest.importorskip("cryptography")
    from engine.codecs import EncryptionCodec
    from engine.converter import DataConverter

    converter = DataConverter(payload_codec=EncryptionCodec(EncryptionCodec.generate_key()))
    env = await WorkflowEnvironment.start_time_skipping(data_converter=converter)
    async with Worker(env.client, task_queue="q", workflows=[Tagged]):
        handle = await env.client.start_workflow(
            Tagged.run, True, id="secret", task_queue="q", search_attributes=_attrs("visible", 1, ["t"]), memo={"note": "hidden"}
        )
        await handle.signal(Tagged.release)
        assert (await handle.result())["memo"] == {"note": "changed"}
        history = await handle.fetch_history()
        described = await handle.describe()
        found = [d.id for d in await env.client.list_workflows("CustomKeywordField = 'visible'")]
    await env.shutdown()
    started, modified = history.events[0].attributes, next(e for e in history.events if e.event_type == "WorkflowPropertiesModified")
    assert started["memo"]["fields"]["note"]["metadata"]["encoding"] == "YmluYXJ5L2VuY3J5cHRlZA=="  # binary/encrypted
    assert modified.attributes["upsertedMemo"]["fields"]["note"]["metadata"]["encoding"] == "YmluYXJ5L2VuY3J5cHRlZA=="
    assert started["searchAttributes"]["indexedFields"]["CustomKeywordField"]["metadata"]["encoding"] == "anNvbi9wbGFpbg=="
    # The removal of "gone" is an encrypted null payload that the server cannot tell from a
    # value, so it stays, as None (as with a Temporal server and a codec).
    assert await described.memo() == {"note": "changed", "gone": None}
    assert found == ["secret"]


def test_history_json_carries_the_new_events_and_fields() -> None:
    from pathlib import Path

    from engine.history import History

    text = (Path(__file__).resolve().parents[1] / "histories" / "search_attributes_1.json").read_text()
    history = History.from_json("fixture-search-attributes", text)
    again = History.from_json("fixture-search-attributes", history.to_json())
    assert again == history
    types = [e.event_type for e in again.events]
    assert "UpsertWorkflowSearchAttributes" in types and "WorkflowPropertiesModified" in types
    assert set(again.events[0].attributes["searchAttributes"]["indexedFields"]) >= {"CustomKeywordField", "CustomKeywordListField"}
    assert "memo" in again.events[-1].attributes and "searchAttributes" in again.events[-1].attributes
