"""Opening SQLite connections the engine's way: WAL, busy timeouts, read-only files, the
schema made or migrated, and SQLite's errors told as the engine's ``StoreError`` types.
"""

from __future__ import annotations

import sqlite3

from engine._persistence import files
from engine._persistence.schema import APP_ID, SCHEMA_VERSION, MIGRATIONS, RESTORE, SCHEMA, migrate, schema_mismatch
from engine.errors import StoreCorruptError, StoreError, StoreLockedError, StoreReadOnlyError


def busy_ms(lock_timeout: float) -> int:
    return max(0, round(lock_timeout * 1000))


def prepare_reader(conn: sqlite3.Connection, path: str, lock_timeout: float) -> None:
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_ms(lock_timeout)}")
        conn.execute("PRAGMA cache_size = -16384")
        conn.execute("PRAGMA query_only = 1")  # Store.read is for reads: a write there is a bug
    except sqlite3.DatabaseError as e:
        raise translate(e, path, lock_timeout) from e


class NeedsShm(Exception):
    """A read-only connection could not read: SQLite needs a -shm file it cannot create."""


def prepare(conn: sqlite3.Connection, path: str, lock_timeout: float, read_only: bool = False) -> None:
    if read_only:
        conn.execute("PRAGMA query_only = 1")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as e:
            if "readonly" in str(e) or "unable to open" in str(e):
                raise NeedsShm() from e
            raise translate(e, path, lock_timeout) from e
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_ms(lock_timeout)}")
        if path != ":memory:" and not read_only:
            conn.execute("PRAGMA journal_mode = WAL")
            # Checkpoints run on their own thread (see _checkpoint), not inside our commits;
            # the writer's own stays as a backstop should that thread ever fall far behind.
            conn.execute("PRAGMA wal_autocheckpoint = 10000")
            # When the log restarts, it is cut back to 4 MiB rather than kept at its largest.
            conn.execute("PRAGMA journal_size_limit = 4194304")
        if not read_only:
            conn.execute("PRAGMA synchronous = NORMAL")
        # SQLite's default page cache (2 MB) is smaller than the pages a busy engine keeps
        # touching; every miss is a read from the file (or the log). Allocated as used.
        conn.execute("PRAGMA cache_size = -65536")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        raise translate(e, path, lock_timeout) from e
    if not tables and read_only:
        raise StoreCorruptError(f"{path!r} is empty (no engine tables) and read-only for this user: give the path of an engine database.")
    if not tables:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have made the schema while this one waited for the lock
            # (a worker and a starter started together on a new file): then it is checked below.
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                for statement in SCHEMA + [m for v in sorted(MIGRATIONS) for m in MIGRATIONS[v]]:
                    conn.execute(statement)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("app", APP_ID), ("schema_version", str(SCHEMA_VERSION))],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if not tables:
            return
    if "meta" not in tables:
        raise StoreCorruptError(
            f"{path!r} is an SQLite database of another application (tables: "
            f"{', '.join(sorted(tables)[:5])}), not a durable-lab engine database. "
            "Give another path; the engine does not write into foreign databases."
        )
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("app") != APP_ID:
        raise StoreCorruptError(
            f"{path!r} is not a durable-lab engine database (its meta table says app="
            f"{meta.get('app')!r}). Give another path."
        )
    raw_version = meta.get("schema_version", "0")
    try:
        version = int(raw_version)
    except ValueError:
        raise StoreCorruptError(
            f"{path!r} is a damaged durable-lab database: its schema version {raw_version!r} is not "
            f"a number. {RESTORE}"
        ) from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path!r} was written by a newer durable-lab (schema {version}, this one knows "
            f"{SCHEMA_VERSION}). Upgrade durable-lab to open it."
        )
    mismatch = schema_mismatch(conn, version, tables)
    if mismatch:
        raise StoreCorruptError(
            f"{path!r} is a damaged durable-lab database: it says schema version {version}, but "
            f"{mismatch}. {RESTORE}"
        )
    if version < SCHEMA_VERSION:
        if read_only:
            raise StoreReadOnlyError(
                f"{path!r} was written by an older durable-lab (schema {version}; this one reads {SCHEMA_VERSION}) and "
                "must be upgraded when opened, which needs write access it does not have for this user: open it "
                "once as its owner, or work on a copy."
            )
        migrate(conn, version)


def is_locked(text: str) -> bool:
    """SQLite's "database is locked" / "database is busy": another connection holds the lock."""
    return "locked" in text or "busy" in text


def translate(error: sqlite3.DatabaseError, path: str, lock_timeout: float = 10.0) -> StoreError:
    text = str(error)
    if "file is not a database" in text or "malformed" in text:
        return StoreCorruptError(
            f"{path!r} is not a usable SQLite database ({text}). It may be another kind of file "
            "or damaged. Give another path, or delete the file to start over."
        )
    if "readonly" in text:  # a write reached SQLite after all (permissions changed while open)
        return StoreReadOnlyError(files.read_only_message(path))
    if is_locked(text):
        if lock_timeout <= 0:  # SQLite answered busy without waiting: say so, not "for 0 s"
            return StoreLockedError(
                f"The database {path!r} was locked by another connection in the middle of a write ({text}); "
                "nothing was written and trying again is safe."
            )
        return StoreLockedError(
            f"The database {path!r} stayed locked by another process for {lock_timeout:g} s ({text}). "
            "Is a long transaction open elsewhere (a DB browser, a stuck process)?"
        )
    return StoreError(f"Database error on {path!r}: {text}")
