"""The write lock's figures: holds, waits, and the hand-over measured between two stores."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

from engine._persistence.store import Store
from engine.errors import StoreError


def _noop(tx: object) -> int:
    return 1


async def test_a_wait_for_another_store_is_counted_with_its_hand_over(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    first, second = await Store.open(db), await Store.open(db)
    interval = sys.getswitchinterval()
    try:
        for store in (first, second):
            assert store._writer_lock is not None
            store._writer_lock.timed = True
        assert await second.run(_noop) == 1
        assert (second.lock_stats.holds, second.lock_stats.waits) == (1, 0)
        lock = first._writer_lock
        assert lock is not None and lock.acquire(wait=False)  # another process's batch, as it were
        waiting = asyncio.ensure_future(second.run(_noop))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # it waits on its database thread, the event loop goes on
        lock.release()
        assert await waiting == 1
        stats = second.lock_stats
        assert (stats.holds, stats.waits, stats.handovers) == (2, 1, 1)
        assert stats.wait_seconds > 0 and stats.handover_seconds >= 0 and stats.hold_seconds > 0
        assert sys.getswitchinterval() == interval  # put back once nobody waits
    finally:
        await first.close()
        await second.close()


def _gc_state(tx: object) -> bool:
    return gc.isenabled()


async def test_no_garbage_collection_while_the_lock_is_held(tmp_path: Path) -> None:
    store = await Store.open(str(tmp_path / "engine.db"))
    try:
        assert gc.isenabled()
        assert await store.run(_gc_state) is False  # a collection would stall the other processes
        assert gc.isenabled()  # back on once the lock is released
        gc.disable()  # a program that manages collections itself keeps them off
        try:
            assert await store.run(_gc_state) is False
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        await store.close()


def _sleep(tx: object) -> None:
    time.sleep(0.002)


@pytest.mark.skipif(resource is None or not hasattr(resource, "RUSAGE_THREAD"), reason="Linux only")
async def test_the_holders_waits_are_counted_with_the_cpu_inside(tmp_path: Path) -> None:
    store = await Store.open(str(tmp_path / "engine.db"))
    try:
        store.measure_lock_cpu = True
        await store.run(_sleep)
        stats = store.lock_stats
        assert stats.holds == 1 and stats.hold_waits_voluntary >= 1  # the sleep gave the core up
        assert stats.hold_preemptions >= 0 and stats.hold_cpu_seconds < stats.hold_seconds
    finally:
        await store.close()


async def test_a_batch_that_waited_for_the_lock_then_waits_for_another_programs_write(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    first, second = await Store.open(db), await Store.open(db)
    other = sqlite3.connect(db, isolation_level=None)  # a program that is not an engine process
    try:
        lock = first._writer_lock
        assert lock is not None and lock.acquire(wait=False)
        waiting = asyncio.ensure_future(second.run(_noop))
        await asyncio.sleep(0.05)
        other.execute("BEGIN IMMEDIATE")  # SQLite's own write lock, which the lock file does not guard
        lock.release()  # the waiter takes the lock file, then finds SQLite's lock taken
        await asyncio.sleep(0.05)
        assert not waiting.done()
        other.execute("COMMIT")
        assert await waiting == 1
        assert second.lock_stats.waits == 1 and second.batches == 1
        assert second._writer_lock is not None and second._writer_lock.acquire(wait=False)  # released after
        second._writer_lock.release()
    finally:
        other.close()
        await first.close()
        await second.close()


def _broken(tx: Any) -> None:
    tx.conn.execute("SELECT * FROM no_such_table")


async def test_a_batch_that_waited_and_failed_tells_its_caller_and_lets_the_lock_go(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    first, second = await Store.open(db), await Store.open(db)
    try:
        lock = first._writer_lock
        assert lock is not None and lock.acquire(wait=False)
        failing = asyncio.ensure_future(second.run(_broken))
        await asyncio.sleep(0.05)
        lock.release()
        with pytest.raises(StoreError, match="no_such_table"):
            await failing
        assert lock.acquire(wait=False)  # the waiter released it after the failed batch
        lock.release()
        assert await second.run(_noop) == 1  # and the store goes on
    finally:
        await first.close()
        await second.close()
