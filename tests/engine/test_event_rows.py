"""History rows stored compactly (schema 10) read back exactly: the same attributes and times,
so every export is byte for byte what it was; and a schema 9 file is converted when opened."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from engine import Client
from engine._api.durations import to_timestamp
from engine._persistence import event_rows, schema
from engine._persistence.transactions import dumps
from engine.history import History, HistoryEvent

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
CORPUS = sorted(HISTORIES.glob("*.json"))

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_types = st.sampled_from(event_rows.EVENT_TYPES + ("SomethingNew", ""))


def _corpus() -> list[History]:
    histories = [History.from_json(path.stem, path.read_text()) for path in CORPUS if path.name != "recorded_with.json"]
    assert len(histories) >= 20  # the fixture corpus: retries, children, continue-as-new, timers, signals, updates...
    return histories


@given(_types, st.dictionaries(st.text(max_size=30), _json_values, max_size=6))
def test_any_attributes_read_back_as_the_same_json(event_type: str, attributes: dict) -> None:
    text = dumps(attributes)
    stored = event_rows.pack(event_type, text)
    back = event_rows.unpack_json(event_rows.type_value(event_type), stored)
    assert (back.decode() if isinstance(back, bytes) else back) == text
    assert event_rows.type_name(event_rows.type_value(event_type)) == event_type


@given(st.sampled_from(["", "\t", "\n", "\r\n", "\x01", " "]), st.text(max_size=20))
def test_text_holding_a_control_byte_is_stored_as_it_is(space: str, value: str) -> None:
    text = '{"a":' + space + dumps(value) + "}"
    stored = event_rows.pack("WorkflowExecutionSignaled", text)
    back = event_rows.unpack_json(event_rows.type_value("WorkflowExecutionSignaled"), stored)
    assert (back.decode() if isinstance(back, bytes) else back) == text


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2400, 1, 1), timezones=st.just(timezone.utc)))
def test_event_times_read_back_to_the_microsecond(when: datetime) -> None:
    stored = event_rows.time_value(when)
    assert isinstance(stored, int)
    assert event_rows.event_datetime(stored) == when
    assert event_rows.event_datetime(to_timestamp(when)) == when  # rows of older schemas


def _new_file(path: Path, version: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    for statement in schema.SCHEMA + [m for v in sorted(schema.MIGRATIONS) if v <= version for m in schema.MIGRATIONS[v]]:
        conn.execute(statement)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [("app", schema.APP_ID), ("schema_version", str(version))])
    return conn


def test_the_fixture_corpus_stored_compactly_exports_byte_for_byte(tmp_path: Path) -> None:
    conn = _new_file(tmp_path / "ten.db", schema.SCHEMA_VERSION)
    histories = _corpus()
    for key, history in enumerate(histories, 1):
        conn.execute(
            "INSERT INTO executions (id, run_id, workflow_id, workflow_type, task_queue, status, start_time, next_event_id) "
            "VALUES (?, ?, ?, 'W', 'q', 'Completed', 0, ?)",
            (key, f"run-{key}", history.workflow_id, len(history.events) + 1),
        )
        conn.executemany(
            "INSERT INTO events (run, event_id, event_type, event_time, attributes) VALUES (?, ?, ?, ?, ?)",
            [
                (key, e.event_id, event_rows.type_value(e.event_type), event_rows.time_value(e.event_time),
                 event_rows.pack(e.event_type, dumps(dict(e.attributes))))
                for e in history.events
                if e.event_time is not None
            ],
        )
    stored = sum(len(r[0]) for r in conn.execute("SELECT CAST(attributes AS BLOB) FROM events"))
    plain = sum(len(dumps(dict(e.attributes)).encode()) for h in histories for e in h.events)
    assert stored < plain
    for key, history in enumerate(histories, 1):
        events = tuple(HistoryEvent(*row) for row in event_rows.read_rows(conn, f"run-{key}"))
        assert History(history.workflow_id, events).to_json() == history.to_json(), history.workflow_id
        readable = conn.execute(
            "SELECT event_type, event_time, attributes FROM history WHERE run_id = ? ORDER BY event_id", (f"run-{key}",)
        ).fetchall()
        assert readable == [(e.event_type, to_timestamp(e.event_time), dumps(dict(e.attributes))) for e in history.events if e.event_time]
    conn.close()


def test_a_schema_9_database_is_converted_and_exports_the_same(tmp_path: Path) -> None:
    """Rows as schema 9 wrote them (run id keys, type names, times and JSON as text) are
    rewritten when the file is opened; every history exports as before, and new runs start
    after the old ones (the old rowid is the run's key)."""
    path = tmp_path / "nine.db"
    conn = _new_file(path, 9)
    histories = _corpus()
    for n, history in enumerate(histories):
        conn.execute(
            "INSERT INTO executions (run_id, workflow_id, workflow_type, task_queue, status, start_time, next_event_id) "
            "VALUES (?, ?, 'W', 'q', 'Completed', ?, ?)",
            (f"run-{n}", history.workflow_id, float(n), len(history.events) + 1),
        )
        conn.executemany(
            "INSERT INTO events (run_id, event_id, event_type, event_time, attributes) VALUES (?, ?, ?, ?, ?)",
            [(f"run-{n}", e.event_id, e.event_type, to_timestamp(e.event_time or datetime.now(timezone.utc)), dumps(dict(e.attributes)))
             for e in history.events],
        )
    conn.execute(
        "INSERT INTO activity_attempts VALUES ('run-1', 5, 1, 10.0, 11.0, 'failed', '{\"message\":\"boom\"}', 'w@host')"
    )
    conn.commit()
    as_nine_wrote = conn.execute("SELECT * FROM events ORDER BY run_id, event_id").fetchall()
    conn.close()

    async def main() -> list[str]:
        client = await Client.connect(str(path))
        try:
            exports = [(await client.get_workflow_handle(h.workflow_id, run_id=f"run-{n}").fetch_history()).to_json()
                       for n, h in enumerate(histories)]
            attempts = await client.get_workflow_handle(histories[1].workflow_id, run_id="run-1").activity_attempts()
            assert [(a.scheduled_event_id, a.attempt, a.outcome, a.failure, a.identity) for a in attempts] == [
                (5, 1, "failed", {"message": "boom"}, "w@host")
            ]
            await client.start_workflow("W", id="after-upgrade", task_queue="q", run_timeout=timedelta(seconds=60))
            return exports
        finally:
            await client.close()

    exports = asyncio.run(main())
    assert exports == [h.to_json() for h in histories]
    conn = sqlite3.connect(path)
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    kinds = set(conn.execute("SELECT DISTINCT typeof(event_type), typeof(event_time), typeof(attributes) FROM events"))
    keys = conn.execute("SELECT workflow_id, id FROM executions ORDER BY id").fetchall()
    # The history view shows what schema 9 stored, to the byte, in plain SQL.
    readable = conn.execute(
        "SELECT * FROM history WHERE run_id LIKE 'run-%' ORDER BY run_id, event_id"
    ).fetchall()
    conn.close()
    assert readable == as_nine_wrote
    assert version == str(schema.SCHEMA_VERSION)
    assert kinds == {("integer", "integer", "blob")}
    assert [k for _, k in keys] == list(range(1, len(histories) + 2))
    assert keys[-1][0] == "after-upgrade"


def test_times_around_the_float_paths_edges_read_back_exactly() -> None:
    edge = event_rows._FLOAT_EXACT
    for stored in (0, 1, 999_999, edge - 1, edge, edge + 1, edge + 999_999, -1, -1_000_001, 1_765_126_695_238_761):
        when = event_rows.event_datetime(stored)
        assert when.tzinfo is not None and event_rows.time_value(when) == stored
