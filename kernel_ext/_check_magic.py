"""``%check NAME``: run the exercise check ``NAME`` of the notebook and show its verdict.

A thin wrapper over :meth:`kernel_ext.exercises.Exercise.check` (see that module to write
one). ``NAME`` is a variable of the notebook holding an exercise, usually imported from the
course's check modules (``from notebooks.checks.hello import greet_everyone``).
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from kernel_ext._magic_args import Pending
from kernel_ext.exercises import Exercise, exercises_in

USAGE = "%check NAME  (NAME: an exercise of the notebook, e.g. %check greet_everyone)"


@magics_class
class CheckMagics(Magics):
    """``%check``, bound to the kernel's session."""

    def __init__(self, shell: Any, session: Any) -> None:
        super().__init__(shell)
        self.session = session

    @line_magic
    def check(self, line: str) -> Pending:
        """%check NAME: check the exercise NAME against what your code really does.

        Runs the exercise's check (it starts runs of your workflow, reads their histories,
        replays them...) and shows what is right, what is not yet, and a hint."""
        name = line.strip()
        namespace = self.shell.user_ns if self.shell is not None else {}
        known = ", ".join(exercises_in(namespace)) or "none yet: run the cell that imports the checks"
        if not name or " " in name:
            raise UsageError(f"%check takes the name of one exercise (this notebook has: {known}).\n{USAGE}")
        found = namespace.get(name)
        if not isinstance(found, Exercise):
            raise UsageError(f"No exercise named {name!r} in this notebook (it has: {known}).\n{USAGE}")
        session = self.session
        return Pending(f"%check {name}", lambda: found.check(session))
