"""Lesson 10 (load testing): read your own measurements.

The answers come from the learner's load tests (``one``, ``two``, ``slow`` in the notebook),
so each check compares the answer with what this machine measured, not with a number
written in advance. The reading itself is ``kernel_ext.load_checks`` (the knee, the
capacity, which test had more); these exercises give it to ``%check``.
"""

from __future__ import annotations

from typing import Any

from kernel_ext import load_checks
from kernel_ext.exercises import Check, NotYet, exercise


def _measured(c: Check, name: str, part: str) -> Any:
    value = c.namespace.get(name)
    if value is None:
        raise NotYet(f"`{name}` is not defined: run the load test of {part} first.", f"run the cell `{name} = %loadtest run ...` of {part}.")
    try:
        return load_checks.report_of(value)
    except ValueError as e:
        raise NotYet(f"`{name}` is not a load test's result: {e}", f"run the cell `{name} = %loadtest run ...` of {part} again.") from None


def _answer(c: Check) -> Any:
    return c.namespace.get("answer")


def _tell(c: Check, result: load_checks.CheckResult) -> None:
    c.expect(result.passed, result.message, result.message, hint=result.hint or None)


@exercise(
    "the knee of test one",
    concept="the knee: the offered rate from which the system stops keeping up",
    hint="Read the p99 column of one's steps table: the first step whose p99 is over the limit (1 s).",
)
async def find_the_knee(c: Check) -> None:
    one = _measured(c, "one", "part 1")
    _tell(c, load_checks.check_knee(_answer(c), one))


@exercise(
    "one worker process or two",
    concept="capacity: the highest offered rate that kept up; more worker processes, more slots",
    hint="Compare one.report.capacity() with two.report.capacity(): the last 'yes' in each table's keeps-up column.",
)
async def more_capacity(c: Check) -> None:
    one, two = _measured(c, "one", "part 1"), _measured(c, "two", "part 2")
    _tell(c, load_checks.check_more_capacity(_answer(c), one=one, two=two))


@exercise(
    "the capacity with a slower activity",
    concept="slots held longer: the same worker serves fewer runs per second",
    hint="The last step of slow's table whose keeps-up column says yes: slow.report.capacity().",
)
async def slower_capacity(c: Check) -> None:
    slow = _measured(c, "slow", "part 3")
    _tell(c, load_checks.check_capacity(_answer(c), slow))
