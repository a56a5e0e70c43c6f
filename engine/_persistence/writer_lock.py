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

import os

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]


class WriterLock:
    def __init__(self, db_path: str) -> None:
        self.path = db_path + "-lock"
        self._fd: int | None = _open_like(self.path, db_path) if fcntl is not None else None

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
