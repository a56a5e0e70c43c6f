"""Errors as a notebook shows them: cells named as IPython names them, user frames only.

A failed run reaches the notebook as ``WorkflowFailureError`` caused by ``ActivityError``
caused by ``ApplicationError``: IPython would print three chained tracebacks, the outer ones
full of engine internals, the inner one empty (it was rebuilt from the history). What a
learner needs is the chain in one line each and where *their* code raised, so
:func:`shown_in_notebook` gives the error IPython's rendering hook (``_render_traceback_``)
for that; it stays the same ``WorkflowFailureError`` that ``except`` clauses expect.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import sysconfig
from typing import Any, Callable, Iterator

import engine
from engine._runtime import code_names as _code_names
from engine.errors import ActivityError, ChildWorkflowError, FailureError, WorkflowFailureError

__all__ = ["cell_namer", "failure_lines", "running_cell_number", "shown_in_notebook", "user_frames"]

_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>.+)$')
# Frames not shown: the engine's and this extension's, the standard library's, installed packages'.
_OURS = tuple(os.path.dirname(os.path.abspath(path)) + os.sep for path in (engine.__file__, __file__))
_LIBRARIES = tuple(os.path.abspath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "purelib", "platlib"))


def cell_namer(shell: Any) -> Callable[[str], str | None]:
    """``Cell In[12]`` for a file IPython compiled a cell from, as its tracebacks say."""

    def name(filename: str) -> str | None:
        label = shell.compile.format_code_name(filename) if hasattr(shell.compile, "format_code_name") else None
        return f"{label[0]} {label[1]}" if label else None

    return name


def running_cell_number(shell: Any) -> int:
    """The execution count of the cell running now (the one whose code is on the stack).

    ``shell.execution_count`` is already the next cell's number while a cell runs (IPython
    counts up before running it), so it would name the wrong cell."""
    numbers = getattr(shell.compile, "_filename_map", {})
    frame = sys._getframe(1)
    while frame is not None:
        number = numbers.get(frame.f_code.co_filename)
        if number is not None:
            return int(number)
        frame = frame.f_back  # type: ignore[assignment]
    return int(shell.execution_count)


def _hidden(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_OURS + _LIBRARIES) or filename.startswith("<frozen")


def user_frames(stack_trace: str) -> list[str]:
    """The frames of user code in a Python traceback text (the last exception's), each as
    two lines: where (a cell named as IPython does) and the source line."""
    blocks = stack_trace.split("Traceback (most recent call last):")
    lines = blocks[-1].splitlines() if len(blocks) > 1 else []
    shown: list[str] = []
    for i, line in enumerate(lines):
        match = _FRAME.match(line)
        if match is None or _hidden(match["file"]):
            continue
        where = _code_names.place(match["file"], int(match["line"]))
        if where.endswith(f":{match['line']}"):
            where = f'File "{match["file"]}", line {match["line"]}'
        shown.append(f"  {where}, in {match['function']}")
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if following.startswith("    ") and not _FRAME.match(following):
            shown.append(following)
    return shown


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__


def _describe(error: BaseException) -> str:
    name = type(error).__name__
    if isinstance(error, ActivityError):
        state = error.retry_state.name if error.retry_state is not None else ""
        return f"{name}: activity {error.activity_type} failed" + (f" ({state.lower().replace('_', ' ')})" if state else "")
    if isinstance(error, ChildWorkflowError):
        return f"{name}: child workflow {error.workflow_id!r} ({error.workflow_type}) failed"
    kind = getattr(error, "type", None)
    label = f"{name} ({kind})" if isinstance(kind, str) and kind and kind != name else name
    return f"{label}: {error.message if isinstance(error, FailureError) else error}"


def failure_lines(error: WorkflowFailureError, workflow_id: str, workflow_type: str) -> list[str]:
    """A failed run as a notebook shows it: one line per cause, then the user's frames where
    the innermost failure was raised."""
    chain = list(_chain(error.cause))
    lines = [f"WorkflowFailureError: workflow {workflow_id!r} ({workflow_type}) failed"]
    lines += [f"  caused by {_describe(cause)}" for cause in chain]
    innermost = chain[-1]
    failure = getattr(innermost, "failure_json", None) or {}
    frames = user_frames(str(failure.get("stackTrace") or ""))
    if frames:
        lines.append("Where it was raised (your code, most recent call last):")
        lines += frames
        lines.append(_describe(innermost))
    return lines


def shown_in_notebook(error: WorkflowFailureError, workflow_id: str, workflow_type: str) -> WorkflowFailureError:
    """Give ``error`` IPython's rendering hook (``_render_traceback_``) showing
    :func:`failure_lines`. The error stays what it was, type and cause chain, for the
    ``except`` clauses of notebooks; only how IPython prints it changes."""
    setattr(error, "_render_traceback_", functools.partial(failure_lines, error, workflow_id, workflow_type))
    return error
