"""``dlab worker --parent-pid``: a worker stops when the program that started it dies."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import worker_command
from tests.cli.test_cli_worker import _spawn, _wait_ready


# A program that starts a worker with --parent-pid of its own and exits (or is killed) at once.
_PARENT = """
import subprocess, sys
child = subprocess.Popen(sys.argv[1:] + ["--parent-pid", str(__import__("os").getpid())], stdout=subprocess.PIPE, text=True)
print(child.pid, flush=True)
print(child.stdout.readline(), end="", flush=True)
"""


def _exited(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to see the worker process")
def test_a_worker_with_parent_pid_stops_when_its_parent_dies(tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    parent = _spawn(sys.executable, "-c", _PARENT, *worker_command(db, "--file", "tests/cli/app.py"))
    assert parent.stdout is not None
    worker_pid = int(parent.stdout.readline())
    assert parent.stdout.readline().startswith("dlab worker ready")
    assert parent.wait(timeout=10) == 0  # the parent is gone; its worker follows it
    assert _exited(worker_pid, within=5), "the worker outlived the process that started it"
    assert not list((tmp_path / "engine.db-workers").glob("*.json"))


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
def test_sigterm_twice_at_once_is_one_graceful_stop(tmp_path: Path) -> None:
    # A parent's death can reach the worker as two SIGTERMs at the same instant (Linux's death
    # signal as the parent's threads exit, then the watchdog): one graceful stop, not "at once".
    command = worker_command(tmp_path / "engine.db", "--file", "tests/cli/app.py", "--parent-pid", str(os.getpid()))
    worker = _spawn(*command)
    _wait_ready(worker)
    worker.send_signal(signal.SIGTERM)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0 and "Stopping (SIGTERM)" in err and "Stopping at once" not in err
    assert "dlab worker stopped" in out
