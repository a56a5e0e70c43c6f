"""Namespace ids (schema 11): registered on first use, kept by the database file, written where
Temporal writes them (child, signal-external and cancel-external events, a child's start)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine import Client, Worker, workflow
from engine._history import namespaces
from engine._persistence import schema

NAMESPACE_EVENTS = {
    "StartChildWorkflowExecutionInitiated", "ChildWorkflowExecutionStarted", "ChildWorkflowExecutionCompleted",
    "SignalExternalWorkflowExecutionInitiated", "ExternalWorkflowExecutionSignaled",
}


@workflow.defn
class Kid:
    def __init__(self) -> None:
        self.poked = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.poked)
        return "poked"

    @workflow.signal
    def poke(self) -> None:
        self.poked = True


@workflow.defn
class Mum:
    @workflow.run
    async def run(self) -> str:
        child = await workflow.start_child_workflow(Kid.run, id="kid")
        await child.signal(Kid.poke)
        return await child


async def _run_family(path: Path) -> tuple[list, list, str]:
    client = await Client.connect(str(path))
    async with Worker(client, task_queue="q", workflows=[Mum, Kid]):
        assert await client.execute_workflow(Mum.run, id="mum", task_queue="q") == "poked"
    mum = await client.get_workflow_handle("mum").fetch_history()
    kid = await client.get_workflow_handle("kid").fetch_history()
    found = await client.store.read(namespaces.describe, "default")
    await client.close()
    assert found is not None
    return list(mum.events), list(kid.events), found.id


async def test_child_and_signal_events_name_the_namespace_by_its_id(tmp_path: Path) -> None:
    mum, kid, namespace_id = await _run_family(tmp_path / "ns.db")
    tagged = [e for e in mum if e.event_type in NAMESPACE_EVENTS]
    assert {e.event_type for e in tagged} == NAMESPACE_EVENTS
    for event in tagged:
        assert event.attributes["namespace"] == "default", event.event_type
        assert event.attributes["namespaceId"] == namespace_id, event.event_type
    assert kid[0].attributes["parentWorkflowNamespace"] == "default"
    assert kid[0].attributes["parentWorkflowNamespaceId"] == namespace_id
    assert len(namespace_id) == 36 and namespace_id[14] == "7"  # a version 7 UUID, as the dev server's


async def test_a_namespace_keeps_its_id_in_its_file_and_another_file_has_another(tmp_path: Path) -> None:
    _, _, first = await _run_family(tmp_path / "a.db")
    client = await Client.connect(str(tmp_path / "a.db"))
    async with Worker(client, task_queue="q", workflows=[Mum, Kid]):
        await client.execute_workflow(Mum.run, id="mum2", task_queue="q")
    events = (await client.get_workflow_handle("mum2").fetch_history()).events
    await client.close()
    assert {e.attributes["namespaceId"] for e in events if e.event_type in NAMESPACE_EVENTS} == {first}
    _, _, other = await _run_family(tmp_path / "b.db")
    assert other != first


def test_a_schema_10_database_opens_and_gets_a_namespace_id_on_first_use(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "ten.db"
    conn = sqlite3.connect(path)
    for statement in schema.SCHEMA + [m for v in sorted(schema.MIGRATIONS) if v <= 10 for m in schema.MIGRATIONS[v]]:
        conn.execute(statement)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [("app", schema.APP_ID), ("schema_version", "10")])
    conn.commit()
    conn.close()

    _, kid, namespace_id = asyncio.run(_run_family(path))
    assert kid[0].attributes["parentWorkflowNamespaceId"] == namespace_id
    conn = sqlite3.connect(path)
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    rows = conn.execute("SELECT name, id FROM namespaces").fetchall()
    conn.close()
    assert version == str(schema.SCHEMA_VERSION) == "11"
    assert rows == [("default", namespace_id)]


def test_a_history_from_temporal_keeps_its_namespace_ids_when_read_and_written_again() -> None:
    import json

    from engine.history import History

    text = (Path(__file__).resolve().parents[1] / "histories" / "child.json").read_text(encoding="utf-8")
    theirs = {e["eventId"]: e for e in json.loads(text)["events"]}
    history = History.from_json("fixture-child", text)
    again = {e["eventId"]: e for e in json.loads(history.to_json())["events"]}
    ids = {
        attrs["namespaceId"]
        for event in theirs.values() for key, attrs in event.items() if key.endswith("Attributes") and "namespaceId" in attrs
    }
    assert len(ids) == 1
    for event_id, event in theirs.items():
        for key, attrs in event.items():
            if key.endswith("Attributes") and "namespaceId" in attrs:
                assert again[event_id][key]["namespaceId"] == attrs["namespaceId"]
