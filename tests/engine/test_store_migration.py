"""A database written by an older durable-lab is migrated in place when opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine import _store
from engine._store import Store


def test_a_schema_1_database_gets_the_newer_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in _store._SCHEMA:
        conn.execute(statement)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [("app", _store.APP_ID), ("schema_version", "1")])
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
    assert version == str(_store.SCHEMA_VERSION)
