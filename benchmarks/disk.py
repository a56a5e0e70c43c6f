"""Bytes on disk per workflow: N runs of the three-activity workload, then where the bytes went.

    .venv/bin/python benchmarks/disk.py                    # 2000 workflows
    .venv/bin/python benchmarks/disk.py --workflows 500 --keep /tmp/disk.db

The runs go through a real Client and Worker on a file database (the workload of
throughput.py: ``ThreeSteps``, 23 events). Once every run is closed, the write-ahead log is
folded into the main file (``wal_checkpoint(TRUNCATE)``) and the script prints:

- bytes per workflow: the main file's size / N, and the pages in use
  (``page_count - freelist_count``) times the page size / N;
- each table and index: pages and bytes (SQLite's ``dbstat`` table), per workflow;
- the average stored size of the columns that matter (event attributes, event times...);
- how long reading it back takes: ``read_events`` (what a worker runs after a cache miss,
  and ``fetch_history``: SQL and decoding) over every run, CPU time per event, the best of 5
  passes;
- with ``--codecs``, what the attributes' encodings cost per event, on this run's events:
  the fragment packing schema 10 stores (``engine._persistence.event_rows``) and, for
  comparison, zlib with a preset dictionary (one run's JSON, which flatters it), each way;
- the export check: a SHA-256 over the Temporal JSON export (``fetch_history().to_json()``)
  of a sample of runs, to compare across commits. What differs between two runs of the same
  workflow is masked first (times, run and request ids, the pid in worker identities), so the
  same hash means the same export bytes but those. ``--exports FILE`` writes the masked
  exports, to diff them. (tests/engine/test_event_rows.py checks the unmasked bytes on the
  fixture corpus: stored and read back, and converted from a schema 9 file.)

It prints figures; it never asserts on them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Appended, not put first: PYTHONPATH=<another checkout> measures that checkout's engine.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import load  # noqa: E402
from benchmarks._runs import TASK_QUEUE, bench_worker, run_batch_of_workflows  # noqa: E402
import engine  # noqa: E402
from engine import Client  # noqa: E402

# Columns whose average stored size is printed: (table, column), when the table has them.
COLUMNS = [
    ("events", "run_id"),  # schema 9 and before
    ("events", "run"),  # schema 10: executions.id
    ("events", "event_id"),
    ("events", "event_type"),
    ("events", "event_time"),
    ("events", "attributes"),
    ("executions", "run_id"),
    ("executions", "workflow_id"),
    ("activity_attempts", "run_id"),  # schema 9 and before
    ("activity_attempts", "run"),
    ("activity_attempts", "identity"),
]


# The stored size of a value: SQLite keeps integers in 0-8 bytes by magnitude, reals in 8.
_SIZE = (
    "CASE typeof({c}) WHEN 'integer' THEN (CASE WHEN {c} IN (0, 1) THEN 0 WHEN abs({c}) < 128 THEN 1 "
    "WHEN abs({c}) < 32768 THEN 2 WHEN abs({c}) < 8388608 THEN 3 WHEN abs({c}) < 2147483648 THEN 4 "
    "WHEN abs({c}) < 140737488355328 THEN 6 ELSE 8 END) WHEN 'real' THEN 8 WHEN 'null' THEN 0 "
    "ELSE length(CAST({c} AS BLOB)) END"
)

_VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<time>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b\d+@"), "<pid>@"),
]


def masked(text: str) -> str:
    for pattern, mask in _VOLATILE:
        text = pattern.sub(mask, text)
    return text


def _rows(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])


def report(path: str, n: int) -> list[str]:
    """The figures of a database whose ``n`` runs are all closed."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = os.path.getsize(path)
        lines = [
            f"database: {size:,} bytes main file, {pages} pages of {page_size} ({free} free), "
            f"wal {os.path.getsize(path + '-wal') if os.path.exists(path + '-wal') else 0} bytes",
            f"bytes per workflow: {size / n:,.0f} (main file / {n}); {(pages - free) * page_size / n:,.0f} (pages in use)",
            "",
            f"{'table or index':<34} {'pages':>7} {'bytes':>11} {'payload':>11} {'per wf':>8} {'rows':>8}",
        ]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        try:
            stats = conn.execute(
                "SELECT name, count(*), sum(pgsize), sum(payload) FROM dbstat GROUP BY name ORDER BY sum(pgsize) DESC"
            ).fetchall()
        except sqlite3.OperationalError:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            stats = []
            lines.append("(this SQLite has no dbstat table: no breakdown)")
        for name, npages, nbytes, payload in stats:
            rows = f"{_rows(conn, name):,}" if name in tables else ""
            lines.append(f"{name:<34} {npages:>7} {nbytes:>11,} {payload:>11,} {nbytes / n:>8,.0f} {rows:>8}")
        lines += ["", "average stored size of a value (bytes; per workflow = average x rows / N):"]
        for table, column in COLUMNS:
            columns = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')} if table in tables else set()
            if column not in columns:
                continue
            size = _SIZE.format(c=f'"{column}"')
            avg, total = conn.execute(f'SELECT avg({size}), sum({size}) FROM "{table}"').fetchone()
            lines.append(f"  {table + '.' + column:<32} {avg or 0:8.1f} avg {(total or 0) / n:9.0f} per workflow")
        lines += ["", "attributes by event type (average stored bytes, events per workflow):"]
        try:
            from engine._persistence.event_rows import type_name
        except ImportError:  # a checkout before schema 10 stores the names
            type_name = str  # type: ignore[assignment]
        for stored_type, avg, count in conn.execute(
            "SELECT event_type, avg(length(CAST(attributes AS BLOB))), count(*) FROM events GROUP BY event_type ORDER BY 3 DESC, 1"
        ):
            lines.append(f"  {type_name(stored_type):<32} {avg:8.1f} avg {count / n:6.1f} per workflow")
        return lines
    finally:
        conn.close()


