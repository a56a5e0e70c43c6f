"""Which line of the user's code is running: the innermost frame that is neither the engine's
nor asyncio's, for messages that point at the line to change.
"""

from __future__ import annotations

import asyncio
import linecache
import os
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from engine._runtime.code_names import place as _place


# The engine package's folder (this module sits one level down, in engine/_runtime/).
_ENGINE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


_ASYNCIO_DIR = os.path.dirname(asyncio.__file__)


@dataclass
class CodeLine:
    """Where in user code something happened."""

    filename: str
    lineno: int
    function: str
    text: str

    def __str__(self) -> str:
        where = _place(self.filename, self.lineno)
        separator = " in" if where.endswith(f":{self.lineno}") else ", in"
        return f'{where}{separator} {self.function}: "{self.text}"'


_SKIPPED_FILES: dict[str, bool] = {}


def _skipped(filename: str) -> bool:
    skip = _SKIPPED_FILES.get(filename)
    if skip is None:
        skip = _SKIPPED_FILES[filename] = (
            filename.startswith(_ENGINE_DIR)
            or filename.startswith(_ASYNCIO_DIR)
            or "contextvars" in filename
            or filename.startswith("<frozen")
        )
    return skip


# Frames where workflow code ends and the code that drives it begins: a walk up the stack
# stops there, lest it blame whoever called the worker or the Replayer.
BOUNDARY_CODES: set[Any] = {asyncio.events.Handle._run.__code__}


def user_code_line(frames: Sequence[Any] | None = None) -> CodeLine | None:
    """The innermost frame that belongs to user code (not the engine, not asyncio).

    In a task whose own frames are all the engine's (``asyncio.gather(workflow.execute_child_workflow(...))``
    wraps the engine's coroutine in a task of its own), the line that created the task."""
    if frames is None:
        frame: Any = sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            if code in BOUNDARY_CODES:
                return _task_origin()
            if not _skipped(code.co_filename):
                break
            frame = frame.f_back
    else:
        frame = next((f for f in reversed(frames) if not _skipped(f.f_code.co_filename)), None)
    if frame is None:
        return None
    filename, lineno = frame.f_code.co_filename, frame.f_lineno
    return CodeLine(filename, lineno, frame.f_code.co_name, linecache.getline(filename, lineno).strip())


def _task_origin() -> CodeLine | None:
    loop = asyncio.events._get_running_loop()
    task = asyncio.current_task(loop) if loop is not None else None
    return getattr(task, "_dlab_origin", None)
