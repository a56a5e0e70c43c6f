"""User code that raises what ends a program (``SystemExit``, ``KeyboardInterrupt``, any other
``BaseException`` that is not an ``Exception``), told as an ordinary failure.

asyncio lets ``SystemExit`` and ``KeyboardInterrupt`` through every task and callback so that
they stop the program; raised by a workflow or by code the sandbox loads, they would end the
worker process, and after a timeout the next worker to take the task too. A worker reports
them instead, and goes on.
"""

from __future__ import annotations

import traceback

from engine.errors import ApplicationError

_HINTS = {
    "SystemExit": (
        "a sys.exit() call, or argparse's parse_args() on arguments it does not know; return or raise "
        "an exception instead, and keep argument parsing under `if __name__ == \"__main__\":`"
    ),
    "KeyboardInterrupt": "an interrupt (Ctrl-C) landed in it, or it raised KeyboardInterrupt itself",
}


def described(error: BaseException) -> str:
    """``SystemExit(2)``: the exception's type and arguments, as a reader would write it."""
    return f"{type(error).__name__}({', '.join(map(repr, error.args))})"


def hint(error: BaseException) -> str:
    return _HINTS.get(type(error).__name__, "it is a BaseException, which only the engine's own signals may be")


def where(error: BaseException) -> str:
    """``file:line`` of the last frame that ran module-level code (the statement of a module
    being loaded that raised), else of the last frame."""
    frames = traceback.extract_tb(error.__traceback__)
    chosen = next((f for f in reversed(frames) if f.name == "<module>"), frames[-1] if frames else None)
    return f"{chosen.filename}:{chosen.lineno}" if chosen is not None else "an unknown place"


def workflow_task_failure(error: BaseException) -> ApplicationError:
    """What a workflow task reports when workflow code raised ``error``: an application failure
    whose type is the exception's class name (as temporalio converts any non-failure exception),
    with a message that says what happened, and the original traceback."""
    failure = ApplicationError(
        f"Workflow code raised {described(error)} ({hint(error)}). The worker went on; this workflow "
        "task failed and is retried: fix the code and restart the worker.",
        type=type(error).__name__,
    )
    failure.__traceback__ = error.__traceback__
    return failure