def read_cost(path: str, passes: int = 5) -> tuple[float, int]:
    """(best CPU seconds of a pass of read_events over every run, events read per pass)."""
    from engine._history.workflow_tasks import read_events

    conn = sqlite3.connect(path)
    try:
        run_ids = [r[0] for r in conn.execute("SELECT run_id FROM executions")]
        best, events = float("inf"), 0
        for _ in range(passes):
            t0 = time.process_time()
            events = sum(len(read_events(conn, run_id)) for run_id in run_ids)
            best = min(best, time.process_time() - t0)
        return best, events
    finally:
        conn.close()


def codec_costs(path: str, runs: int = 100) -> list[str]:
    """Bytes and CPU time per event of each encoding of the attributes' JSON (best of 5)."""
    import zlib

    import orjson

    from engine._history.workflow_tasks import read_events
    from engine._persistence.transactions import dumps

    conn = sqlite3.connect(path)
    try:
        run_ids = [r[0] for r in conn.execute("SELECT run_id FROM executions LIMIT ?", (runs,))]
        events = [(e.event_type, dumps(dict(e.attributes))) for run_id in run_ids for e in read_events(conn, run_id)]
    finally:
        conn.close()
    n = len(events)

    def best(fn: Any) -> float:
        times = []
        for _ in range(5):
            t0 = time.process_time()
            fn()
            times.append(time.process_time() - t0)
        return min(times) * 1e6 / n

    plain = sum(len(text.encode()) for _, text in events) / n
    lines = [f"attribute encodings over {n} events ({plain:.0f} bytes of JSON on average):"]
    lines.append(f"  json text       {plain:6.1f} bytes; read (orjson.loads) {best(lambda: [orjson.loads(t) for _, t in events]):.2f} us")
    try:
        from engine._persistence import event_rows
    except ImportError:  # a checkout before schema 10
        lines.append("  fragment packing: not in this checkout")
    else:
        packed = [(event_rows.type_value(k), event_rows.pack_dumped(k, t)) for k, t in events]
        write = best(lambda: [event_rows.pack_dumped(k, t) for k, t in events])
        read = best(lambda: [event_rows.unpack(k, b) for k, b in packed])
        size = sum(len(b) for _, b in packed) / n
        lines.append(f"  fragments       {size:6.1f} bytes; write {write:.2f} us, read (unpack + orjson.loads) {read:.2f} us")
    zdict = "".join(t for _, t in events[:23]).encode()
    primed = zlib.compressobj(6, zlib.DEFLATED, -12, 8, zlib.Z_DEFAULT_STRATEGY, zdict=zdict)

    def deflate(text: str) -> bytes:
        c = primed.copy()
        return c.compress(text.encode()) + c.flush()

    def inflate(data: bytes) -> Any:
        d = zlib.decompressobj(-12, zdict=zdict)
        return orjson.loads(d.decompress(data) + d.flush())

    deflated = [deflate(t) for _, t in events]
    write = best(lambda: [deflate(t) for _, t in events])
    read = best(lambda: [inflate(b) for b in deflated])
    size = sum(map(len, deflated)) / n
    lines.append(f"  zlib + zdict    {size:6.1f} bytes; write {write:.2f} us, read (inflate + orjson.loads) {read:.2f} us")
    return lines


async def export_hash(client: Client, workflow_ids: list[str], exports: str | None) -> str:
    """SHA-256 of the sample's JSON exports, masked (see the module's docstring)."""
    texts = [masked((await client.get_workflow_handle(wid).fetch_history()).to_json()) for wid in workflow_ids]
    if exports:
        Path(exports).write_text("\n".join(texts))
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workflows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200, help="start_workflow calls gathered at once")
    parser.add_argument("--max-in-flight", type=int, default=300)
    parser.add_argument("--slots", type=int, default=200)
    parser.add_argument("--cache", type=int, default=1000)
    parser.add_argument("--runner", choices=("sandboxed", "unsandboxed"), default="unsandboxed")
    parser.add_argument("--sample", type=int, default=20, help="runs whose JSON export is hashed")
    parser.add_argument("--codecs", action="store_true", help="also time the attributes' encodings per event")
    parser.add_argument("--exports", help="write the sample's masked JSON exports to this file")
    parser.add_argument("--keep", help="write the database here (kept) instead of a temporary folder")
    args = parser.parse_args()
    print(f"machine load before: {load()}")
    folder = tempfile.mkdtemp(prefix="disk-bench-")
    path = args.keep or os.path.join(folder, "disk.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    client = await Client.connect(path)
    worker = bench_worker(client, TASK_QUEUE, args)
    async with worker:
        await run_batch_of_workflows(client, args.workflows, args.concurrency, "disk", max_in_flight=args.max_in_flight)
    sample = [f"disk-{i}" for i in range(0, args.workflows, max(1, args.workflows // max(1, args.sample)))][: args.sample]
    digest = await export_hash(client, sample, args.exports)
    await client.close()
    print(f"{args.workflows} ThreeSteps workflows on {path} (engine from {Path(engine.__file__).parent.parent})")
    for line in report(path, args.workflows):
        print(line)
    seconds, events = read_cost(path)
    print(f"read back: read_events over all {args.workflows} runs, {events} events: {seconds * 1e6 / events:.2f} us CPU per event (best of 5 passes)")
    if args.codecs:
        for line in codec_costs(path):
            print(line)
    print(f"export check: sha256 {digest} over the JSON histories of {len(sample)} runs")
    print(f"machine load after: {load()}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
