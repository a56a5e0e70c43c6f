"""A database written by an older durable-lab is migrated in place when opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine._persistence import schema
from engine._persistence.store import Store


def test_a_schema_1_database_gets_the_newer_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in schema.SCHEMA:
        conn.execute(statement)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [("app", schema.APP_ID), ("schema_version", "1")])
    conn.commit()
    conn.close()

    async def open_and_close() -> None:
        store = await Store.open(path)
        await store.close()

    import asyncio

    asyncio.run(open_and_close())
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    fault_log_columns = {r[1] for r in conn.execute("PRAGMA table_info(fault_log)")}
    execution_columns = {r[1] for r in conn.execute("PRAGMA table_info(executions)")}
    conn.close()
    assert "flags" in execution_columns
    assert {"scheduled_event_id", "attempt"} <= fault_log_columns
    assert {"children", "updates", "faults", "fault_log", "queries"} <= tables
    assert version == str(schema.SCHEMA_VERSION)


def test_a_schema_7_database_gets_search_attributes_and_its_runs_keep_working(tmp_path: Path) -> None:
    """Runs written before schema 8 have no search attribute columns or rows: describe falls
    back to their start event, and new runs in the same file are indexed."""
    import asyncio

    from engine import Client, Worker, workflow
    from engine.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

    path = tmp_path / "seven.db"
    conn = sqlite3.connect(path)
    for statement in schema.SCHEMA + [m for v in sorted(schema.MIGRATIONS) if v <= 7 for m in schema.MIGRATIONS[v]]:
        conn.execute(statement)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [("app", schema.APP_ID), ("schema_version", "7")])
    # A run as schema 7 wrote it, started with a memo.
    conn.execute(
        "INSERT INTO executions (run_id, workflow_id, workflow_type, task_queue, status, start_time, next_event_id) "
        "VALUES ('old-run', 'old', 'Old', 'q', 'Completed', 1.0, 2)"
    )
    conn.execute(
        "INSERT INTO events VALUES ('old-run', 1, 'WorkflowExecutionStarted', '2024-01-01T00:00:00Z', ?)",
        ('{"workflowType": {"name": "Old"}, "memo": {"fields": {"n": {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "MQ=="}}}}',),
    )
    conn.commit()
    conn.close()
    key = SearchAttributeKey.for_keyword("CustomKeywordField")

    @workflow.defn(sandboxed=False)
    class New:
        @workflow.run
        async def run(self) -> str:
            return "new"

    async def main() -> tuple[dict, list[str]]:
        client = await Client.connect(str(path))
        async with Worker(client, task_queue="q", workflows=[New]):
            await client.execute_workflow(
                New.run, id="new", task_queue="q", search_attributes=TypedSearchAttributes([SearchAttributePair(key, "x")])
            )
        old_memo = await (await client.get_workflow_handle("old").describe()).memo()
        found = [d.id for d in await client.list_workflows("CustomKeywordField = 'x'")]
        await client.close()
        return old_memo, found

    assert asyncio.run(main()) == ({"n": 1}, ["new"])
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    execution_columns = {r[1] for r in conn.execute("PRAGMA table_info(executions)")}
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    conn.close()
    assert {"search_attributes", "search_attribute_types"} <= tables
    assert {"search_attributes", "memo"} <= execution_columns
    assert version == str(schema.SCHEMA_VERSION)


def test_a_schema_8_database_gets_cron_and_schedule_tables(tmp_path: Path) -> None:
    """Schema 9 adds crons and schedules; a schema 8 file opens and a cron run starts in it."""
    import asyncio

    from engine import Client

    path = tmp_path / "eight.db"
    conn = sqlite3.connect(path)
    for statement in schema.SCHEMA + [m for v in sorted(schema.MIGRATIONS) if v <= 8 for m in schema.MIGRATIONS[v]]:
        conn.execute(statement)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [("app", schema.APP_ID), ("schema_version", "8")])
    conn.commit()
    conn.close()

    async def main() -> None:
        client = await Client.connect(str(path))
        await client.start_workflow("W", id="c", task_queue="q", cron_schedule="@hourly")
        await client.close()

    asyncio.run(main())
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    crons = conn.execute("SELECT schedule FROM crons").fetchall()
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    conn.close()
    assert {"crons", "schedules"} <= tables
    assert crons == [("@hourly",)]
    assert version == str(schema.SCHEMA_VERSION)
