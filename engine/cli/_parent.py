"""``dlab worker --parent-pid PID``: a worker that stops when the program that started it dies.

A notebook's ``%worker start --process`` runs the code of the kernel's cells; once the
kernel is gone (killed, restarted), nobody can see or stop that worker, and it would go on
serving the dead kernel's code. On Linux the kernel itself tells the worker when the thread
that started it exits (``prctl(PR_SET_PDEATHSIG)``); everywhere, and for a parent that
died before that was set up, a watchdog looks at the parent pid twice a second.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import signal
import sys

__all__ = ["stop_with_parent"]

_PR_SET_PDEATHSIG = 1
CHECK_INTERVAL = 0.5


def _death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` when the parent dies; False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


async def _watch(parent: int, signum: int) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(CHECK_INTERVAL)
    os.kill(os.getpid(), signum)


def stop_with_parent(parent: int, signum: int = signal.SIGTERM) -> "asyncio.Task[None]":
    """Have this process receive ``signum`` (a graceful stop for ``dlab worker``) when
    process ``parent`` dies, also if it is already dead. Returns the watchdog task."""
    _death_signal(signum)
    # Started after prctl: a parent that died before it is caught by the first look.
    return asyncio.get_running_loop().create_task(_watch(parent, signum), name="dlab parent watchdog")
