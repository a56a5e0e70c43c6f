"""Search attributes and memo on the server side: the events that change them, the run's
row that holds them, and the index that list filters read (see ``engine._persistence.store``, schema 8).

Each function runs inside the change that appends the event, so event, row and index
commit together.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

from engine._conversion import search_attributes as sa
from engine._history.mutable_state import append
from engine._persistence.event_rows import read_attributes
from engine._persistence.transactions import Tx, dumps


def index(tx: Tx, run_id: str, fields: Mapping[str, Any], *, fresh: bool = False, strict: bool = False) -> None:
    """Write the index rows of changed attributes; an unset one loses its rows.

    ``strict`` (a client's start) refuses a name already used with another type, as a
    Temporal namespace does; an upsert from workflow code is indexed as recorded."""
    conn = tx.conn
    for name, payload in fields.items():
        key, value = sa.decode(name, payload)
        if not fresh:
            conn.execute("DELETE FROM search_attributes WHERE run_id = ? AND name = ?", (run_id, name))
        if key is None or value is None:
            continue
        known = conn.execute("SELECT type FROM search_attribute_types WHERE name = ?", (name,)).fetchone()
        if known is None:
            conn.execute("INSERT INTO search_attribute_types (name, type) VALUES (?, ?)", (name, key.metadata_type))
        elif known[0] != key.metadata_type and strict:
            raise ValueError(
                f"Search attribute {name!r} has type {known[0]} in this database, not {key.metadata_type}: "
                f"use SearchAttributeKey.for_{_FACTORY[known[0]]}({name!r}), or another name."
            )
        conn.executemany(
            "INSERT OR REPLACE INTO search_attributes (run_id, name, position, value) VALUES (?, ?, ?, ?)",
            [(run_id, name, i, v) for i, v in enumerate(sa.index_values(key, value))],
        )


_FACTORY = {
    "Text": "text", "Keyword": "keyword", "Int": "int", "Double": "float", "Bool": "bool",
    "Datetime": "datetime", "KeywordList": "keyword_list",
}


def current(tx: Tx, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(search attribute payloads, memo payloads) of the run as its row holds them."""
    tx.flush()
    row = tx.conn.execute("SELECT search_attributes, memo FROM executions WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return {}, {}
    return (json.loads(row[0]) if row[0] else {}), (json.loads(row[1]) if row[1] else {})


def cmd_upsert_search_attributes(tx: Tx, run: Any, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:

    fields = (attrs.get("searchAttributes") or {}).get("indexedFields") or {}
    append(
        tx, run, now, "UpsertWorkflowSearchAttributes",
        {"workflowTaskCompletedEventId": str(completed), "searchAttributes": {"indexedFields": fields}},
    )
    attributes, _ = current(tx, run.run_id)
    tx.conn.execute(
        "UPDATE executions SET search_attributes = ? WHERE run_id = ?", (dumps(sa.merged(attributes, fields)), run.run_id)
    )
    index(tx, run.run_id, fields)
    return False


def cmd_modify_properties(tx: Tx, run: Any, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:

    fields = (attrs.get("upsertedMemo") or {}).get("fields") or {}
    append(
        tx, run, now, "WorkflowPropertiesModified",
        {"workflowTaskCompletedEventId": str(completed), "upsertedMemo": {"fields": fields}},
    )
    _, memo = current(tx, run.run_id)
    tx.conn.execute("UPDATE executions SET memo = ? WHERE run_id = ?", (dumps(sa.merged(memo, fields)), run.run_id))
    return False


def carried_over(tx: Tx, run_id: str, started: Mapping[str, Any], attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What a continue-as-new passes on when its command gives none, as Temporal does: the
    memo the run started with (not what upsert_memo made of it) and the search attributes
    as they are now, without the patch bookkeeping (TemporalChangeVersion)."""
    out: dict[str, Any] = {}
    memo = (attrs.get("memo") or {}).get("fields") or (started.get("memo") or {}).get("fields")
    if memo:
        out["memo"] = {"fields": memo}
    fields = (attrs.get("searchAttributes") or {}).get("indexedFields")
    if not fields:
        attributes, _ = current(tx, run_id)
        fields = {k: v for k, v in attributes.items() if k != sa.CHANGE_VERSION}
    if fields:
        out["searchAttributes"] = {"indexedFields": fields}
    return out


def read(conn: Any, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(search attribute payloads, memo payloads) of a run, for describe; a run from before
    schema 8 has its start's."""
    row = conn.execute("SELECT search_attributes, memo FROM executions WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return {}, {}
    attributes, memo = (json.loads(row[0]) if row[0] else None), (json.loads(row[1]) if row[1] else None)
    if attributes is None or memo is None:
        first = read_attributes(conn, run_id, 1)
        started = first[1] if first else {}
        if attributes is None:
            attributes = (started.get("searchAttributes") or {}).get("indexedFields") or {}
        if memo is None:
            memo = (started.get("memo") or {}).get("fields") or {}
    return attributes, memo


def types(conn: Any) -> dict[str, str]:
    """Custom search attribute name -> type name, for list filters."""
    return dict(conn.execute("SELECT name, type FROM search_attribute_types").fetchall())
