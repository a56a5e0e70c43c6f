"""Which workers serve a database file now: one small file per running worker, held locked.

Temporal's server knows its pollers; a file shared by processes has no server. So each
running :class:`engine.worker.Worker` on a database file writes ``<db>-workers/<pid>-<n>.json``
(who it is, its task queue, its process and program) and holds an exclusive ``flock`` on it
for as long as it runs. The kernel releases the lock when the process dies, however it dies
(SIGKILL included), so a reader that can lock a file knows its worker is gone and removes it:
no heartbeats, no clock, no stale entries. Locks are per machine, as the database file is.

The entry also names the worker's lease owner, so that the tasks a killed worker held can be
taken back at once rather than when their leases expire (``engine._matching.dead_workers``).
A reader that finds such an entry dead renames it ``<pid>-<n>.dead`` instead of removing it:
the entry stays until a worker has taken its leases back.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: workers are not listed
    fcntl = None  # type: ignore[assignment]

__all__ = ["WorkerRecord", "Registration", "register", "live_workers", "folder_of", "DEAD_SUFFIX"]

log = logging.getLogger("engine.worker")
DEAD_SUFFIX = ".dead"  # an entry whose process is gone and whose leases are still to take back
_numbers = itertools.count(1)


@dataclass(frozen=True)
class WorkerRecord:
    """A running worker of a database file, as it described itself."""

    identity: str
    task_queue: str
    pid: int
    host: str
    started: float  # Unix time
    program: str
    workflows: tuple[str, ...]
    activities: tuple[str, ...]


class Registration:
    """A worker's entry; :meth:`close` removes it (a dead process's entry goes by itself)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = -1


def folder_of(db_path: str) -> Path:
    return Path(db_path + "-workers")


def _program() -> str:
    """How this process was started, shortly: ``python -m engine.cli worker -t q ...``."""
    argv = list(sys.argv) or ["python"]
    first = Path(argv[0]).name
    if first == "__main__.py":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = (spec.name if spec is not None else "").removesuffix(".__main__")
        first = f"python -m {module}" if module else "python"
    elif "ipykernel" in first:
        return "a Jupyter kernel"
    text = " ".join([first, *argv[1:]])
    return text if len(text) <= 120 else text[:117] + "..."


def register(
    db_path: str, identity: str, task_queue: str, workflows: Sequence[str], activities: Sequence[str], owner: str = ""
) -> Registration | None:
    """Enter a running worker of ``db_path`` (None for an in-memory database, or where the
    folder cannot be written: a worker runs all the same, it is only not listed, and its
    leases expire rather than being taken back when it dies). ``owner``: its lease owner."""
    if fcntl is None or db_path == ":memory:":
        return None
    folder = folder_of(db_path)
    name = f"{os.getpid()}-{next(_numbers)}"
    record = {
        "identity": identity, "task_queue": task_queue, "pid": os.getpid(), "host": socket.gethostname(),
        "started": time.time(), "program": _program(), "workflows": list(workflows), "activities": list(activities),
        "owner": owner,
    }
    fd = -1
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        # Locked before it gets its listed name, so no reader takes it for a dead worker's.
        partial = folder / f"{name}.partial"
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, json.dumps(record).encode())
        final = folder / f"{name}.json"
        os.replace(partial, final)
        return Registration(final, fd)
    except OSError as e:
        if fd >= 0:
            os.close(fd)
        log.debug("worker %s not listed in %s: %s", identity, folder, e)
        return None


def live_workers(db_path: str) -> list[WorkerRecord]:
    """The workers running now on ``db_path`` (of any process on this machine), oldest first.
    Entries of dead processes are removed on the way."""
    if fcntl is None or db_path == ":memory:":
        return []
    records = []
    try:
        entries = sorted(folder_of(db_path).glob("*.json"))
    except OSError:
        return []
    for entry in entries:
        record = _read_if_alive(entry)
        if record is not None:
            records.append(record)
    return sorted(records, key=lambda r: r.started)


def _read_if_alive(entry: Path) -> WorkerRecord | None:
    try:
        fd = os.open(entry, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            data: Any = json.loads(entry.read_bytes() or b"{}")  # held: its worker runs
            return WorkerRecord(
                identity=str(data.get("identity", "")), task_queue=str(data.get("task_queue", "")),
                pid=int(data.get("pid", 0)), host=str(data.get("host", "")), started=float(data.get("started", 0.0)),
                program=str(data.get("program", "")), workflows=tuple(data.get("workflows", ())),
                activities=tuple(data.get("activities", ())),
            )
        try:
            # Nobody holds it: its process is gone. Leases it may have held are left to a
            # worker to take back (dead_workers), which removes the entry then.
            if _owner_of(entry):
                entry.rename(entry.with_suffix(DEAD_SUFFIX))
            else:
                entry.unlink(missing_ok=True)
        except OSError:
            pass
        return None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _owner_of(entry: Path) -> str:
    try:
        data: Any = json.loads(entry.read_bytes() or b"{}")
    except (OSError, ValueError):
        return ""
    return str(data.get("owner", "")) if isinstance(data, dict) else ""
