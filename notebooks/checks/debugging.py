"""Lesson 08 (replay debugging): what decided it, every delay.

Both read the lesson's debugger ``storm`` where the learner left it (its position, its trace,
the history it replays) and the learner's answer, with the checks of
:mod:`kernel_ext.replay_exercises`.
"""

from __future__ import annotations

from typing import Any

from kernel_ext.exercises import Check, NotYet, exercise
from kernel_ext.replay_exercises import DECISION_HINT, DELAYS_HINT, decision_findings, delay_findings

DECISION = ("if out_of_stock or attempt >= 10:", "break")  # the test, or the statement it leads to


def _storm(c: Check) -> Any:
    storm = c.namespace.get("storm")
    if storm is None:
        raise NotYet("there is no debugger named storm yet: run the cells above this one.")
    return storm


@exercise("what decided it", concept="stepping through a replay: the debugger's position and its locals", hint=DECISION_HINT)
async def what_decided_it(c: Check) -> None:
    decision_findings(c, _storm(c), c.namespace.get("decided_by"), line_text=DECISION,
                      expected_variable="out_of_stock", what="to compensate")


@exercise("every delay", concept="breakpoints on a line; the sleeps of a trace against the history's timers", hint=DELAYS_HINT)
async def every_delay(c: Check) -> None:
    delay_findings(c, _storm(c), c.namespace.get("delays"))
