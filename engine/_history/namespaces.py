"""Namespace ids: Temporal names a namespace by id (a UUID) as well as by name in the events
that point at another run (child, signal-external and cancel-external events, and a child's
``parentWorkflowNamespaceId``).

A Temporal server makes the id once, when the namespace is registered, and keeps it for
ever. The engine has no registration step (a client's ``namespace`` is used as given), so a
namespace is registered the first time a run of it needs its id, and the ``namespaces`` table
(schema 11) keeps that id for the life of the database file. The ids are version 7 UUIDs, as
the dev server's are.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from engine._history.mutable_state import new_run_id
from engine._persistence.transactions import Tx


@dataclass(frozen=True)
class NamespaceInfo:
    """A namespace of the database: its name, its id and when it was registered (epoch seconds)."""

    name: str
    id: str
    created: float


def namespace_id(conn: sqlite3.Connection, name: str) -> str:
    """The id of namespace ``name``, registered now if it has none (inside a write transaction)."""
    row = conn.execute("SELECT id FROM namespaces WHERE name = ?", (name,)).fetchone()
    if row is not None:
        return str(row[0])
    conn.execute("INSERT OR IGNORE INTO namespaces (name, id, created) VALUES (?, ?, ?)", (name, new_run_id(), time.time()))
    return str(conn.execute("SELECT id FROM namespaces WHERE name = ?", (name,)).fetchone()[0])


def register(tx: Tx, name: str) -> NamespaceInfo:
    """Namespace ``name``, registered now if it was not (a state change, for ``Store.run``)."""
    namespace_id(tx.conn, name)
    found = describe(tx.conn, name)
    assert found is not None
    return found


def describe(conn: Any, name: str) -> NamespaceInfo | None:
    """Namespace ``name`` as registered, or None if no run has used it yet (read-only)."""
    row = conn.execute("SELECT name, id, created FROM namespaces WHERE name = ?", (name,)).fetchone()
    return NamespaceInfo(str(row[0]), str(row[1]), float(row[2])) if row else None


def list_all(conn: Any) -> list[NamespaceInfo]:
    """Every registered namespace, by name."""
    return [NamespaceInfo(str(n), str(i), float(c)) for n, i, c in conn.execute("SELECT name, id, created FROM namespaces ORDER BY name")]
