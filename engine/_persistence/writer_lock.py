"""One writer at a time across processes, queued by the kernel rather than by polling.

SQLite lets one connection write at a time. A connection that finds the lock taken calls
its busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25 ... ms between tries: with several
engine processes on one file, a writer that just missed the lock sleeps through the next
few commits of the others while its own batch, and every workflow waiting on it, stands
still. So each store first takes an exclusive ``flock`` on a sidecar file (``<db>-lock``)
for the length of its write transaction: a waiting process blocks in the kernel and wakes
the moment the holder lets go. SQLite's own locking is unchanged underneath (it still
guards against writers that are not engine processes, and a dead holder's flock goes with
its process).
"""

from __future__ import annotations

import gc
import os
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

try:
    import fcntl
    import resource
except ImportError:  # pragma: no cover - Windows: SQLite's busy handler alone, no context switch counts
    fcntl = None  # type: ignore[assignment]
    resource = None  # type: ignore[assignment]

_HAS_THREAD_USAGE = resource is not None and hasattr(resource, "RUSAGE_THREAD")  # Linux


@dataclass
class LockStats:
    """Where a store's write lock goes (benchmarks/README.md, "Two processes under
    contention"): how long it was held per batch, how much of that was this thread's CPU,
    how often and how long a batch waited for another process, and, once ``WriterLock.timed``
    is on in every process, the hand-over: from the holder's release to this waiter's taking
    it (the kernel waking the waiting thread), and from there to the batch starting on the
    event loop (the lock held while the loop finished what it was doing)."""

    holds: int = 0
    hold_seconds: float = 0.0
    hold_cpu_seconds: float = 0.0
    waits: int = 0
    wait_seconds: float = 0.0
    handovers: int = 0
    handover_seconds: float = 0.0
    held_idle_seconds: float = 0.0
    # With the CPU count: the holder thread's context switches while it held the lock.
    # Voluntary ones are waits (for the GIL another thread of the process took while SQLite
    # ran, or for the disk); involuntary ones are the scheduler preempting it.
    hold_waits_voluntary: int = 0
    hold_preemptions: int = 0


class Hold:
    """One batch's hold of the lock, counted in ``stats`` from its start to ``end``.

    No garbage collection while the lock is held: a collection that an allocation of the
    batch sets off (all generations now and then, on a heap the sandbox's modules and the
    cached runs make large) would stall the other processes too. It runs after ``end``, on
    the next allocation past the threshold. With ``measure_cpu`` the holder thread's CPU
    and context switches are counted too (a system call at each end)."""

    __slots__ = ("stats", "collect_after", "since", "cpu_since", "usage_since")

    def __init__(self, stats: LockStats, measure_cpu: bool) -> None:
        self.stats = stats
        self.collect_after = gc.isenabled()
        if self.collect_after:
            gc.disable()
        self.since = time.perf_counter()
        self.cpu_since = time.thread_time() if measure_cpu else None
        self.usage_since = _thread_usage() if measure_cpu else None

    def end(self) -> None:
        stats = self.stats
        stats.holds += 1
        stats.hold_seconds += time.perf_counter() - self.since
        if self.cpu_since is not None:
            stats.hold_cpu_seconds += time.thread_time() - self.cpu_since
        if self.usage_since is not None:
            usage = _thread_usage()
            stats.hold_waits_voluntary += usage.ru_nvcsw - self.usage_since.ru_nvcsw
            stats.hold_preemptions += usage.ru_nivcsw - self.usage_since.ru_nivcsw
        if self.collect_after:
            gc.enable()


def _thread_usage() -> Any:
    return resource.getrusage(resource.RUSAGE_THREAD) if _HAS_THREAD_USAGE else None


_STAMP = struct.Struct("d")
HANDOVER_SWITCH_INTERVAL = 0.0002  # seconds (see acquire_timed)


class _QuickSwitches:
    """The short switch interval while any thread of the process waits for a write lock (the
    interval is the interpreter's: the first waiter sets it, the last one puts it back)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting = 0
        self._saved = 0.0

    def enter(self) -> None:
        with self._guard:
            if self._waiting == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, HANDOVER_SWITCH_INTERVAL))
            self._waiting += 1

    def leave(self) -> None:
        with self._guard:
            self._waiting -= 1
            if self._waiting == 0:
                sys.setswitchinterval(self._saved)


# Shared by every thread that waits for the write lock (the writer, the checkpointer): the
# interval goes back only when the last of them has stopped waiting.
quick_switches = _QuickSwitches()


class WriterLock:
    def __init__(self, db_path: str) -> None:
        self.path = db_path + "-lock"
        self._fd: int | None = _open_like(self.path, db_path) if fcntl is not None else None
        # On in benchmarks: each release writes its time into the lock file, so that the next
        # holder can tell how long the hand-over took (one pwrite per batch).
        self.timed = False

    def acquire_timed(self) -> tuple[float, float | None]:
        """Wait for the lock (on a database thread); returns when it was taken
        (``time.perf_counter``) and the hand-over time when the releaser stamped it."""
        # Once the kernel hands this thread the lock, the thread still needs the GIL, which the
        # event loop's thread gives up only after the switch interval (5 ms by default): the
        # lock would sit taken and unused that long while the other process waits. A short
        # interval while this thread waits makes that hand-over quick.
        quick_switches.enter()
        try:
            self.acquire()
        finally:
            quick_switches.leave()
        taken = time.perf_counter()
        handover = None
        if self.timed and self._fd is not None:
            try:
                raw = os.pread(self._fd, _STAMP.size, 0)
                if len(raw) == _STAMP.size:
                    handover = max(0.0, time.time() - _STAMP.unpack(raw)[0])
            except OSError:
                pass
        return taken, handover

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock; without ``wait``, only if it is free (False if another holds it)."""
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            if self.timed:
                try:
                    os.pwrite(self._fd, _STAMP.pack(time.time()), 0)
                except OSError:
                    pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _open_like(path: str, db_path: str) -> int:
    """Open the lock file, creating it with the database file's mode (as SQLite does for the
    -wal and -shm files), so that it is no more readable than the database."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return os.open(path, os.O_RDWR)
    try:
        os.fchmod(fd, os.stat(db_path).st_mode & 0o666)
    except OSError:
        pass  # stays 0600
    return fd
